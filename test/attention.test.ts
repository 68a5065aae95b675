// Attention kernels against a dense f64 reference with an explicit mask. The reference reads the
// cache's stored values back (dequantized on the CPU), so every format is compared on exactly the
// numbers the kernel reads: what remains is f32 accumulation (scores ~N(0,1) here), asserted at
// 2e-5 absolute on outputs and log-sum-exp. Quantization error itself is checked separately.
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu';
import { type AttentionMask, attention, attentionMass, mergeAttention, treeMaskFromParents } from '../src/kernels/attention';
import { selectTopK, selectedCount } from '../src/kernels/select';
import { selectTopKRef } from '../src/reference/select';
import { type KvCache, type KvFormat, PAGE, createKvCache, identityPageTable, kvWrite } from '../src/kernels/kv-cache';
import { type MaskRef, attentionMassRef, attentionRef, dequantizeKvRef, noisedAttentionMassRef, physicalSlotRef, quantizeGroupRef, visibleRef } from '../src/reference/attention';
import { randomTree } from './random';
import { closeness, expectClose, randomNormal, rng, testGpu } from './util';

interface Case {
  T: number;
  heads: number;
  kvHeads: number;
  D: number;
  kvLen: number;
  queryStart: number;
  format?: KvFormat;
  shufflePages?: boolean;
  seed?: number;
}

interface Setup {
  c: Required<Case>;
  cache: KvCache;
  q: Float32Array;
  qBuffer: GPUBuffer;
  /** Logical [kvLen][kvHeads][D] as stored (dequantized). */
  k: Float32Array;
  v: Float32Array;
  kRaw: Float32Array;
  vRaw: Float32Array;
}

async function setup(gpu: Gpu, input: Case): Promise<Setup> {
  const c: Required<Case> = { format: 'f32', shufflePages: false, seed: 1, ...input };
  const capacity = Math.ceil(Math.max(c.kvLen, 1) / PAGE) * PAGE + PAGE;
  let table = identityPageTable(capacity);
  if (c.shufflePages) {
    const r = rng(c.seed + 99);
    table = table.slice();
    for (let i = table.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [table[i], table[j]] = [table[j], table[i]];
    }
  }
  const cache = createKvCache(gpu, { capacity, kvHeads: c.kvHeads, headDim: c.D, format: c.format, pageTable: gpu.upload(table) });
  const row = c.kvHeads * c.D;
  const kRaw = randomNormal(c.kvLen * row, c.seed * 3 + 1);
  const vRaw = randomNormal(c.kvLen * row, c.seed * 3 + 2);
  const q = randomNormal(c.T * c.heads * c.D, c.seed * 3 + 3);
  const slots = Uint32Array.from({ length: c.kvLen }, (_, i) => i);
  await gpu.run((pass) => kvWrite(gpu, pass, { cache, k: gpu.upload(kRaw), v: gpu.upload(vRaw), slots: gpu.upload(slots), count: c.kvLen }));
  const logical = async (data: GPUBuffer, scales: GPUBuffer) => {
    const physical = dequantizeKvRef(c.format, cache.group, await gpu.read(data), await gpu.read(scales), capacity, c.kvHeads, c.D);
    const out = new Float32Array(c.kvLen * row);
    for (let j = 0; j < c.kvLen; j++) out.set(physical.subarray(physicalSlotRef(table, j) * row, (physicalSlotRef(table, j) + 1) * row), j * row);
    return out;
  };
  return { c, cache, q, qBuffer: gpu.upload(q), k: await logical(cache.k, cache.kScales), v: await logical(cache.v, cache.vScales), kRaw, vRaw };
}

function gpuMask(gpu: Gpu, mask: MaskRef, kvHeads: number): AttentionMask {
  switch (mask.kind) {
    case 'tree': return { kind: 'tree', treeEnd: gpu.upload(Uint32Array.from(mask.treeEnd!)) };
    case 'sink-window': return { kind: 'sink-window', sinks: mask.sinks!, window: mask.window! };
    case 'lambda': return { kind: 'lambda', global: mask.sinks!, local: mask.window! };
    case 'block-sparse': {
      const maxBlocks = Math.max(1, ...mask.blocks!.map((b) => b.length));
      const blocks = new Uint32Array(kvHeads * maxBlocks);
      mask.blocks!.forEach((list, h) => blocks.set(list, h * maxBlocks));
      return { kind: 'block-sparse', blocks: gpu.upload(blocks), counts: gpu.upload(Uint32Array.from(mask.blocks!, (b) => b.length)), blockSize: mask.blockSize!, maxBlocks };
    }
    default: return { kind: mask.kind };
  }
}

async function runAttention(gpu: Gpu, s: Setup, mask: MaskRef, options: { path?: 'flash' | 'split'; splits?: number; bias?: Float32Array } = {}) {
  const { T, heads, kvHeads, D, kvLen, queryStart } = s.c;
  const out = gpu.buffer(T * heads * D * 4);
  const lse = gpu.buffer(T * heads * 4);
  await gpu.run((pass) => attention(gpu, pass, {
    q: s.qBuffer, cache: s.cache, out, lse, T, numHeads: heads, kvLen, queryStart, scale: 1 / Math.sqrt(D),
    mask: gpuMask(gpu, mask, kvHeads), path: options.path, splits: options.splits, keyBias: options.bias ? gpu.upload(options.bias) : undefined,
  }));
  return { out: await gpu.readF32(out, T * heads * D), lse: await gpu.readF32(lse, T * heads) };
}

function reference(s: Setup, mask: MaskRef, bias?: Float32Array) {
  const { T, heads, kvHeads, D, kvLen, queryStart } = s.c;
  const args = { q: s.q, k: s.k, v: s.v, T, heads, kvHeads, headDim: D, kvLen, scale: 1 / Math.sqrt(D), visible: (h: number) => visibleRef(mask, queryStart, kvLen, h), bias };
  return { args, ...attentionRef(args) };
}

/** lse rows that see nothing are −∞ in the reference and −3e38 on the GPU. */
const finiteLse = (lse: ArrayLike<number>) => Array.from(lse, (x) => (x < -1e30 ? -1e30 : x));

async function check(gpu: Gpu, s: Setup, mask: MaskRef, options: Parameters<typeof runAttention>[3] = {}, what = '') {
  const got = await runAttention(gpu, s, mask, options);
  const want = reference(s, mask, options.bias);
  expectClose(got.out, want.out, 2e-5, 0, `${what} out`);
  expectClose(finiteLse(got.lse), finiteLse(want.lse), 2e-5, 1e-6, `${what} lse`);
}

describe('attention paths and masks', () => {
  const masks: Array<[string, (c: Required<Case>) => MaskRef]> = [
    ['causal', () => ({ kind: 'causal' })],
    ['none', () => ({ kind: 'none' })],
    ['sink-window', () => ({ kind: 'sink-window', sinks: 4, window: 9 })],
    ['lambda', () => ({ kind: 'lambda', sinks: 3, window: 20 })],
    ['block-sparse', (c) => ({ kind: 'block-sparse', blockSize: 8, blocks: Array.from({ length: c.kvHeads }, (_, h) => [0, 2 + h, Math.floor((c.kvLen - 1) / 8)].filter((b, i, a) => a.indexOf(b) === i).sort((a, b) => a - b)) })],
  ];
  for (const path of ['flash', 'split'] as const) {
    for (const [name, makeMask] of masks) {
      it(`${path}: ${name} mask, GQA 4:2, head 64, prefix 37 + ${path === 'flash' ? 40 : 5} queries`, async () => {
        const gpu = await testGpu();
        const T = path === 'flash' ? 40 : 5;
        const s = await setup(gpu, { T, heads: 4, kvHeads: 2, D: 64, kvLen: 37 + T, queryStart: 37, seed: name.length });
        await check(gpu, s, makeMask(s.c), { path }, `${path} ${name}`);
      });
    }
  }

  it('tree masks: random trees of 1 to 40 nodes after a prefix, both paths; a chain equals causal', async () => {
    const gpu = await testGpu();
    for (const [n, seed] of [[1, 1], [2, 2], [7, 3], [16, 4], [40, 5]]) {
      const parents = randomTree(n, seed);
      const { treeEnd } = treeMaskFromParents(parents);
      const s = await setup(gpu, { T: n, heads: 4, kvHeads: 1, D: 32, kvLen: 21 + n, queryStart: 21, seed });
      for (const path of n <= 16 ? (['flash', 'split'] as const) : (['flash'] as const)) await check(gpu, s, { kind: 'tree', treeEnd }, { path }, `tree ${n} ${path}`);
    }
    const chain = treeMaskFromParents(Array.from({ length: 12 }, (_, i) => i - 1)).treeEnd;
    const s = await setup(gpu, { T: 12, heads: 2, kvHeads: 2, D: 32, kvLen: 30, queryStart: 18 });
    const tree = await runAttention(gpu, s, { kind: 'tree', treeEnd: chain }, { path: 'flash' });
    const causal = await runAttention(gpu, s, { kind: 'causal' }, { path: 'flash' });
    expect(Array.from(tree.out)).toEqual(Array.from(causal.out));
  });

  it('tree nodes see exactly their ancestors: each equals causal attention over prefix + path', async () => {
    const gpu = await testGpu();
    const parents = randomTree(9, 77);
    const { treeEnd } = treeMaskFromParents(parents);
    const s = await setup(gpu, { T: 9, heads: 2, kvHeads: 1, D: 32, kvLen: 19, queryStart: 10, seed: 7 });
    const got = await runAttention(gpu, s, { kind: 'tree', treeEnd }, { path: 'split' });
    for (let i = 0; i < 9; i++) {
      const path: number[] = [];
      for (let a = i; a >= 0; a = parents[a]) path.unshift(a);
      const visible = (t: number, slot: number) => t === i && (slot < 10 || path.includes(slot - 10));
      const want = attentionRef({ q: s.q, k: s.k, v: s.v, T: 9, heads: 2, kvHeads: 1, headDim: 32, kvLen: 19, scale: 1 / Math.sqrt(32), visible: () => visible });
      expectClose(got.out.subarray(i * 64, (i + 1) * 64), want.out.subarray(i * 64, (i + 1) * 64), 2e-5, 0, `node ${i}`);
    }
  });

  it('rejects trees that are not in DFS preorder', () => {
    expect(() => treeMaskFromParents([-1, 0, -1, 1])).toThrow(/preorder/);
    expect(() => treeMaskFromParents([-1, 2, 0])).toThrow(/preorder/);
  });

  it('block-sparse listing every block equals causal; single-token blocks select tokens', async () => {
    const gpu = await testGpu();
    const s = await setup(gpu, { T: 3, heads: 4, kvHeads: 2, D: 64, kvLen: 50, queryStart: 47, seed: 11 });
    const all = Array.from({ length: 7 }, (_, i) => i);
    const sparse = await runAttention(gpu, s, { kind: 'block-sparse', blockSize: 8, blocks: [all, all] }, { path: 'split' });
    const causal = reference(s, { kind: 'causal' });
    expectClose(sparse.out, causal.out, 2e-5, 0, 'all blocks');
    await check(gpu, s, { kind: 'block-sparse', blockSize: 1, blocks: [[0, 5, 9, 31, 48, 49], [1, 2, 3, 40]] }, { path: 'split' }, 'token-level');
    await check(gpu, s, { kind: 'block-sparse', blockSize: 1, blocks: [[0, 5, 9, 31, 48, 49], [1, 2, 3, 40]] }, { path: 'flash' }, 'token-level flash');
  });

  it('adds a per-key bias (ToMe size bias), non-causal', async () => {
    const gpu = await testGpu();
    const s = await setup(gpu, { T: 20, heads: 2, kvHeads: 2, D: 32, kvLen: 20, queryStart: 0, seed: 5 });
    const bias = Float32Array.from(randomNormal(20, 9), (x) => Math.log(1 + Math.abs(x)));
    await check(gpu, s, { kind: 'none' }, { path: 'flash', bias }, 'bias flash');
    await check(gpu, s, { kind: 'none' }, { path: 'split', bias }, 'bias split');
  });
});

describe('attention shapes', () => {
  for (const [D, heads, kvHeads] of [[32, 3, 1], [80, 8, 1], [96, 6, 2], [128, 4, 4]]) {
    it(`head ${D}, ${heads} query heads over ${kvHeads} kv heads, both paths, shuffled pages`, async () => {
      const gpu = await testGpu();
      const s = await setup(gpu, { T: 33, heads, kvHeads, D, kvLen: 50, queryStart: 17, shufflePages: true, seed: D });
      await check(gpu, s, { kind: 'causal' }, { path: 'flash' }, `D${D} flash`);
      const d = await setup(gpu, { T: 2, heads, kvHeads, D, kvLen: 50, queryStart: 48, shufflePages: true, seed: D + 1 });
      await check(gpu, d, { kind: 'causal' }, { path: 'split' }, `D${D} split`);
    });
  }

  it('length 1: one query, one key', async () => {
    const gpu = await testGpu();
    const s = await setup(gpu, { T: 1, heads: 2, kvHeads: 1, D: 64, kvLen: 1, queryStart: 0 });
    for (const path of ['flash', 'split'] as const) await check(gpu, s, { kind: 'causal' }, { path }, path);
  });

  it('split-K over a long cache: 1, 2, 7, 64 chunks and more chunks than keys agree with the reference', async () => {
    const gpu = await testGpu();
    const s = await setup(gpu, { T: 1, heads: 4, kvHeads: 2, D: 64, kvLen: 3000, queryStart: 2999, seed: 3 });
    const want = reference(s, { kind: 'causal' });
    for (const splits of [12, 64, 200]) {
      const got = await runAttention(gpu, s, { kind: 'causal' }, { path: 'split', splits });
      expectClose(got.out, want.out, 2e-5, 0, `splits ${splits}`);
    }
    const short = await setup(gpu, { T: 2, heads: 2, kvHeads: 1, D: 64, kvLen: 200, queryStart: 198, seed: 4 });
    for (const splits of [1, 2, 7, 64, 199]) await check(gpu, short, { kind: 'causal' }, { path: 'split', splits }, `splits ${splits}`);
    // Fewer splits than 3000 / 256 are raised to keep chunks within workgroup memory.
    const atLeast = await runAttention(gpu, s, { kind: 'causal' }, { path: 'split', splits: 1 });
    expectClose(atLeast.out, want.out, 2e-5, 0, 'raised splits');
  });
});

describe('KV formats', () => {
  for (const format of ['f16', 'int8', 'int4'] as const) {
    it(`${format}: both paths read the stored values exactly as the CPU dequantizes them`, async () => {
      const gpu = await testGpu();
      const s = await setup(gpu, { T: 20, heads: 4, kvHeads: 2, D: 64, kvLen: 45, queryStart: 25, format, seed: 8 });
      await check(gpu, s, { kind: 'causal' }, { path: 'flash' }, `${format} flash`);
      const d = await setup(gpu, { T: 1, heads: 4, kvHeads: 2, D: 80, kvLen: 300, queryStart: 299, format, seed: 9 });
      await check(gpu, d, { kind: 'causal' }, { path: 'split' }, `${format} split`);
    });
  }

  it('kvWrite stores what the CPU quantizer computes, and the error against f32 is bounded', async () => {
    const gpu = await testGpu();
    // Rounding ties may flip one code by one step: allow at most 1 in 1000.
    for (const format of ['int8', 'int4'] as const) {
      const s = await setup(gpu, { T: 1, heads: 2, kvHeads: 2, D: 64, kvLen: 40, queryStart: 39, format, seed: 21 });
      let off = 0;
      let total = 0;
      for (let g = 0; g < s.kRaw.length / 32; g++) {
        const raw = s.kRaw.subarray(g * 32, g * 32 + 32);
        const ref = quantizeGroupRef(format, raw);
        raw.forEach((_, i) => {
          const stored = s.k[g * 32 + i];
          const expected = ref.q[i] * ref.scale + ref.min;
          total++;
          if (Math.abs(stored - expected) > 1e-6 * (1 + Math.abs(expected))) {
            off++;
            expect(Math.abs(stored - expected)).toBeLessThanOrEqual(ref.scale * 1.0001);
          }
        });
      }
      expect(off / total).toBeLessThan(1e-3);
      // Per-value error: half a step of the group's (f16-rounded) scale.
      const err = closeness(s.k, s.kRaw);
      expect(err.maxAbs).toBeLessThan(format === 'int8' ? 0.02 : 0.4);
      // Attention output relative error against the unquantized cache (B9 measured 1.2% int8, 8.8% 4-bit group-32 on real K/V).
      const got = await runAttention(gpu, s, { kind: 'causal' }, { path: 'split' });
      const exact = attentionRef({ q: s.q, k: s.kRaw, v: s.vRaw, T: 1, heads: 2, kvHeads: 2, headDim: 64, kvLen: 40, scale: 1 / 8, visible: () => visibleRef({ kind: 'causal' }, 39, 40) });
      let num = 0, den = 0;
      got.out.forEach((x, i) => { num += (x - exact.out[i]) ** 2; den += exact.out[i] ** 2; });
      expect(Math.sqrt(num / den)).toBeLessThan(format === 'int8' ? 0.02 : 0.2);
    }
  });
});

describe('attention mass', () => {
  for (const [name, mask] of [['causal', { kind: 'causal' }], ['sink-window', { kind: 'sink-window', sinks: 2, window: 6 }], ['block-sparse', { kind: 'block-sparse', blockSize: 4, blocks: [[0, 3, 7], [1, 7]] }]] as Array<[string, MaskRef]>) {
    it(`${name}: per-key column sums over chosen queries and heads, accumulating`, async () => {
      const gpu = await testGpu();
      const s = await setup(gpu, { T: 6, heads: 4, kvHeads: 2, D: 64, kvLen: 30, queryStart: 24, seed: 13 });
      const { T, heads, kvHeads, D, kvLen, queryStart } = s.c;
      const lse = gpu.buffer(T * heads * 4);
      const out = gpu.buffer(T * heads * D * 4);
      const mass = gpu.buffer(kvHeads * kvLen * 4);
      const gm = gpuMask(gpu, mask, kvHeads);
      await gpu.run((pass) => {
        attention(gpu, pass, { q: s.qBuffer, cache: s.cache, out, lse, T, numHeads: heads, kvLen, queryStart, scale: 1 / 8, mask: gm });
        attentionMass(gpu, pass, { q: s.qBuffer, cache: s.cache, lse, mass, T, numHeads: heads, kvLen, queryStart, scale: 1 / 8, mask: gm, queryRange: [1, 5] });
      });
      const want = reference(s, mask);
      const expected = attentionMassRef(want.args, want.lse, 1, 5);
      expectClose(await gpu.readF32(mass, kvHeads * kvLen), expected, 1e-5, 1e-5, 'mass');
      // Each query row's probabilities sum to 1: total mass = queries x heads.
      expect(expected.reduce((a, b) => a + b, 0)).toBeCloseTo(4 * heads, 6);
      await gpu.run((pass) => attentionMass(gpu, pass, { q: s.qBuffer, cache: s.cache, lse, mass, T, numHeads: heads, kvLen, queryStart, scale: 1 / 8, mask: gm, queryRange: [1, 5], accumulate: true }));
      expectClose(await gpu.readF32(mass, kvHeads * kvLen), expected.map((x) => 2 * x), 2e-5, 1e-5, 'accumulated mass');
      // Without attention's lse (keys ranked before attending, TokenSelect): its own scoring pass.
      const scored = gpu.buffer(kvHeads * kvLen * 4);
      await gpu.run((pass) => attentionMass(gpu, pass, { q: s.qBuffer, cache: s.cache, mass: scored, T, numHeads: heads, kvLen, queryStart, scale: 1 / 8, mask: gm, queryRange: [1, 5] }));
      expectClose(await gpu.readF32(scored, kvHeads * kvLen), expected, 1e-5, 1e-5, 'mass with its own lse');
      // With a stride (a policy's [kvHeads][capacity] buffer): each head's row starts at head * stride, the rest untouched.
      const stride = kvLen + 7;
      const strided = gpu.upload(new Float32Array(kvHeads * stride).fill(0.5));
      await gpu.run((pass) => attentionMass(gpu, pass, { q: s.qBuffer, cache: s.cache, lse, mass: strided, T, numHeads: heads, kvLen, queryStart, scale: 1 / 8, mask: gm, queryRange: [1, 5], accumulate: true, massStride: stride }));
      const got = await gpu.readF32(strided, kvHeads * stride);
      for (let h = 0; h < kvHeads; h++) {
        expectClose(got.subarray(h * stride, h * stride + kvLen), expected.slice(h * kvLen, (h + 1) * kvLen).map((x) => x + 0.5), 2e-5, 1e-5, `strided mass, head ${h}`);
        expect(Array.from(got.subarray(h * stride + kvLen, (h + 1) * stride))).toEqual(new Array(7).fill(0.5));
      }
    });
  }
});

describe('top-k sparse attention (TokenSelect\'s step)', () => {
  for (const path of ['split', 'flash'] as const) {
    it(`${path}: score the keys with several queries, select per kv head, attend to the selection: as the reference does`, async () => {
      const gpu = await testGpu();
      const T = path === 'split' ? 6 : 24;
      const s = await setup(gpu, { T, heads: 4, kvHeads: 2, D: 64, kvLen: 90 + T, queryStart: 90, seed: 21 });
      const { heads, kvHeads, D, kvLen, queryStart } = s.c;
      const selection = { k: 20, first: 3, last: T + 2 };
      const outStride = selectedCount(kvLen, selection.k, selection.first, selection.last);
      const mass = gpu.buffer(kvHeads * kvLen * 4);
      const lists = gpu.buffer(kvHeads * outStride * 4);
      const counts = gpu.buffer(kvHeads * 4);
      const out = gpu.buffer(T * heads * D * 4);
      const base = { q: s.qBuffer, cache: s.cache, T, numHeads: heads, kvLen, queryStart, scale: 1 / Math.sqrt(D) };
      await gpu.run((pass) => {
        attentionMass(gpu, pass, { ...base, mask: { kind: 'causal' }, mass });
        selectTopK(gpu, pass, { x: mass, rows: kvHeads, n: kvLen, ...selection, out: lists, counts, outStride });
        attention(gpu, pass, { ...base, out, path, mask: { kind: 'block-sparse', blocks: lists, counts, blockSize: 1, maxBlocks: outStride } });
      });
      const full = reference(s, { kind: 'causal' });
      const chosen = selectTopKRef(Float32Array.from(attentionMassRef(full.args, full.lse)), { rows: kvHeads, n: kvLen, ...selection });
      const gotLists = await gpu.readU32(lists, kvHeads * outStride);
      chosen.forEach((list, h) => expect(Array.from(gotLists.subarray(h * outStride, h * outStride + list.length))).toEqual(list));
      const want = reference(s, { kind: 'block-sparse', blockSize: 1, blocks: chosen });
      expectClose(await gpu.readF32(out, T * heads * D), want.out, 2e-5, 0, 'sparse attention');
    });
  }
});

describe('Keyformer\'s noised attention mass', () => {
  for (const [name, mask] of [['causal', { kind: 'causal' }], ['sink-window', { kind: 'sink-window', sinks: 2, window: 6 }]] as Array<[string, MaskRef]>) {
    it(`${name}: softmax((s + Gumbel) / τ) per key matches the reference, with the same noise for the same seed`, async () => {
      const gpu = await testGpu();
      const s = await setup(gpu, { T: 5, heads: 4, kvHeads: 2, D: 64, kvLen: 40, queryStart: 35, seed: 17 });
      const { T, heads, kvHeads, kvLen, queryStart } = s.c;
      const lse = gpu.buffer(T * heads * 4);
      const gm = gpuMask(gpu, mask, kvHeads);
      const run = async (noise?: { seed: number; temperature: number }) => {
        const mass = gpu.buffer(kvHeads * kvLen * 4);
        await gpu.run((pass) => {
          attention(gpu, pass, { q: s.qBuffer, cache: s.cache, out: gpu.buffer(T * heads * 64 * 4), lse, T, numHeads: heads, kvLen, queryStart, scale: 1 / 8, mask: gm });
          attentionMass(gpu, pass, { q: s.qBuffer, cache: s.cache, lse, mass, T, numHeads: heads, kvLen, queryStart, scale: 1 / 8, mask: gm, noise });
        });
        return gpu.readF32(mass, kvHeads * kvLen);
      };
      const noise = { seed: 7, temperature: 1.5 };
      const got = await run(noise);
      const expected = noisedAttentionMassRef(reference(s, mask).args, queryStart, noise);
      expectClose(got, expected, 2e-5, 1e-5, 'noised mass');
      // Each query row's noised probabilities sum to 1.
      expect(Array.from(got).reduce((a, b) => a + b, 0)).toBeCloseTo(T * heads, 3);
      // The noise changes the scores; another seed draws other noise; the same seed the same.
      const plain = await run();
      expect(closeness(got, plain).maxAbs).toBeGreaterThan(0.05);
      expect(closeness(got, await run({ seed: 8, temperature: 1.5 })).maxAbs).toBeGreaterThan(0.05);
      expect(Array.from(await run(noise))).toEqual(Array.from(got));
    });
  }
});

describe('merging attention over disjoint key sets', () => {
  it('sinks merged with the recent window equal the sink-window mask (the LM-Infinite / sparse + local recipe)', async () => {
    const gpu = await testGpu();
    const s = await setup(gpu, { T: 3, heads: 4, kvHeads: 2, D: 64, kvLen: 60, queryStart: 57, seed: 31 });
    const { T, heads, D } = s.c;
    const rows = T * heads;
    const part = () => ({ out: gpu.buffer(rows * D * 4), lse: gpu.buffer(rows * 4) });
    const [sinks, local, merged] = [part(), part(), part()];
    const common = { q: s.qBuffer, cache: s.cache, T, numHeads: heads, kvLen: 60, queryStart: 57, scale: 1 / 8 };
    // Sinks: keys 0..3 as listed single-token blocks; local: the last 10 keys of each query.
    const sinkBlocks = gpuMask(gpu, { kind: 'block-sparse', blockSize: 4, blocks: [[0], [0]] }, 2);
    await gpu.run((pass) => {
      attention(gpu, pass, { ...common, ...sinks, mask: sinkBlocks, path: 'split' });
      attention(gpu, pass, { ...common, ...local, mask: { kind: 'sink-window', sinks: 0, window: 10 }, path: 'split' });
      mergeAttention(gpu, pass, { a: sinks, b: local, out: merged.out, lse: merged.lse, rows, headDim: D });
    });
    const want = reference(s, { kind: 'sink-window', sinks: 4, window: 10 });
    expectClose(await gpu.readF32(merged.out, rows * D), want.out, 2e-5, 0, 'merged out');
    expectClose(await gpu.readF32(merged.lse, rows), want.lse, 2e-5, 1e-6, 'merged lse');
  });
});
