import { describe, expect, it } from 'vitest';
import { layerNorm, rmsNorm } from '../src/kernels/norm';
import { layerNormRef, rmsNormRef } from '../src/reference/norm';
import { reductionVariants } from './gpu-variants';
import { expectClose, randomF32, randomNormal } from './util';

// Error budget (f32, vs the f64 reference): each thread sums n/256 terms, then the reduction folds
// at most 32 partials, so a row statistic is off by at most about (n/256 + 32) * 2^-24 relative
// (< 3e-6 for n = 4096); inverseSqrt adds 2 ulp and the two products 1 ulp each. RMSNorm's output
// is x times a per-row factor, so its error is relative per element: rtol 1e-5 covers it with 2x
// margin. LayerNorm subtracts the mean, so its error is absolute, |mean| * that bound * inv_std *
// |w| plus a few ulp of the output: atol 2e-5 for zero-mean data of unit scale.
const shapes: Array<[rows: number, n: number]> = [
  [1, 1],
  [3, 7],
  [2, 255],
  [2, 257],
  [4, 576],
  [2, 4096],
];

for (const variant of reductionVariants) {
  describe(`rmsNorm (${variant.name})`, () => {
    for (const [rows, n] of shapes) {
      it(`matches the reference for ${rows}x${n}`, async () => {
        const gpu = await variant.gpu();
        const x = randomNormal(rows * n, rows * 1000 + n, 2);
        const weight = randomF32(n, n + 7, 0.5, 1.5);
        const out = gpu.buffer(rows * n * 4);
        await gpu.run((pass) => rmsNorm(gpu, pass, { x: gpu.upload(x), weight: gpu.upload(weight), out, rows, n, eps: 1e-6 }));
        expectClose(await gpu.readF32(out, rows * n), rmsNormRef(x, weight, rows, n, 1e-6), 1e-7, 1e-5);
      });
    }

    it('normalizes in place, and per head with a shared weight (qwen3 Q/K norm)', async () => {
      const gpu = await variant.gpu();
      const tokens = 5, heads = 4, headDim = 64;
      const rows = tokens * heads;
      const q = randomNormal(rows * headDim, 11, 3);
      const weight = randomF32(headDim, 12, 0.5, 1.5);
      const buffer = gpu.upload(q);
      await gpu.run((pass) => rmsNorm(gpu, pass, { x: buffer, weight: gpu.upload(weight), rows, n: headDim, eps: 1e-6 }));
      expectClose(await gpu.readF32(buffer, rows * headDim), rmsNormRef(q, weight, rows, headDim, 1e-6), 1e-7, 1e-5);
    });

    it('normalizes the K heads inside a fused QKV buffer in place, leaving Q and V alone', async () => {
      const gpu = await variant.gpu();
      const tokens = 3, qHeads = 4, kvHeads = 2, headDim = 32;
      const width = (qHeads + 2 * kvHeads) * headDim, kOffset = qHeads * headDim;
      const qkv = randomNormal(tokens * width, 15, 2);
      const weight = randomF32(headDim, 16, 0.5, 1.5);
      const buffer = gpu.upload(qkv);
      const rows = tokens * kvHeads;
      await gpu.run((pass) => rmsNorm(gpu, pass, { x: buffer, weight: gpu.upload(weight), rows, n: headDim, eps: 1e-6, strides: { rowsPerGroup: kvHeads, groupStride: width, offset: kOffset } }));
      const after = await gpu.readF32(buffer, qkv.length);
      const k = new Float32Array(rows * headDim);
      for (let t = 0; t < tokens; t++) k.set(qkv.subarray(t * width + kOffset, t * width + kOffset + kvHeads * headDim), t * kvHeads * headDim);
      const expectedK = rmsNormRef(k, weight, rows, headDim, 1e-6);
      const expected = Float64Array.from(qkv);
      for (let t = 0; t < tokens; t++) expected.set(expectedK.subarray(t * kvHeads * headDim, (t + 1) * kvHeads * headDim), t * width + kOffset);
      expectClose(after, expected, 1e-7, 1e-5);
    });

    // 65537 workgroups take ~10 s on SwiftShader: the row -> (x, y) grid split is variant-independent, so test it once.
    it.runIf(variant === reductionVariants[0])('handles more rows than one grid dimension holds and eps on an all-zero row', async () => {
      const gpu = await variant.gpu();
      const rows = 65_537, n = 2;
      const x = randomNormal(rows * n, 13);
      x.fill(0, 0, n); // a zero row: 0 * 1/sqrt(eps) = 0, not NaN
      const weight = new Float32Array([1, 2]);
      const out = gpu.buffer(rows * n * 4);
      await gpu.run((pass) => rmsNorm(gpu, pass, { x: gpu.upload(x), weight: gpu.upload(weight), out, rows, n, eps: 1e-5 }));
      expectClose(await gpu.readF32(out, rows * n), rmsNormRef(x, weight, rows, n, 1e-5), 1e-7, 1e-5);
    });
  });

  describe(`layerNorm (${variant.name})`, () => {
    for (const [rows, n] of shapes) {
      it(`matches the reference for ${rows}x${n}, with and without bias`, async () => {
        const gpu = await variant.gpu();
        const x = randomNormal(rows * n, rows * 999 + n);
        const weight = randomF32(n, n + 3, 0.5, 1.5);
        const bias = randomF32(n, n + 4, -0.5, 0.5);
        const out = gpu.buffer(rows * n * 4);
        const xBuffer = gpu.upload(x), weightBuffer = gpu.upload(weight);
        await gpu.run((pass) => layerNorm(gpu, pass, { x: xBuffer, weight: weightBuffer, bias: gpu.upload(bias), out, rows, n, eps: 1e-5 }));
        expectClose(await gpu.readF32(out, rows * n), layerNormRef(x, weight, bias, rows, n, 1e-5), 2e-5, 1e-5, 'with bias');
        await gpu.run((pass) => layerNorm(gpu, pass, { x: xBuffer, weight: weightBuffer, out, rows, n, eps: 1e-5 }));
        expectClose(await gpu.readF32(out, rows * n), layerNormRef(x, weight, null, rows, n, 1e-5), 2e-5, 1e-5, 'without bias');
      });
    }

    it('stays accurate when the mean is far from zero, in place', async () => {
      const gpu = await variant.gpu();
      const rows = 2, n = 1024, mean = 100;
      const x = randomNormal(rows * n, 21).map((v) => v + mean);
      const weight = new Float32Array(n).fill(1);
      const buffer = gpu.upload(x);
      await gpu.run((pass) => layerNorm(gpu, pass, { x: buffer, weight: gpu.upload(weight), rows, n, eps: 1e-5 }));
      // The f32 mean is off by up to |mean| * (n/256 + 32) * 2^-24 = 2.2e-4 (std is 1), and each
      // x - mean is exact to half an ulp of 100 (3.8e-6): 3e-4 bounds it. A one-pass sum-of-squares
      // variance would lose about |mean|^2 * 2^-24 * n/256... of the variance, i.e. everything here.
      expectClose(await gpu.readF32(buffer, rows * n), layerNormRef(x, weight, null, rows, n, 1e-5), 3e-4, 0);
    });
  });
}

describe('norm argument checks', () => {
  it('rejects out === x with a clear message', async () => {
    const gpu = await reductionVariants[0].gpu();
    const x = gpu.buffer(64);
    expect(() => rmsNorm(gpu, {} as GPUComputePassEncoder, { x, out: x, weight: x, rows: 1, n: 16, eps: 1e-6 })).toThrow(/in-place/);
  });
});
