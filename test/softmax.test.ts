import { describe, expect, it } from 'vitest';
import { argmax, softmax } from '../src/kernels/softmax';
import { argmaxRef, softmaxRef } from '../src/reference/softmax';
import { reductionVariants } from './gpu-variants';
import { expectClose, randomNormal } from './util';

// Softmax error budget vs f64, relative per element: exp(v - max) is within 3 + 2|v - max| ulp
// (WGSL), <= 60 ulp for the logit spreads below (std 3: |v - max| < 30); the row sum is off by at
// most (n/256 + 32) ulp from f32 accumulation (625 for 151936) plus a few ulp per online
// rescale. The measured worst case is far below; we assert rtol 5e-5 (~800 ulp, the bound) and
// atol 1e-12 for probabilities that underflow.
const rtol = 5e-5;
const atol = 1e-12;
const shapes: Array<[rows: number, n: number]> = [
  [1, 1],
  [3, 7],
  [2, 255],
  [2, 257],
  [4, 4096],
  [2, 151_936],
];

for (const variant of reductionVariants) {
  describe(`softmax (${variant.name})`, () => {
    for (const [rows, n] of shapes) {
      it(`matches the reference for ${rows}x${n}`, async () => {
        const gpu = await variant.gpu();
        const x = randomNormal(rows * n, rows * 31 + n, 3);
        const out = gpu.buffer(rows * n * 4);
        await gpu.run((pass) => softmax(gpu, pass, { x: gpu.upload(x), out, rows, n }));
        const actual = await gpu.readF32(out, rows * n);
        expectClose(actual, softmaxRef(x, rows, n), atol, rtol);
        for (let r = 0; r < rows; r++) {
          let sum = 0;
          for (let i = 0; i < n; i++) sum += actual[r * n + i];
          expect(Math.abs(sum - 1)).toBeLessThan(1e-4);
        }
      });
    }

    it('is stable for huge logits, masks -inf, zeroes an all -inf row, applies a scale, works in place', async () => {
      const gpu = await variant.gpu();
      const n = 1000, rows = 3;
      const x = randomNormal(rows * n, 5, 3);
      for (let i = 0; i < n; i++) x[i] += 1e4; // row 0: exp would overflow without the max shift
      for (let i = n; i < 2 * n; i += 3) x[i] = -Infinity; // row 1: masked entries
      x.fill(-Infinity, 2 * n, 3 * n); // row 2: everything masked
      const buffer = gpu.upload(x);
      const scaled = gpu.buffer(rows * n * 4);
      await gpu.run((pass) => {
        softmax(gpu, pass, { x: gpu.upload(x), out: scaled, rows: 2, n, scale: 0.125 });
        softmax(gpu, pass, { x: buffer, rows, n });
      });
      const actual = await gpu.readF32(buffer, rows * n);
      // Row 0: f32 logits near 1e4 carry their own rounding (half an ulp = 5e-4), which the
      // reference sees too; the kernel adds nothing beyond the usual budget.
      expectClose(actual.subarray(0, 2 * n), softmaxRef(x, 2, n), atol, rtol);
      for (let i = n; i < 2 * n; i += 3) expect(actual[i]).toBe(0);
      expect(Array.from(actual.subarray(2 * n))).toEqual(new Array(n).fill(0));
      expectClose(await gpu.readF32(scaled, 2 * n), softmaxRef(x, 2, n, 0.125), atol, rtol, 'scaled');
    });
  });

  describe(`argmax (${variant.name})`, () => {
    for (const [rows, n] of shapes) {
      it(`matches the reference for ${rows}x${n}`, async () => {
        const gpu = await variant.gpu();
        const x = randomNormal(rows * n, rows * 17 + n);
        const out = gpu.buffer(rows * 4);
        await gpu.run((pass) => argmax(gpu, pass, { x: gpu.upload(x), out, rows, n }));
        // Exact: comparisons only.
        expect(Array.from(await gpu.readU32(out, rows))).toEqual(Array.from(argmaxRef(x, rows, n)));
      });
    }

    it('breaks ties toward the lowest index, ties -0 with +0, skips NaN, handles constant and -inf rows', async () => {
      const gpu = await variant.gpu();
      const n = 151_936;
      const rows = 6;
      const x = randomNormal(rows * n, 99);
      // row 0: the max appears at 5 places handled by different threads and subgroups; lowest wins
      for (const i of [140_001, 70_000, 513, 1_000, 151_935]) x[i] = 10;
      // row 1: the only positives are -0 / +0 ... all values negative except a -0 then a +0
      for (let i = 0; i < n; i++) x[n + i] = -Math.abs(x[n + i]) - 1;
      x[n + 900] = -0;
      x[n + 300] = 0;
      x[n + 1200] = -0;
      // row 2: NaNs everywhere but one
      x.fill(NaN, 2 * n, 3 * n);
      x[2 * n + 4242] = -5;
      // row 3: constant
      x.fill(2.5, 3 * n, 4 * n);
      // row 4: -inf except two equal finite values
      x.fill(-Infinity, 4 * n, 5 * n);
      x[4 * n + 77_777] = -1e30;
      x[4 * n + 77_778] = -1e30;
      // row 5: +inf beats everything, first +inf wins
      x[5 * n + 12] = Infinity;
      x[5 * n + 11] = Infinity;
      const out = gpu.buffer(rows * 4);
      await gpu.run((pass) => argmax(gpu, pass, { x: gpu.upload(x), out, rows, n }));
      const expected = [513, 300, 4242, 0, 77_777, 11];
      expect(Array.from(argmaxRef(x, rows, n))).toEqual(expected);
      expect(Array.from(await gpu.readU32(out, rows))).toEqual(expected);
    });
  });
}
