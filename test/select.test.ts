// Sorted top-k selection against the CPU reference, in both reduction variants: rows shorter and
// longer than the workgroup, k from 0 to past n, forced sinks and windows (overlapping when the
// row is short), a row stride, many ties, NaN and -Infinity.
import { describe, expect, it } from 'vitest';
import { selectTopK, selectedCount } from '../src/kernels/select';
import { selectTopKRef } from '../src/reference/select';
import { reductionVariants } from './gpu-variants';
import { randomNormal, rng } from './util';

const cases: Array<{ rows: number; n: number; k: number; first?: number; last?: number; stride?: number }> = [
  { rows: 3, n: 1000, k: 100 },
  { rows: 2, n: 4097, k: 256, first: 4, last: 64, stride: 4100 },
  { rows: 4, n: 255, k: 16, first: 8, last: 32 },
  { rows: 2, n: 30, k: 10, first: 16, last: 16 }, // forced ranges overlap
  { rows: 2, n: 50, k: 0, first: 2, last: 3 },
  { rows: 1, n: 77, k: 200 }, // k past n: everything
  { rows: 1, n: 1, k: 1 },
];

for (const variant of reductionVariants) {
  describe(`selectTopK (${variant.name})`, () => {
    for (const c of cases) {
      it(`${c.rows} rows of ${c.n}, k = ${c.k}, first ${c.first ?? 0}, last ${c.last ?? 0}`, async () => {
        const gpu = await variant.gpu();
        const stride = c.stride ?? c.n;
        const x = randomNormal(c.rows * stride, c.n + c.k);
        const r = rng(c.n);
        for (let i = 0; i < x.length; i++) {
          const u = r();
          if (u < 0.3) x[i] = Math.round(x[i] * 2) / 2; // ties, some at the threshold
          else if (u < 0.32) x[i] = Number.NaN;
          else if (u < 0.34) x[i] = -Infinity;
        }
        const outStride = selectedCount(c.n, c.k, c.first, c.last) + 3;
        const out = gpu.buffer(c.rows * outStride * 4);
        const counts = gpu.buffer(c.rows * 4);
        await gpu.run((pass) => selectTopK(gpu, pass, { ...c, x: gpu.upload(x), out, counts, outStride }), 'select');
        const got = await gpu.readU32(out, c.rows * outStride);
        const gotCounts = await gpu.readU32(counts, c.rows);
        const want = selectTopKRef(x, c);
        for (let row = 0; row < c.rows; row++) {
          expect(gotCounts[row]).toBe(want[row].length);
          expect(Array.from(got.subarray(row * outStride, row * outStride + gotCounts[row]))).toEqual(want[row]);
        }
      });
    }

    it('refuses an output row too short for the selection', async () => {
      const gpu = await variant.gpu();
      const x = gpu.buffer(64 * 4);
      await expect(gpu.run((pass) => selectTopK(gpu, pass, { x, rows: 1, n: 64, k: 8, first: 4, out: x, counts: x, outStride: 11 }))).rejects.toThrow(/do not fit/);
    });
  });
}
