import { describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu';
import { type SamplingOptions, applyRepetitionPenalty, sample } from '../src/kernels/sampling';
import { argmaxRef } from '../src/reference/softmax';
import { drawRef, repetitionPenaltyRef, samplingDistributionRef, samplingUniform } from '../src/reference/sampling';
import { reductionVariants } from './gpu-variants';
import { expectClose, randomNormal, rng, testGpu } from './util';

type Options = Omit<SamplingOptions, 'seed' | 'step'>;

// Where the GPU (f32, parallel sums) and the reference (f64, sequential) may disagree, and by how
// much (relative to the total mass, i.e. in probability):
// - each weight e^a: WGSL exp is within 3 + 2|a| ulp; a reaches ~30 here, so < 4e-6 relative;
// - a sum in f32: a thread adds a contiguous chunk of up to 594 (151936 / 256) weights, then
//   256 chunk sums are added, so a cumulative sum is off by at most ~850 ulp = 5e-5 (typically
//   ~sqrt of that).
// A top-p cut or a draw may therefore flip only when the reference's cumulative mass is within
// 5e-5 of top-p or of u. Top-k and min-p decisions are exact (counts; the same f32 arithmetic).
const BOUNDARY = 5e-5;

async function runSampler(gpu: Gpu, logits: Float32Array, rows: number, vocab: number, options: SamplingOptions, outputs: { probs?: boolean; thresholds?: boolean } = {}) {
  const tokens = gpu.buffer(rows * 4);
  const probs = outputs.probs ? gpu.buffer(rows * vocab * 4) : undefined;
  const thresholds = outputs.thresholds ? gpu.buffer(rows * 4) : undefined;
  await gpu.run((pass) => sample(gpu, pass, { logits: gpu.upload(logits), tokens, probs, thresholds, rows, vocab, ...options }));
  return {
    tokens: await gpu.readU32(tokens, rows),
    probs: probs ? await gpu.readF32(probs, rows * vocab) : null,
    thresholds: thresholds ? await gpu.readF32(thresholds, rows) : null,
  };
}

const filterCases: Options[] = [
  { temperature: 1 },
  { topK: 1 },
  { topK: 40 },
  { topP: 0.9 },
  { topP: 0 },
  { minP: 0.05 },
  { temperature: 0.7, topK: 50, topP: 0.8, minP: 0.02 },
  { temperature: 1.5, topK: 100_000_000, topP: 0.999 },
];

for (const variant of reductionVariants) {
  describe(`sample (${variant.name})`, () => {
    for (const [rows, vocab] of [[3, 1], [3, 7], [4, 1000], [2, 151_936]]) {
      it(`keeps the reference's set for every filter combination, ${rows}x${vocab}`, async () => {
        const gpu = await variant.gpu();
        const logits = randomNormal(rows * vocab, vocab + rows, 3);
        if (vocab >= 1000) {
          logits[5] = logits[6] = logits[7] = 20; // a tie at the top
          for (let i = 0; i < vocab; i += 97) logits[vocab + i] = -Infinity; // masked tokens in row 1
        }
        for (const options of filterCases) {
          const gpuResult = await runSampler(gpu, logits, rows, vocab, { ...options, seed: 1, step: 0 }, { thresholds: true });
          for (let r = 0; r < rows; r++) {
            const row = logits.subarray(r * vocab, (r + 1) * vocab);
            const ref = samplingDistributionRef(row, options);
            const threshold = gpuResult.thresholds![r];
            const keptByGpu = Array.from(row.keys()).filter((i) => row[i] >= threshold);
            if (keptByGpu.join() !== ref.kept.join()) {
              // Only a top-p cut within rounding of topP may differ, and only by tokens whose
              // probability (at temperature 1, over the top-k set, as top-p sees it) adds up to
              // less than the rounding bound: with topP = 0.999 over 151936 tokens the tail
              // tokens carry ~1e-8 each, so a few of them flip.
              const where = `${JSON.stringify(options)} row ${r}: kept ${keptByGpu.length}, reference ${ref.kept.length}`;
              expect(ref.topPMargin, where).toBeLessThan(BOUNDARY);
              const inGpu = new Set(keptByGpu), inRef = new Set(ref.kept);
              const differing = [...keptByGpu.filter((i) => !inRef.has(i)), ...ref.kept.filter((i) => !inGpu.has(i))];
              const topKSet = samplingDistributionRef(row, { topK: options.topK }).kept;
              const max = topKSet.reduce((m, i) => Math.max(m, row[i]), -Infinity);
              const mass = (ids: number[]) => ids.reduce((sum, i) => sum + Math.exp(row[i] - max), 0);
              expect(mass(differing) / mass(topKSet), where).toBeLessThan(BOUNDARY);
            }
            expect(ref.kept).toContain(gpuResult.tokens[r]);
          }
        }
      });
    }

    for (const [rows, vocab] of [[256, 1000], [12, 151_936]]) {
      it(`picks the reference token for the same uniform on ${rows}x${vocab} rows (all but a boundary-flagged few)`, async () => {
        const gpu = await variant.gpu();
        const logits = randomNormal(rows * vocab, 1234 + vocab, 2.5);
        for (const options of [{ temperature: 1.3 }, { temperature: 0.7, topK: 100, topP: 0.9, minP: 0.01 }] as Options[]) {
          const seed = 0xdecafbad, step = 17;
          const { tokens } = await runSampler(gpu, logits, rows, vocab, { ...options, seed, step });
          let flagged = 0;
          for (let r = 0; r < rows; r++) {
            const ref = samplingDistributionRef(logits.subarray(r * vocab, (r + 1) * vocab), options);
            const u = samplingUniform(seed, step, r);
            const { token, cdfEdges } = drawRef(ref.probs, u);
            if (tokens[r] !== token) {
              // the GPU's token must sit right next to u in the reference CDF
              const [lo, hi] = cdfEdges(tokens[r]);
              expect(Math.max(lo - u, u - hi), `row ${r}: GPU ${tokens[r]}, reference ${token}`).toBeLessThan(BOUNDARY);
              flagged++;
            }
          }
          expect(flagged).toBeLessThanOrEqual(2);
        }
      });
    }

    it('is greedy (the argmax, ties to the lowest id) at temperature 0, with or without extra outputs', async () => {
      const gpu = await variant.gpu();
      const rows = 3, vocab = 151_936;
      const logits = randomNormal(rows * vocab, 77, 3);
      logits[100_000] = logits[90_000] = 50; // row 0: tie, lowest wins
      const expected = Array.from(argmaxRef(logits, rows, vocab));
      expect(expected[0]).toBe(90_000);
      const options = { temperature: 0, topK: 5, topP: 0.5, seed: 9, step: 9 };
      expect(Array.from((await runSampler(gpu, logits, rows, vocab, options)).tokens)).toEqual(expected);
      const withOutputs = await runSampler(gpu, logits, rows, vocab, options, { probs: true, thresholds: true });
      expect(Array.from(withOutputs.tokens)).toEqual(expected);
      for (let r = 0; r < rows; r++) {
        expect(withOutputs.probs![r * vocab + expected[r]]).toBe(1);
        expect(withOutputs.probs!.subarray(r * vocab, (r + 1) * vocab).reduce((a, b) => a + b, 0)).toBe(1);
      }
    });
  });
}

describe('sample', () => {
  it('draws from the reference distribution (chi-square over 4096 draws, fixed seed)', async () => {
    const gpu = await testGpu();
    const vocab = 24, rows = 4096;
    const row = randomNormal(vocab, 5, 1.5);
    const logits = new Float32Array(rows * vocab);
    for (let r = 0; r < rows; r++) logits.set(row, r * vocab);
    for (const options of [{ temperature: 0.9 }, { temperature: 0.7, topK: 12, topP: 0.95, minP: 0.02 }] as Options[]) {
      const { tokens } = await runSampler(gpu, logits, rows, vocab, { ...options, seed: 42, step: 3 });
      const { probs } = samplingDistributionRef(row, options);
      const counts = new Array(vocab).fill(0);
      for (const t of tokens) counts[t]++;
      let chiSquare = 0;
      let categories = 0;
      for (let i = 0; i < vocab; i++) {
        if (probs[i] === 0) {
          expect(counts[i], `token ${i} is outside the kept set`).toBe(0);
          continue;
        }
        chiSquare += (counts[i] - rows * probs[i]) ** 2 / (rows * probs[i]);
        categories++;
      }
      // With k categories, chi-square has k - 1 degrees of freedom: mean k - 1, sd sqrt(2(k - 1)).
      // Assert below mean + 5 sd (p < 1e-5 for a correct sampler; deterministic given the seed).
      const dof = categories - 1;
      expect(chiSquare, JSON.stringify(options)).toBeLessThan(dof + 5 * Math.sqrt(2 * dof));
      // and in total variation: the expected TV of 4096 honest draws is ~0.03 here
      const tv = 0.5 * counts.reduce((sum, c, i) => sum + Math.abs(c / rows - probs[i]), 0);
      expect(tv).toBeLessThan(0.05);
    }
  });

  it('writes the sampled distribution when asked', async () => {
    const gpu = await testGpu();
    const rows = 2, vocab = 5000;
    const logits = randomNormal(rows * vocab, 8, 3);
    const options: Options = { temperature: 0.8, topK: 200, topP: 0.95 };
    const { probs } = await runSampler(gpu, logits, rows, vocab, { ...options, seed: 1, step: 1 }, { probs: true });
    for (let r = 0; r < rows; r++) {
      const ref = samplingDistributionRef(logits.subarray(r * vocab, (r + 1) * vocab), options);
      // each probability within the weight error (4e-6 relative) plus the total's (5e-5 relative)
      expectClose(probs!.subarray(r * vocab, (r + 1) * vocab), ref.probs, 1e-9, 6e-5);
    }
  });

  it('reproduces with the same seed and step, and changes with the seed or the step', async () => {
    const gpu = await testGpu();
    const rows = 64, vocab = 500;
    const logits = randomNormal(rows * vocab, 3, 0.5); // flat: many plausible tokens per row
    const options = { temperature: 1, topP: 0.99 };
    const a = (await runSampler(gpu, logits, rows, vocab, { ...options, seed: 7, step: 0 })).tokens;
    const again = (await runSampler(gpu, logits, rows, vocab, { ...options, seed: 7, step: 0 })).tokens;
    const otherSeed = (await runSampler(gpu, logits, rows, vocab, { ...options, seed: 8, step: 0 })).tokens;
    const otherStep = (await runSampler(gpu, logits, rows, vocab, { ...options, seed: 7, step: 1 })).tokens;
    expect(Array.from(again)).toEqual(Array.from(a));
    const differing = (b: Uint32Array) => b.filter((t, i) => t !== a[i]).length;
    expect(differing(otherSeed)).toBeGreaterThan(rows * 0.8);
    expect(differing(otherStep)).toBeGreaterThan(rows * 0.8);
  });

  it('spreads the uniforms of (seed, step, row) evenly', () => {
    // 16 bins of 2^14 draws over rows and steps: chi-square with 15 dof, mean 15, sd 5.5.
    const counts = new Array(16).fill(0);
    const n = 1 << 14;
    for (let i = 0; i < n; i++) counts[Math.floor(samplingUniform(12345, i >> 7, i & 127) * 16)]++;
    const chiSquare = counts.reduce((sum, c) => sum + (c - n / 16) ** 2 / (n / 16), 0);
    expect(chiSquare).toBeLessThan(15 + 5 * 5.5);
  });

  it('rejects bad options before dispatching', async () => {
    const gpu = await testGpu();
    const logits = gpu.buffer(64), tokens = gpu.buffer(4);
    const pass = {} as GPUComputePassEncoder;
    const base = { logits, tokens, rows: 1, vocab: 16, seed: 0, step: 0 };
    expect(() => sample(gpu, pass, { ...base, temperature: -1 })).toThrow(/temperature/);
    expect(() => sample(gpu, pass, { ...base, topP: 1.5 })).toThrow(/topP/);
    expect(() => sample(gpu, pass, { ...base, topK: 2.5 })).toThrow(/topK/);
    expect(() => sample(gpu, pass, { ...base, seed: -1 })).toThrow(/seed/);
    expect(() => sample(gpu, pass, { ...base, tokens: logits })).toThrow(/alias/);
  });
});

describe('applyRepetitionPenalty', () => {
  it('changes exactly the listed tokens (each once), dividing positive logits and multiplying negative ones', async () => {
    const gpu = await testGpu();
    const rows = 3, vocab = 1000;
    const logits = randomNormal(rows * vocab, 61, 3);
    logits[0] = 0; // zero stays zero
    const r = rng(62);
    const ids = Uint32Array.from({ length: 300 }, () => Math.floor(r() * 200)); // many duplicates
    ids[5] = 0;
    ids[6] = vocab + 5; // past the vocabulary: ignored
    const penalty = 1.3;
    const buffer = gpu.upload(logits);
    await gpu.run((pass) => applyRepetitionPenalty(gpu, pass, { logits: buffer, rows, vocab, tokens: gpu.upload(ids), count: ids.length, penalty }));
    const actual = await gpu.readF32(buffer, rows * vocab);
    // Exact: one f32 multiply per listed logit on both sides.
    expect(Array.from(actual)).toEqual(Array.from(repetitionPenaltyRef(logits, rows, vocab, ids, penalty)));
    const listed = new Set(Array.from(ids).filter((id) => id < vocab));
    for (let row = 0; row < rows; row++) {
      for (let i = 0; i < vocab; i++) {
        const before = logits[row * vocab + i], after = actual[row * vocab + i];
        if (!listed.has(i) || before === 0) expect(after).toBe(before);
        else if (before > 0) expect(after).toBeCloseTo(before / penalty, 5);
        else expect(after).toBeCloseTo(before * penalty, 5);
      }
    }
  });

  it('is applied before the filters when passed to sample()', async () => {
    const gpu = await testGpu();
    const vocab = 8;
    const logits = new Float32Array([5, 4.9, 1, 0, -1, -2, -3, -4]);
    const buffer = gpu.upload(logits);
    const tokens = gpu.buffer(4);
    // greedy would pick 0; penalizing 0 (5 / 1.1 = 4.55 < 4.9) makes it 1
    await gpu.run((pass) => sample(gpu, pass, { logits: buffer, tokens, rows: 1, vocab, temperature: 0, seed: 0, step: 0, penalty: { tokens: gpu.upload(new Uint32Array([0, 0, 0])), count: 3, penalty: 1.1 } }));
    expect((await gpu.readU32(tokens, 1))[0]).toBe(1);
  });
});
