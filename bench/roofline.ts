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

export async function measureRoofline(gpu: Gpu, copyBytes = 64 << 20, threads = 1 << 18): Promise<Roofline> {
  const bytes = Math.min(copyBytes, gpu.limits.maxStorageBufferBindingSize);
  const src = gpu.buffer(bytes, 'copy src');
  const dst = gpu.buffer(bytes, 'copy dst');
  const copy = gpu.pipeline('bench:copy', () => copyWgsl);
  const vec4s = bytes / 16;
  const groups = Math.ceil(vec4s / 256);
  const gx = Math.min(groups, 65535);
  const copyTime = await timeGpu(gpu, (pass) => gpu.dispatch(pass, copy, [src, dst], [gx, Math.ceil(groups / gx)]), { repeats: 4 });

  const out = gpu.buffer(threads * 4, 'fma out');
  const fma = gpu.pipeline('bench:fma', () => fmaWgsl);
  const fmaTime = await timeGpu(gpu, (pass) => gpu.dispatch(pass, fma, [out], [threads / 256]), { repeats: 4 });
  src.destroy();
  dst.destroy();
  out.destroy();
  return {
    copyGBps: (2 * bytes) / (copyTime.ms * 1e6),
    fmaGflops: (threads * FMA_STEPS * 8 * 4 * 2) / (fmaTime.ms * 1e6),
  };
}
