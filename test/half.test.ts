// The WGSL f32 -> f16 conversion (src/shaders/half.ts) against the CPU's (ggml's rules): bit for
// bit on every kind of value, ties included. pack2x16float may round either way (NVIDIA's Vulkan
// driver truncates), which is why the KV cache and activation rounding use this one.
import { describe, expect, it } from 'vitest';
import { f32ToF16 } from '../src/formats/quantize';
import { halfRneWgsl } from '../src/shaders/half';
import { rng, testGpu } from './util';

const f32 = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0]!;

describe('f32 -> f16, round to nearest even', () => {
  it('matches f32ToF16 bit for bit on ties, subnormals, overflow, NaN and random values', async () => {
    const gpu = await testGpu();
    const edges = [
      0, -0, 1, -1, 65504, -65504, 65519.99, 65520, 1e9, -Infinity, Infinity, NaN,
      1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 2048 + 1, 2048 + 3, // ties to even, and just past one
      2 ** -14, 2 ** -14 - 2 ** -25, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -25 + 2 ** -40, 2 ** -26, 5 * 2 ** -26, 2 ** -30, -(2 ** -24),
      f32(0x387fffff), f32(0x33000000), f32(0x33000001), f32(0x477fefff), f32(0x477ff000), f32(0x477fe000),
    ];
    const random = rng(5);
    const values = new Float32Array(4096);
    values.set(edges);
    for (let i = edges.length; i < values.length; i++) {
      // Every exponent from subnormal halves to overflow, with random mantissas and signs.
      const exponent = 100 + Math.floor(random() * 46);
      const bits = ((random() < 0.5 ? 1 : 0) << 31) | (exponent << 23) | Math.floor(random() * 0x800000);
      values[i] = f32(bits >>> 0);
    }
    const pipeline = gpu.pipeline('half-rne-test', () => /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
${halfRneWgsl}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i < arrayLength(&out)) { out[i] = pack_half_rne(vec2<f32>(x[2u * i], x[2u * i + 1u])); }
}`);
    const out = gpu.buffer(values.length * 2);
    await gpu.run((pass) => gpu.dispatch(pass, pipeline, [gpu.upload(values), out], [values.length / 2 / 64]));
    const got = await gpu.readU32(out);
    const mismatches: string[] = [];
    values.forEach((v, i) => {
      const half = (got[i >> 1]! >>> ((i & 1) * 16)) & 0xffff;
      if (half !== f32ToF16(v)) mismatches.push(`${v}: got 0x${half.toString(16)}, want 0x${f32ToF16(v).toString(16)}`);
    });
    expect(mismatches).toEqual([]);
  });
});
