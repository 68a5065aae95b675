// Token merging (ToMe, PiToMe) against the float64 CPU reference: plans identical over token
// counts from 2 to CLIP-L's 577, r from 0 to the most allowed, with and without a class token;
// merged rows close; plan invariants; tiny cases worked by hand; exact ties; bad arguments.
import { describe, expect, it } from 'vitest';
import { type Gpu } from '../src/gpu';
import { MERGE_MAX_TOKENS, type MergeMethod, maxMerges, mergePlan, mergeTokens } from '../src/kernels/token-merge';
import { cosineMatrix, mergePlanReference, mergeTokensReference, pitomeEnergies } from '../src/reference/token-merge';
import { reductionVariants } from './gpu-variants';
import { expectClose, randomNormal, rng, testGpu } from './util';

/**
 * Keys of a ViT are clustered, not white noise: rows share a common direction with weights spread
 * over [0, 3). That also spreads PiToMe's energies out (white noise crowds them into ~0.01, so
 * neighbours at 577 tokens sit ~1e-8 apart, under f32 rounding); separatedMetric picks seeds.
 */
function metricRows(N: number, D: number, seed: number): Float32Array {
  const metric = randomNormal(N * D, seed);
  const common = randomNormal(D, seed + 1);
  const r = rng(seed + 2);
  for (let i = 0; i < N; i++) {
    const weight = 3 * r();
    for (let d = 0; d < D; d++) metric[i * D + d] += weight * common[d];
  }
  return metric;
}

async function gpuPlan(gpu: Gpu, metric: Float32Array, N: number, D: number, r: number, protect: number, method: MergeMethod, margin?: number): Promise<Uint32Array> {
  const plan = gpu.buffer(N * 4);
  await gpu.run((pass) => mergePlan(gpu, pass, { metric: gpu.upload(metric), N, D, r, protect, method, margin, plan }), 'merge plan');
  return gpu.readU32(plan, N);
}

/** The plan is onto 0..merged-1 and 0, 1, ..., merged-1 is a subsequence of it: one token per output (its survivor) can be picked so that survivors keep their order. */
function expectValidPlan(plan: Uint32Array, N: number, r: number, protect: number): void {
  const merged = N - r;
  const hit = new Uint8Array(merged);
  let next = 0;
  for (let i = 0; i < N; i++) {
    expect(plan[i], `plan[${i}]`).toBeLessThan(merged);
    hit[plan[i]] = 1;
    if (plan[i] === next) next++;
    if (i < protect) expect(plan[i], 'a protected token stays where it is').toBe(i);
  }
  expect(hit.every((h) => h === 1), 'plan is onto').toBe(true);
  expect(next, 'survivors keep their order').toBe(merged);
}

/**
 * The smallest gap between quantities whose order decides the plan: for PiToMe the energies of
 * ranks 0..2r (their order splits A from B, rank 2r is the first protected), for ToMe each A
 * token's best and second-best similarity and the r-th and r+1-th best. The GPU's f32 energies
 * are within 1.3e-7 of float64's (measured at 145 to 1024 tokens); closer values may swap.
 */
function decisiveGap(S: Float64Array[], r: number, method: MergeMethod, margin = 0.5): number {
  const M = S.length;
  const gaps: number[] = [];
  const sortedGaps = (values: number[], upTo: number) => {
    const sorted = [...values].sort((a, b) => b - a).slice(0, upTo + 1);
    for (let i = 1; i < sorted.length; i++) gaps.push(sorted[i - 1] - sorted[i]);
  };
  // Two tokens become one output whichever of them is A.
  if (method === 'pitome' && M > 2) sortedGaps(Array.from(pitomeEnergies(S, margin)), 2 * r);
  if (method === 'tome' && r > 0) {
    const best: number[] = [];
    for (let a = 0; a < M; a += 2) {
      const row = Array.from({ length: Math.floor(M / 2) }, (_, q) => S[a][2 * q + 1]).sort((x, y) => y - x);
      if (row.length > 1) gaps.push(row[0] - row[1]);
      best.push(row[0]);
    }
    sortedGaps(best, r);
  }
  return gaps.length ? Math.min(...gaps) : Infinity;
}

/**
 * metricRows data whose plans for every r in rs are decided by gaps of at least 1e-6 (6x the f32
 * error), trying seeds from `seed` on: white-noise-like energies crowd (their smallest gap is
 * about spread / N², ~1e-7 at 577 tokens), so at the largest r about one seed in four qualifies.
 */
function separatedMetric(N: number, D: number, protect: number, method: MergeMethod, rs: number[], seed: number, margin?: number): Float32Array {
  for (let s = seed; s < seed + 40; s++) {
    const metric = metricRows(N, D, s);
    const S = cosineMatrix(metric, N, D, protect);
    if (rs.every((r) => decisiveGap(S, r, method, margin) > 1e-6)) return metric;
  }
  throw new Error(`no seed from ${seed} gives ${method} data without near-ties for ${N} tokens`);
}

describe('mergePlan', () => {
  const shapes = [
    { N: 2, D: 5 },
    { N: 17, D: 37 },
    { N: 145, D: 64 },
    { N: 577, D: 64 }, // CLIP-L/14 at 336: 576 patches and a class token
  ];
  for (const method of ['tome', 'pitome'] as const) {
    for (const { N, D } of shapes) {
      for (const protect of [0, 1]) {
        it(`${method}: ${N} tokens of ${D}, protect ${protect}, r from 0 to the most`, async () => {
          const gpu = await testGpu();
          const most = maxMerges(N, protect, method);
          const rs = [...new Set([0, 1, Math.floor(most / 3), most])].filter((r) => r <= most);
          const metric = separatedMetric(N, D, protect, method, rs, N * 10 + protect);
          for (const r of rs) {
            const plan = await gpuPlan(gpu, metric, N, D, r, protect, method);
            expect(Array.from(plan), `r = ${r}`).toEqual(Array.from(mergePlanReference(metric, N, D, r, protect, method)));
            expectValidPlan(plan, N, r, protect);
          }
        });
      }
    }
  }

  it('the largest plan: 1024 tokens', async () => {
    const gpu = await testGpu();
    const [N, D] = [MERGE_MAX_TOKENS, 16];
    // ToMe at its most; PiToMe ranks all 1023 either way (at its most, 511, 1023 energies within
    // f32 rounding of a neighbour make a well-separated seed rare: the 577-token cases cover it).
    for (const [method, r] of [['tome', 512], ['pitome', 100]] as const) {
      const metric = separatedMetric(N, D, 1, method, [r], 7);
      const plan = await gpuPlan(gpu, metric, N, D, r, 1, method);
      expectValidPlan(plan, N, r, 1);
      expect(Array.from(plan)).toEqual(Array.from(mergePlanReference(metric, N, D, r, 1, method)));
    }
  });

  it('the workgroup-memory reduction variant plans the same', async () => {
    const gpu = await reductionVariants[1].gpu();
    const [N, D] = [145, 37];
    for (const method of ['tome', 'pitome'] as const) {
      const r = Math.floor(maxMerges(N, 1, method) / 2);
      const metric = separatedMetric(N, D, 1, method, [r], 3);
      expect(Array.from(await gpuPlan(gpu, metric, N, D, r, 1, method))).toEqual(Array.from(mergePlanReference(metric, N, D, r, 1, method)));
    }
  });

  it('pitome with another margin', async () => {
    const gpu = await testGpu();
    const [N, D, r, margin] = [145, 20, 50, 0.2];
    const metric = separatedMetric(N, D, 1, 'pitome', [r], 11, margin);
    const want = mergePlanReference(metric, N, D, r, 1, 'pitome', margin);
    expect(Array.from(await gpuPlan(gpu, metric, N, D, r, 1, 'pitome', margin))).toEqual(Array.from(want));
    expect(Array.from(want)).not.toEqual(Array.from(mergePlanReference(metric, N, D, r, 1, 'pitome'))); // the margin matters
  });

  it('tome by hand: each A token picks its B, the most similar pairs merge', async () => {
    const gpu = await testGpu();
    // Class token, then A = tokens 1, 3, 5 and B = tokens 2, 4 (alternating after the protected one).
    // Token 1 ≈ token 4 (cos 0.99), token 3 ≈ token 2 (cos 0.8), token 5 is orthogonal to both Bs.
    const metric = new Float32Array([
      1, 1, 1, // 0: class token, identical to token 1 but protected
      1, 0, 0, // 1: A
      0, 1, 0, // 2: B
      0.6, 0.8, 0, // 3: A, cos with 2 = 0.8
      1, 0.141, 0, // 4: B, cos with 1 ≈ 0.99
      0, 0, 1, // 5: A, cos 0 with both
    ]);
    // r = 1: only 1 → 4 merges. Outputs: 0, 2, 3, 4(+1), 5 → [0, 3, 1, 2, 3, 4].
    expect(Array.from(await gpuPlan(gpu, metric, 6, 3, 1, 1, 'tome'))).toEqual([0, 3, 1, 2, 3, 4]);
    // r = 2: 3 → 2 too. Outputs: 0, 2(+3), 4(+1), 5 → [0, 2, 1, 1, 2, 3].
    expect(Array.from(await gpuPlan(gpu, metric, 6, 3, 2, 1, 'tome'))).toEqual([0, 2, 1, 1, 2, 3]);
    // r = 3: 5 merges into its best B; its cosines tie at 0, so the lower index, token 2.
    expect(Array.from(await gpuPlan(gpu, metric, 6, 3, 3, 1, 'tome'))).toEqual([0, 2, 1, 1, 2, 1]);
    expect(Array.from(mergePlanReference(metric, 6, 3, 3, 1, 'tome'))).toEqual([0, 2, 1, 1, 2, 1]);
  });

  it('pitome by hand: the high-energy cluster merges, the outliers are protected', async () => {
    const gpu = await testGpu();
    // Tokens 0, 2, 4 point almost the same way (highest energies, 4 the most central); 3 leans a
    // little towards them, 1 is orthogonal to everything. Energy order: 4, 2, 0, 3, 1. r = 1: the
    // top 2 are 4 (rank 0, A) and 2 (rank 1, B): 4 merges into 2. Outputs: 0, 1, 2(+4), 3.
    const metric = new Float32Array([
      1, 0.1, 0, 0, // 0
      0, 0, 1, 0, // 1
      1, -0.05, 0, 0, // 2
      0.3, 0, 0, 1, // 3
      1, 0.02, 0, 0, // 4
    ]);
    const E = pitomeEnergies(cosineMatrix(metric, 5, 4, 0));
    expect([4, 2, 0, 3, 1].map((i) => E[i]).every((e, k, all) => k === 0 || e < all[k - 1])).toBe(true);
    expect(Array.from(await gpuPlan(gpu, metric, 5, 4, 1, 0, 'pitome'))).toEqual([0, 1, 2, 3, 2]);
    // r = 2: ranks 0..3 = 4, 2, 0, 3, so A = 4, 0 and B = 2, 3; both As are far closer to 2 (cos
    // > 0.98) than to 3 (0.29). Outputs: 1, 2(+0, +4), 3 → [1, 0, 1, 2, 1].
    expect(Array.from(await gpuPlan(gpu, metric, 5, 4, 2, 0, 'pitome'))).toEqual([1, 0, 1, 2, 1]);
    expect(Array.from(mergePlanReference(metric, 5, 4, 2, 0, 'pitome'))).toEqual([1, 0, 1, 2, 1]);
  });

  it('exact ties (flat background: identical tokens) break the same way on both sides', async () => {
    const gpu = await testGpu();
    const [N, D] = [65, 24];
    const metric = metricRows(N, D, 5);
    const background = metric.slice(D, 2 * D);
    for (let i = 1; i < N; i++) if (i % 3 !== 0) metric.set(background, i * D); // two thirds of the patches alike
    for (const method of ['tome', 'pitome'] as const) {
      for (const r of [5, maxMerges(N, 1, method)]) {
        const plan = await gpuPlan(gpu, metric, N, D, r, 1, method);
        expect(Array.from(plan), `${method} r = ${r}`).toEqual(Array.from(mergePlanReference(metric, N, D, r, 1, method)));
        expectValidPlan(plan, N, r, 1);
      }
    }
  });

  it('refuses r over the most, too many tokens, short buffers, an unknown method', async () => {
    const gpu = await testGpu();
    const metric = gpu.buffer(2000 * 8 * 4);
    const plan = gpu.buffer(2000 * 4);
    const run = (args: Partial<Parameters<typeof mergePlan>[2]>) =>
      gpu.run((pass) => mergePlan(gpu, pass, { metric, N: 577, D: 8, r: 1, protect: 1, method: 'tome', plan, ...args }));
    await expect(run({ r: 289 })).rejects.toThrow(/r 289 is over tome's most, 288/);
    await expect(run({ r: 289, method: 'pitome' })).rejects.toThrow(/r 289 is over pitome's most, 288/);
    await expect(run({ N: 2, r: 1, protect: 1 })).rejects.toThrow(/over tome's most, 0/);
    await expect(run({ N: 1025 })).rejects.toThrow(/1025 tokens; plans cover 1\.\.1024/);
    await expect(run({ N: 577, D: 8, plan: gpu.buffer(100) })).rejects.toThrow(/plan must be u32 \[577\]/);
    await expect(run({ method: 'bsm' as MergeMethod })).rejects.toThrow(/unknown method/);
    await expect(run({ r: 1.5 })).rejects.toThrow(/bad r/);
    expect(maxMerges(577, 1, 'tome')).toBe(288);
    expect(maxMerges(578, 1, 'tome')).toBe(289); // the odd A token out may merge too
    expect(maxMerges(578, 1, 'pitome')).toBe(288);
  });
});

describe('mergeTokens', () => {
  const cases = [
    { N: 2, width: 3, r: 1, protect: 0, method: 'tome' },
    { N: 17, width: 70, r: 8, protect: 1, method: 'pitome' },
    { N: 145, width: 131, r: 24, protect: 1, method: 'tome' },
    { N: 145, width: 131, r: 72, protect: 1, method: 'tome' }, // the most: every A token
    { N: 577, width: 200, r: 96, protect: 1, method: 'pitome' },
    { N: 40, width: 65, r: 0, protect: 1, method: 'tome' }, // nothing merges: a copy with sizes
  ] as const;
  for (const c of cases) {
    it(`${c.method}: ${c.N} tokens of ${c.width} into ${c.N - c.r}, sizes and log sizes`, async () => {
      const gpu = await testGpu();
      const { N, width, r } = c;
      const merged = N - r;
      const D = 16;
      const metric = separatedMetric(N, D, c.protect, c.method, [r], N + width);
      const x = randomNormal(N * width, N * width);
      const rs = rng(N);
      const sizes = Float32Array.from({ length: N }, () => 1 + Math.floor(4 * rs())); // after earlier merges
      const planBuffer = gpu.buffer(N * 4);
      const [out, outSizes, outLogSizes] = [gpu.buffer(merged * width * 4), gpu.buffer(merged * 4), gpu.buffer(merged * 4)];
      // Plan and merge in one submission, as a ViT block records them.
      await gpu.run((pass) => {
        mergePlan(gpu, pass, { metric: gpu.upload(metric), N, D, r, protect: c.protect, method: c.method, plan: planBuffer });
        mergeTokens(gpu, pass, { x: gpu.upload(x), sizes: gpu.upload(sizes), plan: planBuffer, N, width, merged, out, outSizes, outLogSizes });
      });
      const plan = await gpu.readU32(planBuffer, N);
      expect(Array.from(plan)).toEqual(Array.from(mergePlanReference(metric, N, D, r, c.protect, c.method)));
      const want = mergeTokensReference(x, sizes, plan, N, width, merged);
      // A mean of a few sizes·x terms in f32: a few ulps of the largest term, |x| < 6.
      expectClose(await gpu.readF32(out, merged * width), want.out, 1e-5, 1e-5, 'merged rows');
      const gotSizes = await gpu.readF32(outSizes, merged);
      expect(Array.from(gotSizes)).toEqual(Array.from(want.sizes)); // small integers: exact
      expect(gotSizes.reduce((a, b) => a + b, 0)).toBe(sizes.reduce((a, b) => a + b, 0));
      expectClose(await gpu.readF32(outLogSizes, merged), want.logSizes, 1e-6, 0, 'log sizes'); // WGSL log: 2^-21 absolute near 1
    });
  }

  it('follows any plan onto the outputs, not only mergePlan\'s, and works without log sizes', async () => {
    const gpu = await testGpu();
    const [N, width, merged] = [300, 33, 7];
    const r = rng(9);
    const plan = Uint32Array.from({ length: N }, (_, i) => (i < merged ? i : Math.floor(r() * merged)));
    const x = randomNormal(N * width, 10);
    const sizes = Float32Array.from({ length: N }, () => 0.5 + r());
    const [out, outSizes] = [gpu.buffer(merged * width * 4), gpu.buffer(merged * 4)];
    await gpu.run((pass) => mergeTokens(gpu, pass, { x: gpu.upload(x), sizes: gpu.upload(sizes), plan: gpu.upload(plan), N, width, merged, out, outSizes }));
    const want = mergeTokensReference(x, sizes, plan, N, width, merged);
    expectClose(await gpu.readF32(out, merged * width), want.out, 1e-5, 1e-5, 'merged rows');
    expectClose(await gpu.readF32(outSizes, merged), want.sizes, 0, 1e-6, 'sizes'); // ~40 terms each
  });

  it('refuses an output aliasing x and short buffers', async () => {
    const gpu = await testGpu();
    const x = gpu.buffer(10 * 8 * 4);
    const small = gpu.buffer(10 * 4);
    const run = (args: Partial<Parameters<typeof mergeTokens>[2]>) =>
      gpu.run((pass) => mergeTokens(gpu, pass, { x, sizes: small, plan: small, N: 10, width: 8, merged: 6, out: gpu.buffer(6 * 8 * 4), outSizes: small, ...args }));
    await expect(run({ out: x })).rejects.toThrow(/different buffer from x/);
    await expect(run({ out: small })).rejects.toThrow(/out must be f32 \[6\]\[8\]/);
    await expect(run({ merged: 11 })).rejects.toThrow(/10 tokens of 8 into 11/);
  });
});
