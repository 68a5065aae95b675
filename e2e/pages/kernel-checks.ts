// Kernel-vs-reference checks run by the browser page (e2e/pages/kernels.ts), so the browser path
// (navigator.gpu, Chromium's WGSL compiler, its bind-group and uniform handling) is proven, not
// just Node's Dawn. Each check compares with the same CPU reference (src/reference) and the same
// tolerance as the Node test named in its comment, on small shapes: the whole page stays under
// ~30 s on SwiftShader. Each returns the worst error it saw and whether it is within tolerance.
import { GGMLType, type GGMLTypeId, typeName } from '../../src/formats/ggml-types';
import { dequantize, quantize } from '../../src/formats/quantize';
import { type Gpu, requestGpu } from '../../src/gpu';
import { attention, treeMaskFromParents } from '../../src/kernels/attention';
import { add } from '../../src/kernels/elementwise';
import { embedding } from '../../src/kernels/embedding';
import { type KvFormat, PAGE, createKvCache, identityPageTable, kvWrite } from '../../src/kernels/kv-cache';
import { type MatmulVariant, matmul, uploadWeight } from '../../src/kernels/matmul';
import { rmsNorm } from '../../src/kernels/norm';
import { type RopeLayout, rope, ropeFrequencies, ropeTable } from '../../src/kernels/rope';
import { type SamplingOptions, sample } from '../../src/kernels/sampling';
import { argmax, softmax } from '../../src/kernels/softmax';
import { type MaskRef, attentionRef, dequantizeKvRef, physicalSlotRef, visibleRef } from '../../src/reference/attention';
import { addRef } from '../../src/reference/elementwise';
import { embeddingRef } from '../../src/reference/embedding';
import { matmulMagnitudeRef, matmulRef } from '../../src/reference/matmul';
import { rmsNormRef } from '../../src/reference/norm';
import { ropeRef } from '../../src/reference/rope';
import { drawRef, samplingDistributionRef, samplingUniform } from '../../src/reference/sampling';
import { argmaxRef, softmaxRef } from '../../src/reference/softmax';
import { randomNormal, randomTree, rng } from '../../test/random';

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  /** Wall milliseconds the check took, setup and readback included. */
  ms?: number;
}

type Check = (gpu: Gpu) => Promise<CheckResult | CheckResult[]>;

const T = GGMLType;

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** mulberry32, as test/util.ts. */
function maxAbsError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) || (a[i] === b[i] ? 0 : Infinity));
  return worst;
}

/**
 * Every |actual - expected| <= atol + rtol·|expected| (test/util.ts expectClose): the worst
 * element's error and how far it is from its bound (<= 1 passes).
 */
function closeness(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): { ok: boolean; detail: string } {
  if (actual.length !== expected.length) return { ok: false, detail: `length ${actual.length}, expected ${expected.length}` };
  let worst = 0, worstAt = -1, maxAbs = 0;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const ratio = Number.isNaN(err) ? Infinity : err / (atol + rtol * Math.abs(expected[i]));
    maxAbs = Math.max(maxAbs, Number.isNaN(err) ? Infinity : err);
    if (ratio > worst) {
      worst = ratio;
      worstAt = i;
    }
  }
  const where = worstAt >= 0 ? ` (worst at ${worstAt}: ${actual[worstAt]} vs ${expected[worstAt]})` : '';
  return { ok: worst <= 1, detail: `max abs error ${maxAbs.toExponential(2)}, ${(worst * 100).toFixed(1)}% of tolerance (atol ${atol}, rtol ${rtol})${where}` };
}

async function timed(name: string, body: () => Promise<{ ok: boolean; detail: string }>): Promise<CheckResult> {
  const start = performance.now();
  try {
    const result = await body();
    return { name, ...result, ms: performance.now() - start };
  } catch (error) {
    return { name, ok: false, detail: `threw ${error instanceof Error ? error.message : String(error)}`, ms: performance.now() - start };
  }
}

async function checkAdd(gpu: Gpu): Promise<CheckResult> {
  return timed('add', async () => {
    const n = 70_001;
    const a = random(n, 1), b = random(n, 2);
    const out = gpu.buffer(n * 4);
    await gpu.run((pass) => add(gpu, pass, { a: gpu.upload(a), b: gpu.upload(b), out, n }));
    const err = maxAbsError(await gpu.readF32(out, n), addRef(a, b));
    return { ok: err === 0, detail: `max abs error ${err}` };
  });
}

// test/matmul.test.ts: |gpu - ref| <= 1e-5 · Σ_k |x_k · w_k| per output, with the reference on
// the same dequantized weights (only the f32 accumulation order differs). Shapes as its "every
// format, every variant" test: 3 x-rows, N = 65 (one past a gemm tile), K over a few blocks.
const MATMUL_TOLERANCE = 1e-5;

async function matmulCheck(gpu: Gpu, type: GGMLTypeId, variant: MatmulVariant, M: number, N: number, K: number, note = ''): Promise<CheckResult> {
  return timed(`matmul ${variant} ${typeName(type)} M=${M} N=${N} K=${K}${note}`, async () => {
    const seed = M * 7919 + N * 31 + K + type;
    const bytes = quantize(type, randomNormal(N * K, seed, 0.05), K);
    const w = dequantize(type, bytes, N * K);
    const x = randomNormal(M * K, seed + 1);
    const y = gpu.buffer(M * N * 4);
    gpu.write(y, new Float32Array(M * N).fill(NaN)); // every output must be written
    await gpu.run((pass) => matmul(gpu, pass, { x: gpu.upload(x), w: uploadWeight(gpu, type, N, K, bytes), y, M, variant }));
    const got = await gpu.readF32(y, M * N);
    const want = matmulRef(x, w, M, N, K);
    const scale = matmulMagnitudeRef(x, w, M, N, K);
    let worst = 0, worstAt = 0;
    for (let i = 0; i < got.length; i++) {
      const ratio = Math.abs(got[i] - want[i]) / (MATMUL_TOLERANCE * scale[i] + 1e-30);
      if (!(ratio <= worst)) {
        worst = Number.isNaN(ratio) ? Infinity : ratio;
        worstAt = i;
      }
    }
    return {
      ok: worst <= 1,
      detail: `worst error ${(worst * MATMUL_TOLERANCE).toExponential(2)} of Σ|x·w| (tolerance ${MATMUL_TOLERANCE}; y[${Math.floor(worstAt / N)}][${worstAt % N}] = ${got[worstAt]}, expected ${want[worstAt]})`,
    };
  });
}

async function checkMatmul(gpu: Gpu): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const type of [T.F16, T.Q8_0, T.Q4_0, T.Q4_K, T.Q6_K]) {
    const K = type === T.Q4_K || type === T.Q6_K ? 512 : 288;
    results.push(await matmulCheck(gpu, type, 'gemv', 1, 65, K)); // decode
    results.push(await matmulCheck(gpu, type, 'gemv', 3, 65, K)); // a partial x-row group
    results.push(await matmulCheck(gpu, type, 'gemm', 3, 65, K));
  }
  // gemm over several M tiles and a partial N tile; rowwise once.
  results.push(await matmulCheck(gpu, T.Q4_K, 'gemm', 70, 130, 256));
  results.push(await matmulCheck(gpu, T.Q8_0, 'rowwise', 3, 65, 288));
  return results;
}

// test/norm.test.ts: RMSNorm's error is relative per element, rtol 1e-5, atol 1e-7.
async function rmsNormCheck(gpu: Gpu, variant: string): Promise<CheckResult> {
  return timed(`rmsNorm 4x576 and 2x4096 (${variant})`, async () => {
    const details = [];
    let ok = true;
    for (const [rows, n] of [[4, 576], [2, 4096]]) {
      const x = randomNormal(rows * n, rows * 1000 + n, 2);
      const weight = random(n, n + 7).map((v) => 1 + 0.5 * v);
      const out = gpu.buffer(rows * n * 4);
      await gpu.run((pass) => rmsNorm(gpu, pass, { x: gpu.upload(x), weight: gpu.upload(weight), out, rows, n, eps: 1e-6 }));
      const c = closeness(await gpu.readF32(out, rows * n), rmsNormRef(x, weight, rows, n, 1e-6), 1e-7, 1e-5);
      ok &&= c.ok;
      details.push(`${rows}x${n}: ${c.detail}`);
    }
    return { ok, detail: details.join('; ') };
  });
}

// test/rope.test.ts: exact angles are within 1e-6 of the f64 reference at any position.
async function checkRope(gpu: Gpu): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const layout of ['normal', 'neox'] as RopeLayout[]) {
    results.push(
      await timed(`rope ${layout} (positions 0..1023 and up to 2^31-1, in place and out of place, partial rotary)`, async () => {
        const heads = 2, headDim = 64;
        const freqs = ropeFrequencies({ ropeDim: headDim, base: 10000 });
        const table = gpu.upload(ropeTable(freqs));
        const r = rng(5);
        const positions = Int32Array.from({ length: 1024 + 64 }, (_, i) => (i < 1024 ? i : Math.floor(r() * (2 ** 31 - 1))));
        const tokens = positions.length;
        const x = random(tokens * heads * headDim, tokens + 1);
        const inPlace = gpu.upload(x);
        const out = gpu.buffer(x.length * 4);
        // Partial rotary (phi-2 style): headDim 80, the first 32 dims rotated, the rest copied.
        const partial = { tokens: 3, heads: 2, headDim: 80, ropeDim: 32 };
        const partialFreqs = ropeFrequencies({ ropeDim: partial.ropeDim, base: 10000 });
        const partialPositions = new Int32Array([0, 7, 4095]);
        const px = random(partial.tokens * partial.heads * partial.headDim, 31);
        const partialOut = gpu.buffer(px.length * 4);
        await gpu.run((pass) => {
          const positionBuffer = gpu.upload(positions);
          rope(gpu, pass, { x: inPlace, table, positions: positionBuffer, tokens, heads, headDim, layout });
          rope(gpu, pass, { x: gpu.upload(x), out, table, positions: positionBuffer, tokens, heads, headDim, layout });
          rope(gpu, pass, { x: gpu.upload(px), out: partialOut, table: gpu.upload(ropeTable(partialFreqs)), positions: gpu.upload(partialPositions), ...partial, layout });
        });
        const want = ropeRef(x, positions, freqs, { tokens, heads, headDim, layout });
        const checks = [
          ['in place', closeness(await gpu.readF32(inPlace, x.length), want, 1e-6, 0)],
          ['out of place', closeness(await gpu.readF32(out, x.length), want, 1e-6, 0)],
          ['partial', closeness(await gpu.readF32(partialOut, px.length), ropeRef(px, partialPositions, partialFreqs, { ...partial, layout }), 1e-6, 0)],
        ] as const;
        return { ok: checks.every(([, c]) => c.ok), detail: checks.map(([what, c]) => `${what}: ${c.detail}`).join('; ') };
      }),
    );
  }
  return results;
}

// test/softmax.test.ts: rtol 5e-5 (the f32 accumulation bound over 151936 values), atol 1e-12.
async function softmaxCheck(gpu: Gpu, variant: string): Promise<CheckResult> {
  return timed(`softmax 3x7, 2x257, 2x151936 (${variant})`, async () => {
    const details = [];
    let ok = true;
    for (const [rows, n] of [[3, 7], [2, 257], [2, 151_936]]) {
      const x = randomNormal(rows * n, rows * 31 + n, 3);
      const out = gpu.buffer(rows * n * 4);
      await gpu.run((pass) => softmax(gpu, pass, { x: gpu.upload(x), out, rows, n }));
      const c = closeness(await gpu.readF32(out, rows * n), softmaxRef(x, rows, n), 1e-12, 5e-5);
      ok &&= c.ok;
      details.push(`${rows}x${n}: ${c.detail}`);
    }
    return { ok, detail: details.join('; ') };
  });
}

// test/softmax.test.ts: exact, ties to the lowest index.
async function argmaxCheck(gpu: Gpu, variant: string): Promise<CheckResult> {
  return timed(`argmax 4x151936 with ties (${variant})`, async () => {
    const rows = 4, n = 151_936;
    const x = randomNormal(rows * n, 77, 3);
    x[100_000] = x[90_000] = 50; // row 0: a tie, the lowest index wins
    x[n + n - 1] = 60; // row 1: the last element
    x[2 * n] = 60; // row 2: the first
    const out = gpu.buffer(rows * 4);
    await gpu.run((pass) => argmax(gpu, pass, { x: gpu.upload(x), out, rows, n }));
    const got = Array.from(await gpu.readU32(out, rows));
    const want = Array.from(argmaxRef(x, rows, n));
    return { ok: got.join() === want.join() && want[0] === 90_000, detail: `GPU [${got}], reference [${want}]` };
  });
}

// test/sampling.test.ts: for the same uniform (seed, step, row) the GPU picks the reference's
// token, except where u falls within 5e-5 (f32 sums over the vocabulary) of a CDF boundary; at
// most 2 rows of a batch may be so flagged. Greedy (temperature 0) is the exact argmax.
const SAMPLING_BOUNDARY = 5e-5;

async function checkSampling(gpu: Gpu): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const optionSets: Array<Omit<SamplingOptions, 'seed' | 'step'>> = [{ temperature: 1.3 }, { temperature: 0.7, topK: 100, topP: 0.9, minP: 0.01 }];
  for (const [rows, vocab] of [[64, 1000], [4, 151_936]]) {
    for (const options of optionSets) {
      results.push(
        await timed(`sample ${rows}x${vocab} ${JSON.stringify(options)}: same uniform, same token`, async () => {
          const logits = randomNormal(rows * vocab, 1234 + vocab, 2.5);
          const seed = 0xdecafbad, step = 17;
          const tokens = gpu.buffer(rows * 4);
          await gpu.run((pass) => sample(gpu, pass, { logits: gpu.upload(logits), tokens, rows, vocab, ...options, seed, step }));
          const got = await gpu.readU32(tokens, rows);
          let flagged = 0, wrong = 0;
          const notes: string[] = [];
          for (let r = 0; r < rows; r++) {
            const ref = samplingDistributionRef(logits.subarray(r * vocab, (r + 1) * vocab), options);
            const u = samplingUniform(seed, step, r);
            const { token, cdfEdges } = drawRef(ref.probs, u);
            if (got[r] === token) continue;
            // The GPU's token must sit right next to u in the reference CDF.
            const [lo, hi] = cdfEdges(got[r]);
            const distance = Math.max(lo - u, u - hi);
            if (distance < SAMPLING_BOUNDARY) flagged++;
            else wrong++;
            notes.push(`row ${r}: GPU ${got[r]}, reference ${token} (u ${distance.toExponential(1)} from its CDF interval)`);
          }
          return { ok: wrong === 0 && flagged <= 2, detail: `${rows - flagged - wrong}/${rows} rows identical, ${flagged} at a CDF boundary, ${wrong} wrong${notes.length ? `: ${notes.join('; ')}` : ''}` };
        }),
      );
    }
  }
  results.push(
    await timed('sample greedy (temperature 0) 3x151936 is the argmax', async () => {
      const rows = 3, vocab = 151_936;
      const logits = randomNormal(rows * vocab, 78, 3);
      logits[100_000] = logits[90_000] = 50;
      const tokens = gpu.buffer(rows * 4);
      await gpu.run((pass) => sample(gpu, pass, { logits: gpu.upload(logits), tokens, rows, vocab, temperature: 0, topK: 5, seed: 9, step: 9 }));
      const got = Array.from(await gpu.readU32(tokens, rows));
      const want = Array.from(argmaxRef(logits, rows, vocab));
      return { ok: got.join() === want.join(), detail: `GPU [${got}], reference [${want}]` };
    }),
  );
  return results;
}

// test/embedding.test.ts: the gather dequantizes with ggml's f32 operations, so it is exact;
// formats with a min term (Q4_K here) allow one rounding (a fused multiply-add).
async function checkEmbedding(gpu: Gpu): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const type of [T.F16, T.Q8_0, T.Q4_0, T.Q4_K, T.Q6_K]) {
    results.push(
      await timed(`embedding ${typeName(type)}`, async () => {
        const rows = 37, cols = type === T.Q4_K || type === T.Q6_K ? 512 : 96;
        const bytes = quantize(type, randomNormal(rows * cols, rows * 131 + cols, 0.05), cols);
        // First and last rows, a repeat, and an id past the table (a zero row).
        const ids = new Uint32Array([0, rows - 1, 5, 5, 17, 36, 2, rows + 3, 11]);
        const out = gpu.buffer(ids.length * cols * 4);
        gpu.write(out, new Float32Array(ids.length * cols).fill(NaN));
        await gpu.run((pass) => embedding(gpu, pass, { table: uploadWeight(gpu, type, rows, cols, bytes), ids: gpu.upload(ids), out, count: ids.length }));
        const got = await gpu.readF32(out, ids.length * cols);
        const want = embeddingRef(dequantize(type, bytes, rows * cols), rows, cols, ids);
        const withMin = type === T.Q4_K;
        let bad = 0, worst = 0;
        for (let i = 0; i < want.length; i++) {
          const err = Math.abs(got[i] - want[i]);
          worst = Math.max(worst, Number.isNaN(err) ? Infinity : err);
          if (!(err <= (withMin ? Math.abs(want[i]) * 2 ** -22 + 2 ** -30 : 0))) bad++;
        }
        return { ok: bad === 0, detail: `${bad} of ${want.length} values differ (max abs error ${worst}${withMin ? ', one rounding allowed' : ', exact'})` };
      }),
    );
  }
  return results;
}

// test/attention.test.ts: the reference reads the cache's stored values back (dequantized on the
// CPU), so every KV format is compared on exactly the numbers the kernel reads; what remains is
// f32 accumulation, asserted at 2e-5 absolute on outputs and 2e-5 + 1e-6 relative on log-sum-exp.
interface AttentionCase {
  name: string;
  T: number;
  heads: number;
  kvHeads: number;
  D: number;
  kvLen: number;
  queryStart: number;
  format: KvFormat;
  path: 'flash' | 'split';
  mask: MaskRef;
  shufflePages?: boolean;
}

async function attentionCheck(gpu: Gpu, c: AttentionCase, seed: number): Promise<CheckResult> {
  return timed(`attention ${c.path} ${c.name}: T=${c.T} kvLen=${c.kvLen} heads ${c.heads}/${c.kvHeads}x${c.D} ${c.format}${c.shufflePages ? ', shuffled pages' : ''}`, async () => {
    const capacity = Math.ceil(c.kvLen / PAGE) * PAGE + PAGE;
    let table = identityPageTable(capacity);
    if (c.shufflePages) {
      const r = rng(seed + 99);
      table = table.slice();
      for (let i = table.length - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [table[i], table[j]] = [table[j], table[i]];
      }
    }
    const cache = createKvCache(gpu, { capacity, kvHeads: c.kvHeads, headDim: c.D, format: c.format, pageTable: gpu.upload(table) });
    const row = c.kvHeads * c.D;
    const kRaw = randomNormal(c.kvLen * row, seed * 3 + 1);
    const vRaw = randomNormal(c.kvLen * row, seed * 3 + 2);
    const q = randomNormal(c.T * c.heads * c.D, seed * 3 + 3);
    const slots = Uint32Array.from({ length: c.kvLen }, (_, i) => i);
    const out = gpu.buffer(c.T * c.heads * c.D * 4);
    const lse = gpu.buffer(c.T * c.heads * 4);
    const treeEnd = c.mask.kind === 'tree' ? gpu.upload(Uint32Array.from(c.mask.treeEnd!)) : null;
    await gpu.run((pass) => {
      kvWrite(gpu, pass, { cache, k: gpu.upload(kRaw), v: gpu.upload(vRaw), slots: gpu.upload(slots), count: c.kvLen });
      attention(gpu, pass, {
        q: gpu.upload(q), cache, out, lse, T: c.T, numHeads: c.heads, kvLen: c.kvLen, queryStart: c.queryStart, scale: 1 / Math.sqrt(c.D),
        mask: treeEnd ? { kind: 'tree', treeEnd } : { kind: c.mask.kind as 'causal' | 'none' }, path: c.path,
      });
    });
    // The stored (possibly quantized) values, in logical slot order.
    const logical = async (data: GPUBuffer, scales: GPUBuffer) => {
      const physical = dequantizeKvRef(c.format, cache.group, await gpu.read(data), await gpu.read(scales), capacity, c.kvHeads, c.D);
      const values = new Float32Array(c.kvLen * row);
      for (let j = 0; j < c.kvLen; j++) values.set(physical.subarray(physicalSlotRef(table, j) * row, (physicalSlotRef(table, j) + 1) * row), j * row);
      return values;
    };
    const want = attentionRef({
      q, k: await logical(cache.k, cache.kScales), v: await logical(cache.v, cache.vScales), T: c.T, heads: c.heads, kvHeads: c.kvHeads,
      headDim: c.D, kvLen: c.kvLen, scale: 1 / Math.sqrt(c.D), visible: (h) => visibleRef(c.mask, c.queryStart, c.kvLen, h),
    });
    const finiteLse = (values: ArrayLike<number>) => Array.from(values, (x) => (x < -1e30 ? -1e30 : x)); // rows that see nothing: −∞ vs −3e38
    const outCheck = closeness(await gpu.readF32(out, c.T * c.heads * c.D), want.out, 2e-5, 0);
    const lseCheck = closeness(finiteLse(await gpu.readF32(lse, c.T * c.heads)), finiteLse(want.lse), 2e-5, 1e-6);
    return { ok: outCheck.ok && lseCheck.ok, detail: `out: ${outCheck.detail}; lse: ${lseCheck.detail}` };
  });
}

async function checkAttention(gpu: Gpu): Promise<CheckResult[]> {
  const { treeEnd } = treeMaskFromParents(randomTree(16, 4));
  const tree: MaskRef = { kind: 'tree', treeEnd };
  const cases: AttentionCase[] = [
    // Prefill: flash attention with a causal mask after a prefix, GQA 4:2.
    { name: 'causal', T: 40, heads: 4, kvHeads: 2, D: 64, kvLen: 77, queryStart: 37, format: 'f32', path: 'flash', mask: { kind: 'causal' } },
    { name: 'causal', T: 33, heads: 6, kvHeads: 2, D: 96, kvLen: 50, queryStart: 17, format: 'f16', path: 'flash', mask: { kind: 'causal' }, shufflePages: true },
    // Decode: split-K over a long cache, merged by log-sum-exp; head 128 and a quantized cache.
    { name: 'decode', T: 1, heads: 8, kvHeads: 2, D: 128, kvLen: 1500, queryStart: 1499, format: 'f32', path: 'split', mask: { kind: 'causal' } },
    { name: 'decode', T: 1, heads: 4, kvHeads: 2, D: 64, kvLen: 300, queryStart: 299, format: 'int4', path: 'split', mask: { kind: 'causal' } },
    // Speculative verification: a 16-node token tree after a prefix, both paths.
    { name: 'tree of 16', T: 16, heads: 4, kvHeads: 1, D: 32, kvLen: 37, queryStart: 21, format: 'f32', path: 'split', mask: tree },
    { name: 'tree of 16', T: 16, heads: 4, kvHeads: 1, D: 32, kvLen: 37, queryStart: 21, format: 'f32', path: 'flash', mask: tree },
  ];
  const results: CheckResult[] = [];
  for (const [i, c] of cases.entries()) results.push(await attentionCheck(gpu, c, i + 1));
  return results;
}

/**
 * The reduction kernels again on a device without `subgroups` (workgroup-memory reductions), as
 * test/gpu-variants.ts does in Node; skipped where the adapter has no subgroups to turn off.
 */
async function checkWithoutSubgroups(gpu: Gpu): Promise<CheckResult[]> {
  if (!gpu.features.subgroups) return [];
  const plain = await requestGpu({ disable: { subgroups: true } });
  try {
    return [
      await rmsNormCheck(plain, 'workgroup memory'),
      await softmaxCheck(plain, 'workgroup memory'),
      await argmaxCheck(plain, 'workgroup memory'),
      await matmulCheck(plain, T.Q4_K, 'gemv', 3, 65, 512, ' (workgroup memory)'),
    ];
  } finally {
    plain.destroy();
  }
}

const variantName = (gpu: Gpu) => (gpu.features.subgroups ? 'subgroups' : 'workgroup memory');

const checks: Check[] = [
  checkAdd,
  checkMatmul,
  (gpu) => rmsNormCheck(gpu, variantName(gpu)),
  checkRope,
  (gpu) => softmaxCheck(gpu, variantName(gpu)),
  (gpu) => argmaxCheck(gpu, variantName(gpu)),
  checkSampling,
  checkEmbedding,
  checkAttention,
  checkWithoutSubgroups,
];

/** The page runs these in order; each resolves to one result per kernel configuration. */
export const kernelChecks: Array<(gpu: Gpu) => Promise<CheckResult[]>> = checks.map((check) => async (gpu) => {
  const result = await check(gpu);
  return Array.isArray(result) ? result : [result];
});
