// The adapter's own limits, measured in the same run as the kernels: streaming-copy bandwidth
// and FMA throughput. Kernel figures are reported as ratios of these.
import type { Gpu } from '../src/gpu';
import { timeGpu } from './timing';

const copyWgsl = `
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 256u;
  if (i < arrayLength(&src)) { dst[i] = src[i]; }
}`;

// Each thread runs FMA_STEPS steps of 8 independent vec4 FMA chains: 8 * 4 * 2 flops per step.
const FMA_STEPS = 256;
const fmaWgsl = `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let seed = f32(gid.x) * 1e-7;
  var a0 = vec4<f32>(seed); var a1 = a0 + 0.1; var a2 = a0 + 0.2; var a3 = a0 + 0.3;
  var a4 = a0 + 0.4; var a5 = a0 + 0.5; var a6 = a0 + 0.6; var a7 = a0 + 0.7;
  let m = vec4<f32>(0.9999); let c = vec4<f32>(1e-4);
  for (var i = 0u; i < ${FMA_STEPS}u; i++) {
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
  }
  let s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
  out[gid.x] = s.x + s.y + s.z + s.w;
}`;

export interface Roofline {
  /** Streaming copy, bytes read + written per second, in GB/s. */
  copyGBps: number;
  /** f32 FMA throughput in GFLOP/s (an FMA counts as 2 flops). */
  fmaGflops: number;
}

/**
 * Copy: `copyBytes` (64 MiB, larger than the last-level cache of today's GPUs) from one buffer to
 * another. FMA: from 2^16 threads up, four times more per step while a dispatch is short (under
 * 5 ms) and the rate still grows, so a big GPU is filled and a software adapter is not kept busy
 * for seconds.
 */
export async function measureRoofline(gpu: Gpu, options: { copyBytes?: number; samples?: number } = {}): Promise<Roofline> {
  const samples = options.samples ?? 5;
  const bytes = Math.min(options.copyBytes ?? 64 << 20, gpu.limits.maxStorageBufferBindingSize);
  const src = gpu.buffer(bytes, 'copy src');
  const dst = gpu.buffer(bytes, 'copy dst');
  const copy = gpu.pipeline('bench:copy', () => copyWgsl);
  const vec4s = bytes / 16;
  const groups = Math.ceil(vec4s / 256);
  const gx = Math.min(groups, 65535);
  const copyTime = await timeGpu(gpu, (pass) => gpu.dispatch(pass, copy, [src, dst], [gx, Math.ceil(groups / gx)]), { samples });
  src.destroy();
  dst.destroy();

  const fma = gpu.pipeline('bench:fma', () => fmaWgsl);
  const maxThreads = Math.min(1 << 22, gpu.limits.maxComputeWorkgroupsPerDimension * 256);
  let fmaGflops = 0;
  for (let threads = 1 << 16; threads <= maxThreads; threads *= 4) {
    const out = gpu.buffer(threads * 4, 'fma out');
    const t = await timeGpu(gpu, (pass) => gpu.dispatch(pass, fma, [out], [threads / 256]), { samples });
    out.destroy();
    const gflops = (threads * FMA_STEPS * 8 * 4 * 2) / (t.ms * 1e6);
    const growing = gflops > fmaGflops * 1.1;
    fmaGflops = Math.max(fmaGflops, gflops);
    if (t.ms > 5 || !growing) break;
  }
  return { copyGBps: (2 * bytes) / (copyTime.ms * 1e6), fmaGflops };
}
