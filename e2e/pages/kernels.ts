// Runs kernels in the browser's own WebGPU and compares them with the CPU references, so the
// browser path (navigator.gpu, Chromium's WGSL compiler) is proven, not just Node's Dawn.
import { requestGpu } from '../../src/gpu';
import { kernelChecks, type CheckResult } from './kernel-checks';

declare global {
  interface Window {
    kernelResults?: { adapter: string; features: Record<string, boolean>; checks: CheckResult[]; error?: string };
  }
}

const log = document.getElementById('log')!;
try {
  const gpu = await requestGpu();
  const checks: CheckResult[] = [];
  for (const check of kernelChecks) {
    checks.push(...(await check(gpu)));
    log.textContent = checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name} (${Math.round(c.ms ?? 0)} ms): ${c.detail}`).join('\n');
  }
  window.kernelResults = { adapter: gpu.adapterDescription, features: { ...gpu.features }, checks };
} catch (error) {
  log.textContent = String(error);
  window.kernelResults = { adapter: '', features: {}, checks: [], error: String(error) };
}
