// Image-token choice kernels against their CPU references on random inputs: head sums of attention
// mass, row gathers, ToDRE's k-center (rows fewer and more than the workgroup, k from 1 to all)
// and HiPrune's anchors and buffers (grid edges, budgets that stop inside a neighbourhood).
import { describe, expect, it } from 'vitest';
import { columnSums, packRows, hipruneScores, kCenter } from '../src/kernels/vision-prune';
import { columnSumsRef, hipruneFlagsRef, kCenterRef } from '../src/reference/vision-prune';
import { randomNormal, rng, testGpu } from './util';

describe('vision pruning kernels', () => {
  it('columnSums adds the heads of a strided mass buffer', async () => {
    const gpu = await testGpu();
    const [rows, n, stride, start] = [5, 300, 320, 7];
    const x = randomNormal(rows * stride, 1);
    const out = gpu.buffer(n * 4);
    await gpu.run((pass) => columnSums(gpu, pass, { x: gpu.upload(x), rows, n, stride, start, out }), 'test');
    const got = await gpu.readF32(out, n);
    const want = columnSumsRef(x, rows, n, stride, start);
    for (let j = 0; j < n; j++) expect(got[j]).toBeCloseTo(want[j], 5);
  });

  it('columnSums over batches: the sum of each token\'s heads', async () => {
    const gpu = await testGpu();
    const [tokens, heads, headDim] = [37, 4, 32];
    const x = randomNormal(tokens * heads * headDim, 3);
    const out = gpu.buffer(tokens * headDim * 4);
    await gpu.run((pass) => columnSums(gpu, pass, { x: gpu.upload(x), rows: heads, n: headDim, stride: headDim, batches: tokens, batchStride: heads * headDim, out }), 'test');
    const got = await gpu.readF32(out, tokens * headDim);
    for (let t = 0; t < tokens; t++) {
      const want = columnSumsRef(x.subarray(t * heads * headDim), heads, headDim, headDim);
      for (let j = 0; j < headDim; j++) expect(got[t * headDim + j]).toBeCloseTo(want[j], 5);
    }
  });

  it('packRows packs the chosen rows after an offset', async () => {
    const gpu = await testGpu();
    const [rows, width, first] = [40, 33, 1];
    const x = randomNormal(rows * width, 2);
    const ids = Uint32Array.from([0, 3, 4, 17, 38]);
    const out = gpu.buffer(ids.length * width * 4);
    await gpu.run((pass) => packRows(gpu, pass, { x: gpu.upload(x), ids: gpu.upload(ids), count: ids.length, width, first, out }), 'test');
    const got = await gpu.readF32(out, ids.length * width);
    ids.forEach((id, i) => expect(Array.from(got.subarray(i * width, (i + 1) * width))).toEqual(Array.from(x.subarray((id + first) * width, (id + first + 1) * width))));
  });

  for (const [n, dim, k] of [[1, 4, 1], [17, 7, 5], [144, 128, 14], [144, 128, 144], [300, 33, 61]]) {
    it(`kCenter picks ${k} of ${n} rows of ${dim} in the reference's order`, async () => {
      const gpu = await testGpu();
      const features = randomNormal((n + 1) * dim, n * 31 + k);
      const scores = gpu.buffer(n * 4);
      const work = gpu.buffer(2 * n * 4);
      await gpu.run((pass) => kCenter(gpu, pass, { features: gpu.upload(features), n, dim, k, first: 1, scores, work }), 'test');
      expect(Array.from(await gpu.readF32(scores, n))).toEqual(Array.from(kCenterRef(features, n, dim, k, 1)));
    });
  }

  for (const [n, width, flagged] of [[144, 12, 3], [144, 12, 14], [144, 12, 144], [50, 7, 13], [1, 1, 1]]) {
    it(`hipruneScores flags ${flagged} of ${n} patches (${width} a row) in the reference's order`, async () => {
      const gpu = await testGpu();
      const r = rng(n + flagged);
      const objectScores = Float32Array.from({ length: n }, () => r());
      objectScores[n - 1] = objectScores[0]; // a tie: the lower index wins
      const lastScores = Float32Array.from({ length: n }, () => r());
      const scores = gpu.buffer(n * 4);
      await gpu.run((pass) => hipruneScores(gpu, pass, { objectScores: gpu.upload(objectScores), lastScores: gpu.upload(lastScores), n, width, flagged, scores }), 'test');
      const got = await gpu.readF32(scores, n);
      const order = Array.from({ length: n }, (_, j) => j).filter((j) => got[j] >= 1e30).sort((a, b) => got[b] - got[a]);
      expect(order).toEqual(hipruneFlagsRef(objectScores, n, width, flagged));
      for (let j = 0; j < n; j++) if (got[j] < 1e30) expect(got[j]).toBe(lastScores[j]);
    });
  }

  it('refuses impossible sizes', async () => {
    const gpu = await testGpu();
    const b = gpu.buffer(64);
    await expect(gpu.run((pass) => kCenter(gpu, pass, { features: b, n: 2, dim: 2, k: 3, scores: b, work: b }), 'test')).rejects.toThrow(/3 centres of 2 rows/);
    await expect(gpu.run((pass) => hipruneScores(gpu, pass, { objectScores: b, lastScores: b, n: 4, width: 2, flagged: 5, scores: b }), 'test')).rejects.toThrow(/5 anchors/);
  });
});
