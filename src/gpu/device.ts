import { GpuError } from './errors';
import { Gpu, type GpuFeatures } from './gpu';

export interface RequestGpuOptions {
  powerPreference?: GPUPowerPreference;
  /** Turn off features the adapter offers, to test fallback kernel variants. */
  disable?: Partial<Record<keyof GpuFeatures, boolean>>;
  /** A GPU object to use instead of navigator.gpu or Dawn (for embedding). */
  gpu?: GPU;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

// Dawn's GPU object must outlive every device made from it: if it is garbage-collected, Dawn
// tears down its instance under live devices and the process crashes. Keep it here for good.
let dawnGpu: GPU | null = null;

/** navigator.gpu in browsers and workers; Dawn's node bindings (npm `webgpu`) in Node. */
async function findWebGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: Navigator }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (dawnGpu) return dawnGpu;
  if (isNode) {
    // A variable module name keeps bundlers from pulling Dawn into browser builds.
    const dawnModule = 'webgpu';
    const dawn = (await import(/* @vite-ignore */ dawnModule)) as {
      create(flags: string[]): GPU;
      globals: Record<string, unknown>;
    };
    // GPUBufferUsage, GPUMapMode, ... as in a browser.
    for (const [name, value] of Object.entries(dawn.globals)) {
      if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
    }
    dawnGpu = dawn.create([]);
    return dawnGpu;
  }
  throw new GpuError(
    'no-webgpu',
    'WebGPU is not available here: navigator.gpu is missing (it needs a secure context such as https or localhost, and a browser with WebGPU enabled).',
  );
}

/** Adapters that run shaders on the CPU, by the names they report. */
const CPU_ADAPTERS = /swiftshader|llvmpipe|lavapipe|microsoft basic render|\bwarp\b/i;

/**
 * Acquire an adapter and device with the optional features that help us (`shader-f16`,
 * `subgroups`, `timestamp-query`) and the largest limits the adapter allows.
 */
export async function requestGpu(options: RequestGpuOptions = {}): Promise<Gpu> {
  const webgpu = options.gpu ?? (await findWebGpu());
  const adapter = await webgpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new GpuError('no-webgpu', 'WebGPU found no adapter on this machine.');

  const wanted: Array<[keyof GpuFeatures, GPUFeatureName]> = [
    ['f16', 'shader-f16'],
    ['subgroups', 'subgroups' as GPUFeatureName],
    ['timestamps', 'timestamp-query'],
  ];
  const features: GpuFeatures = { f16: false, subgroups: false, timestamps: false };
  const requiredFeatures: GPUFeatureName[] = [];
  for (const [key, name] of wanted) {
    if (adapter.features.has(name) && !options.disable?.[key]) {
      features[key] = true;
      requiredFeatures.push(name);
    }
  }

  const requiredLimits: Record<string, number> = {};
  for (const name of [
    'maxBufferSize',
    'maxStorageBufferBindingSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupSizeY',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBuffersPerShaderStage',
  ] as const) {
    requiredLimits[name] = adapter.limits[name];
  }

  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const description = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter';
  const cpuBacked = (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true || CPU_ADAPTERS.test(description);
  return new Gpu(device, description, features, cpuBacked);
}
