// Draft-tree kernels: Gumbel keys against the CPU reference, topk over them as draws without
// replacement (first and second draws counted against q and q restricted, chi-square), the
// gather of the chosen tokens' probabilities, and a chained draft's tokens into verify ids.
import { describe, expect, it } from 'vitest';
import { chainIds, gatherRows, gumbelKeys } from '../src/kernels/draft-tree';
import { topk } from '../src/kernels/topk';
import { chainIdsRef, gumbelKeyRef, gumbelTopRef } from '../src/reference/draft-tree';
import { chiSquare, critical } from './stats';
import { rng, testGpu } from './util';

function distributionRows(rows: number, n: number, seed: number): Float32Array {
  const random = rng(seed);
  const q = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += q[r * n + i] = random() < 0.2 ? 0 : random() ** 3; // some zeros, a skewed rest
    for (let i = 0; i < n; i++) q[r * n + i] /= sum;
  }
  return q;
}

describe('draft-tree kernels', () => {
  it('chainIds puts the root and every chained region\'s first word in order, and nothing past them', async () => {
    const gpu = await testGpu();
    const random = rng(9);
    for (const [count, stride] of [[0, 64], [1, 64], [7, 64], [70, 3], [200, 1]]) {
      const chain = Uint32Array.from({ length: Math.max(1, count * stride) }, () => Math.floor(random() * 2 ** 32));
      const root = Math.floor(random() * 2 ** 32);
      const ids = gpu.upload(new Uint32Array(count + 3).fill(0xdeadbeef));
      await gpu.run((pass) => chainIds(gpu, pass, { chain: gpu.upload(chain), ids, root, count, stride }));
      const got = await gpu.readU32(ids);
      expect(Array.from(got.subarray(0, count + 1))).toEqual(Array.from(chainIdsRef(chain, root, count, stride)));
      expect(Array.from(got.subarray(count + 1))).toEqual([0xdeadbeef, 0xdeadbeef]);
    }
  });

  it('gumbelKeys equal the reference, and topk over them gives the reference draws', async () => {
    const gpu = await testGpu();
    const rows = 5, n = 1000, m = 4, seed = 123, step = 77;
    const q = distributionRows(rows, n, 1);
    const keys = gpu.buffer(rows * n * 4);
    const ids = gpu.buffer(rows * m * 4);
    const chosen = gpu.buffer(rows * m * 4);
    const qBuffer = gpu.upload(q);
    await gpu.run((pass) => {
      gumbelKeys(gpu, pass, { q: qBuffer, keys, rows, n, seed, step });
      topk(gpu, pass, { x: keys, out: ids, rows, n, k: m });
      gatherRows(gpu, pass, { x: qBuffer, ids, out: chosen, rows, n, m });
    });
    const got = await gpu.readF32(keys);
    let worst = 0;
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < n; i++) {
        const want = gumbelKeyRef(q[r * n + i], seed, step, r, i);
        if (q[r * n + i] === 0) expect(got[r * n + i]).toBe(Math.fround(want));
        else worst = Math.max(worst, Math.abs(got[r * n + i] - want) / (1 + Math.abs(want)));
      }
    }
    // WGSL's log is within 2^-21 absolute near 1, and -log(u) for u near 1 is tiny: keys agree to
    // about 1e-4 there, which moves no draw here (the next check) and none in distribution.
    expect(worst).toBeLessThan(1e-3);
    const top = await gpu.readU32(ids);
    const values = await gpu.readF32(chosen);
    for (let r = 0; r < rows; r++) {
      expect(Array.from(top.subarray(r * m, (r + 1) * m))).toEqual(gumbelTopRef(q.subarray(r * n, (r + 1) * n), m, seed, step, r));
      for (let j = 0; j < m; j++) expect(values[r * m + j]).toBe(q[r * n + top[r * m + j]]);
    }
  });

  it('the first two Gumbel-top draws are distributed as draws from q without replacement (4000 rows, chi-square)', async () => {
    const gpu = await testGpu();
    const q = [0.45, 0.25, 0.15, 0.1, 0.05, 0];
    const n = q.length, rows = 4000;
    const qRows = new Float32Array(rows * n);
    for (let r = 0; r < rows; r++) qRows.set(q, r * n);
    const keys = gpu.buffer(rows * n * 4);
    const ids = gpu.buffer(rows * 2 * 4);
    await gpu.run((pass) => {
      gumbelKeys(gpu, pass, { q: gpu.upload(qRows), keys, rows, n, seed: 9, step: 3 });
      topk(gpu, pass, { x: keys, out: ids, rows, n, k: 2 });
    });
    const top = await gpu.readU32(ids);
    const counts = new Map<string, number>();
    const expected = new Map<string, number>();
    for (let r = 0; r < rows; r++) {
      const key = `${top[2 * r]},${top[2 * r + 1]}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    // P(i then j) = q_i q_j / (1 - q_i); the token with q = 0 is never drawn while others remain.
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j && q[i] > 0 && q[j] > 0) expected.set(`${i},${j}`, (q[i] * q[j]) / (1 - q[i]));
    const { statistic, df } = chiSquare(counts, expected, rows);
    console.log(`Gumbel-top-2 pairs: chi-square ${statistic.toFixed(1)} with ${df} df (critical ${critical(df).toFixed(1)})`);
    expect(statistic).toBeLessThan(critical(df));
    expect([...counts.keys()].some((k) => k.split(',').includes('5'))).toBe(false);
  });
});
