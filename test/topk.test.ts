// Row-wise top-k against the CPU reference: random rows of several lengths (a vocabulary, a
// length that is not a multiple of the workgroup, k itself), many ties, NaN and -Infinity.
import { describe, expect, it } from 'vitest';
import { topk } from '../src/kernels/topk';
import { topkRef } from '../src/reference/topk';
import { randomNormal, rng, testGpu } from './util';

describe('topk', () => {
  const cases: Array<[rows: number, n: number, k: number]> = [[81, 4096, 8], [3, 49152, 16], [5, 8, 8], [7, 1000, 1], [2, 77, 5]];
  for (const [rows, n, k] of cases) {
    it(`${rows} rows of ${n}, k = ${k}`, async () => {
      const gpu = await testGpu();
      const x = randomNormal(rows * n, rows + n + k);
      const r = rng(k);
      for (let i = 0; i < x.length; i++) {
        const u = r();
        if (u < 0.3) x[i] = Math.round(x[i] * 4) / 4; // ties
        else if (u < 0.32) x[i] = Number.NaN;
        else if (u < 0.34) x[i] = -Infinity;
      }
      const out = gpu.buffer(rows * k * 4);
      await gpu.run((pass) => topk(gpu, pass, { x: gpu.upload(x), out, rows, n, k }), 'topk');
      expect(await gpu.readU32(out, rows * k)).toEqual(topkRef(x, rows, n, k));
    });
  }

  it('refuses k outside 1..16 and rows shorter than k', async () => {
    const gpu = await testGpu();
    const x = gpu.buffer(64);
    await expect(gpu.run((pass) => topk(gpu, pass, { x, out: x, rows: 1, n: 16, k: 17 }))).rejects.toThrow(/k must be/);
    await expect(gpu.run((pass) => topk(gpu, pass, { x, out: x, rows: 1, n: 4, k: 8 }))).rejects.toThrow(/bad shape/);
  });
});
