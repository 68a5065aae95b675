import { requestGpu } from '../src/gpu';

const info = document.getElementById('device-info')!;

try {
  const gpu = await requestGpu();
  const features = Object.entries(gpu.features).map(([name, on]) => `${name}: ${on ? 'yes' : 'no'}`).join(', ');
  info.textContent = `${gpu.adapterDescription} — ${features}; max storage binding ${(gpu.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, workgroup storage ${gpu.limits.maxComputeWorkgroupStorageSize} B`;
} catch (error) {
  info.className = 'error';
  info.textContent = String(error instanceof Error ? error.message : error);
}
