// Argmax with its probability (A8's drafter confidence) against the CPU reference: random rows of
// several lengths and temperatures, ties, NaN and -Infinity, and a row of only -Infinity.
import { describe, expect, it } from 'vitest';
import { readTop1, top1 } from '../src/kernels/top1';
import { top1Ref } from '../src/reference/softmax';
import { randomNormal, rng, testGpu } from './util';

describe('top1', () => {
  const cases: Array<[rows: number, n: number, temperature: number]> = [[5, 4096, 1], [3, 1000, 0.4], [4, 7, 2], [3, 1, 1]];
  for (const [rows, n, temperature] of cases) {
    it(`${rows} rows of ${n} at temperature ${temperature}`, async () => {
      const gpu = await testGpu();
      const x = randomNormal(rows * n, rows + n, 3);
      const r = rng(n);
      for (let i = 0; i < x.length; i++) {
        const u = r();
        if (u < 0.2) x[i] = Math.round(x[i]); // ties
        else if (u < 0.22) x[i] = Number.NaN;
        else if (u < 0.24) x[i] = -Infinity;
      }
      x.fill(-Infinity, 0, n); // the first row: nothing but -inf
      const out = gpu.buffer(rows * 8);
      await gpu.run((pass) => top1(gpu, pass, { x: gpu.upload(x), out, rows, n, temperature }), 'top1');
      const got = readTop1(await gpu.readU32(out, rows * 2));
      const want = top1Ref(x, rows, n, temperature);
      got.forEach((g, i) => {
        expect(g.token, `row ${i}`).toBe(want[i].token);
        expect(Math.abs(g.probability - want[i].probability), `row ${i}`).toBeLessThan(1e-5 * Math.max(1, want[i].probability) + 1e-6);
      });
    });
  }
});
