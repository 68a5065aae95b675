// Sorted top-k selection against the CPU reference, in both reduction variants: rows shorter and
// longer than the workgroup, k from 0 to past n, forced sinks and windows (overlapping when the
// row is short), a row stride, many ties, NaN and -Infinity.
import { describe, expect, it } from 'vitest';
import { selectTopK, selectedCount, selectionReuse, unitScores } from '../src/kernels/select';
import { selectTopKRef, selectionReuseRef, unitScoresRef } from '../src/reference/select';
import { reductionVariants } from './gpu-variants';
import { randomNormal, rng } from './util';

const cases: Array<{ rows: number; n: number; k: number; first?: number; last?: number; stride?: number; start?: number }> = [
  { rows: 3, n: 1000, k: 100 },
  { rows: 2, n: 4097, k: 256, first: 4, last: 64, stride: 4100 },
  { rows: 4, n: 255, k: 16, first: 8, last: 32 },
  { rows: 2, n: 30, k: 10, first: 16, last: 16 }, // forced ranges overlap
  { rows: 2, n: 50, k: 0, first: 2, last: 3 },
  { rows: 1, n: 77, k: 200 }, // k past n: everything
  { rows: 1, n: 1, k: 1 },
  { rows: 2, n: 16, k: 4, stride: 100, start: 48 }, // one block of a longer row (InfLLM's representatives)
];

for (const variant of reductionVariants) {
  describe(`selectTopK (${variant.name})`, () => {
    for (const c of cases) {
      it(`${c.rows} rows of ${c.n}${c.start ? ` from ${c.start}` : ''}, k = ${c.k}, first ${c.first ?? 0}, last ${c.last ?? 0}`, async () => {
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
        const outOffset = c.start ? 5 : 0;
        const out = gpu.buffer((outOffset + c.rows * outStride) * 4);
        const counts = gpu.buffer(c.rows * 4);
        await gpu.run((pass) => selectTopK(gpu, pass, { ...c, x: gpu.upload(x), out, counts, outStride, outOffset }), 'select');
        const got = (await gpu.readU32(out, outOffset + c.rows * outStride)).subarray(outOffset);
        const gotCounts = await gpu.readU32(counts, c.rows);
        const want = selectTopKRef(x, c);
        for (let row = 0; row < c.rows; row++) {
          expect(gotCounts[row]).toBe(want[row].length);
          expect(Array.from(got.subarray(row * outStride, row * outStride + gotCounts[row]))).toEqual(want[row]);
        }
      });
    }

    it('the selection cache: ranks first, reuses while the query fingerprint stays similar, ranks again when it moves', async () => {
      const gpu = await variant.gpu();
      const [rows, width, threshold] = [3, 300, 0.9];
      const grids: [[number, number], [number, number]] = [[5, 1], [7, 2]];
      const fingerprint = gpu.buffer(width * 4);
      const state = gpu.buffer(16);
      const dispatchArgs = gpu.device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.INDIRECT | GPUBufferUsage.COPY_SRC });
      const base = randomNormal(rows * width, 41);
      const other = randomNormal(rows * width, 42);
      // Steps: the first ranks; a small change reuses; a new query ranks; a mix of the two at cosine ~0.7 ranks too.
      const steps = [base, base.map((x, i) => x + 0.1 * other[i]), other, base.map((x, i) => x + other[i])];
      let kept: Float32Array | null = null;
      const decisions: boolean[] = [];
      for (const q of steps) {
        await gpu.run((pass) => selectionReuse(gpu, pass, { q: gpu.upload(q), rows, width, threshold, fingerprint, state, dispatchArgs: { buffer: dispatchArgs, offset: 0 }, grids }));
        const want = selectionReuseRef(q, rows, kept, threshold);
        kept = want.fingerprint;
        decisions.push(want.reuse);
        expect(Array.from(new Uint32Array(await gpu.read(dispatchArgs, 0, 24)))).toEqual(want.reuse ? [0, 1, 1, 0, 2, 1] : [5, 1, 1, 7, 2, 1]);
        const got = await gpu.readF32(fingerprint, width);
        got.forEach((x, i) => expect(x).toBeCloseTo(want.fingerprint[i], 5));
      }
      expect(decisions).toEqual([false, true, false, false]);
      expect(Array.from(await gpu.readU32(state, 3))).toEqual([1, 1, 3]);
    });

    it('unit scores: each unit sums its representatives\' scores, per kv head', async () => {
      const gpu = await variant.gpu();
      const [heads, units, per, xStride, repStride, outStride] = [2, 70, 3, 300, 215, 72];
      const x = randomNormal(heads * xStride, 51);
      const r = rng(52);
      const rep = Uint32Array.from({ length: heads * repStride }, () => Math.floor(r() * xStride));
      const out = gpu.buffer(heads * outStride * 4);
      await gpu.run((pass) => unitScores(gpu, pass, { x: gpu.upload(x), xStride, rep: gpu.upload(rep), repStride, out, outStride, heads, units, per }));
      const got = await gpu.readF32(out, heads * outStride);
      unitScoresRef(x, xStride, rep, repStride, heads, units, per).forEach((row, h) => row.forEach((want, u) => expect(got[h * outStride + u]).toBeCloseTo(want, 5)));
    });

    it('refuses an output row too short for the selection', async () => {
      const gpu = await variant.gpu();
      const x = gpu.buffer(64 * 4);
      await expect(gpu.run((pass) => selectTopK(gpu, pass, { x, rows: 1, n: 64, k: 8, first: 4, out: x, counts: x, outStride: 11 }))).rejects.toThrow(/do not fit/);
    });
  });
}
