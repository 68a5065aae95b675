import { describe, expect, it } from 'vitest';
import { add } from '../src/kernels/elementwise';
import { addRef } from '../src/reference/elementwise';
import { expectClose, randomF32, testGpu } from './util';

describe('add', () => {
  for (const n of [1, 255, 256, 257, 100_003]) {
    it(`matches the reference for n=${n}`, async () => {
      const gpu = await testGpu();
      const a = randomF32(n, 1), b = randomF32(n, 2);
      const out = gpu.buffer(n * 4);
      await gpu.run((pass) => add(gpu, pass, { a: gpu.upload(a), b: gpu.upload(b), out, n }));
      // Exact: one f32 addition, same rounding on both sides.
      expectClose(await gpu.readF32(out, n), addRef(a, b), 0);
    });
  }

  it('raises invalid WGSL and bad bindings as errors instead of silently doing nothing', async () => {
    const gpu = await testGpu();
    const broken = gpu.pipeline('broken-test-kernel', () => '@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }');
    await expect(gpu.run((pass) => gpu.dispatch(pass, broken, [], [1]))).rejects.toThrow(/broken-test-kernel/);
    // The device stays usable after a validation error.
    const out = gpu.buffer(16);
    const ones = new Float32Array([1, 2, 3, 4]);
    await gpu.run((pass) => add(gpu, pass, { a: gpu.upload(ones), b: gpu.upload(ones), out, n: 4 }));
    expect([...(await gpu.readF32(out, 4))]).toEqual([2, 4, 6, 8]);
  });
});
