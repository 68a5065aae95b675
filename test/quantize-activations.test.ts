import { describe, expect, it } from 'vitest';
import { quantizeActivations } from '../src/kernels/quantize-activations';
import { quantizeActivationsRef } from '../src/reference/quantize-activations';
import { randomNormal, testGpu } from './util';

describe('llama.cpp activation rounding', () => {
  for (const rule of ['q8_0', 'q8_k', 'f16'] as const) {
    it(`${rule}: matches the ggml rounding of every value (ties aside)`, async () => {
      const gpu = await testGpu();
      const n = 256 * 9;
      const x = randomNormal(n, 4, 3);
      x.fill(0, 256, 512); // an all-zero block
      const out = gpu.buffer(n * 4);
      await gpu.run((pass) => quantizeActivations(gpu, pass, { x: gpu.upload(x), out, count: n, rule }));
      const got = await gpu.readF32(out, n);
      const want = quantizeActivationsRef(x, rule);
      // WGSL division is within 2.5 ulp, so scales may differ in the last bits (1e-6 relative), and
      // a value on a rounding tie may move by one step: allow that for at most 1 in 500 values.
      let steps = 0;
      got.forEach((g, i) => {
        if (Math.abs(g - want[i]) <= 1e-6 * Math.abs(want[i])) return;
        steps++;
        expect(Math.abs(g - want[i])).toBeLessThan(Math.abs(x[i]) * 0.03 + 1e-6);
      });
      expect(steps).toBeLessThanOrEqual(n / 500);
      expect(Array.from(got.subarray(256, 512)).every((v) => v === 0)).toBe(true);
    });
  }

  it('refuses a length that is not whole blocks', async () => {
    const gpu = await testGpu();
    const b = gpu.buffer(1024);
    await expect(gpu.run((pass) => quantizeActivations(gpu, pass, { x: b, out: gpu.buffer(1024), count: 100, rule: 'q8_0' }))).rejects.toThrow(/whole blocks/);
  });
});
