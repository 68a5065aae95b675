// The hot kernels at the shapes of real models. Each case says how many bytes it must move and
// how many flops it must do, so the report can compare it with the adapter's roofline.
//
// Shapes (weights are N rows of K, as GGUF stores them; y = x · Wᵀ):
// - SmolLM2-135M: hidden 576, FFN 1536, 9 heads of 64 (3 KV heads), vocabulary 49152.
// - Llama-3.2-1B: hidden 2048, FFN 8192, 32 heads of 64 (8 KV heads), vocabulary 128256.
// - Llama-2-7B-like: hidden 4096, FFN 11008, 32 heads of 128.
// - Qwen2.5/3: vocabulary 151936.
// `quick` keeps a software adapter's run to a minute or so: the 7B and 1B-FFN shapes and the
// long contexts are left out or shortened, and the GEMM cases keep one quantized format.
import { GGMLType, type GGMLTypeId, rowBytes, typeName } from '../src/formats/ggml-types';
import { quantize } from '../src/formats/quantize';
import type { Gpu } from '../src/gpu';
import { type AttentionMask, attention, treeMaskFromParents } from '../src/kernels/attention';
import { add } from '../src/kernels/elementwise';
import { embedding } from '../src/kernels/embedding';
import { type KvCache, type KvFormat, PAGE, createKvCache, destroyKvCache, identityPageTable, kvWrite, wordsPerHead } from '../src/kernels/kv-cache';
import { type MatmulVariant, matmul, uploadWeight } from '../src/kernels/matmul';
import { rmsNorm } from '../src/kernels/norm';
import { type RopeLayout, rope, ropeFrequencies, ropeTable } from '../src/kernels/rope';
import { sample } from '../src/kernels/sampling';
import { argmax, softmax } from '../src/kernels/softmax';
import type { Record } from './timing';

export interface BenchCase {
  /** Kernel, variant, format and shape, e.g. `matmul gemv Q4_K M=1 N=2048 K=2048 (Llama-3.2-1B attn)`. */
  name: string;
  /** Bytes the kernel must read and write at least (weights, activations, KV). */
  bytes: number;
  /** Arithmetic the kernel must do at least (a multiply-add is 2). */
  flops: number;
  /** Repetitions per timed pass; by default sized from a calibration run. */
  repeats?: number;
  prepare(gpu: Gpu): Promise<{ record: Record; dispose?: () => void }>;
}

export interface SuiteOptions {
  /** Smaller shapes for software adapters, where full-size runs take minutes. */
  quick: boolean;
}

/** Deterministic filler: benchmarks need realistic magnitudes, not particular values. */
export function filler(n: number, seed = 1, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 31 - 1) * scale;
  }
  return out;
}

const T = GGMLType;

/**
 * GGUF bytes for an N x K weight: a few rows quantized from filler (weights of a trained model's
 * magnitude), repeated to fill the tensor. Quantizing 45M values in JavaScript would take longer
 * than the benchmark; repeated rows still sit at distinct addresses, so no cache sees a repeat.
 */
function weightBytes(type: GGMLTypeId, N: number, K: number, seed: number): Uint8Array {
  const patternRows = Math.min(N, 16);
  const pattern = quantize(type, filler(patternRows * K, seed, 0.05), K);
  const bytesPerRow = rowBytes(type, K);
  const out = new Uint8Array(N * bytesPerRow);
  for (let row = 0; row < N; row += patternRows) out.set(pattern.subarray(0, Math.min(patternRows, N - row) * bytesPerRow), row * bytesPerRow);
  return out;
}

function destroyAll(...buffers: GPUBuffer[]): () => void {
  return () => buffers.forEach((b) => b.destroy());
}

function residualAdd(hidden: number, rows: number): BenchCase {
  const n = hidden * rows;
  return {
    name: `add ${rows}x${hidden}`,
    bytes: 3 * 4 * n,
    flops: n,
    async prepare(gpu) {
      const a = gpu.upload(filler(n, 1)), b = gpu.upload(filler(n, 2)), out = gpu.buffer(n * 4);
      return { record: (pass) => add(gpu, pass, { a, b, out, n }), dispose: destroyAll(a, b, out) };
    },
  };
}

interface MatmulShape {
  N: number;
  K: number;
  /** Where the shape comes from. */
  what: string;
}

function matmulCase(type: GGMLTypeId, M: number, { N, K, what }: MatmulShape, variant: MatmulVariant): BenchCase {
  return {
    name: `matmul ${variant} ${typeName(type)} M=${M} N=${N} K=${K} (${what})`,
    bytes: N * rowBytes(type, K) + M * K * 4 + M * N * 4,
    flops: 2 * M * N * K,
    async prepare(gpu) {
      const w = uploadWeight(gpu, type, N, K, weightBytes(type, N, K, N + K));
      const x = gpu.upload(filler(M * K, 3)), y = gpu.buffer(M * N * 4);
      return {
        record: (pass) => matmul(gpu, pass, { x, w, y, M, variant }),
        dispose: destroyAll(x, y, ...w.parts.map((p) => p.buffer)),
      };
    },
  };
}

const isKQuant = (type: GGMLTypeId) => type === T.Q4_K || type === T.Q5_K || type === T.Q6_K;

function matmulCases(quick: boolean): BenchCase[] {
  const formats = [T.F16, T.Q8_0, T.Q4_0, T.Q4_K, T.Q6_K];
  const decodeShapes: Array<MatmulShape & { quick: boolean }> = [
    { N: 576, K: 576, what: 'SmolLM2-135M attn', quick: true },
    { N: 1536, K: 576, what: 'SmolLM2-135M ffn up', quick: true },
    { N: 576, K: 1536, what: 'SmolLM2-135M ffn down', quick: true },
    { N: 49152, K: 576, what: 'SmolLM2-135M head', quick: true },
    { N: 2048, K: 2048, what: 'Llama-3.2-1B attn', quick: true },
    { N: 8192, K: 2048, what: 'Llama-3.2-1B ffn up', quick: false },
    { N: 4096, K: 4096, what: '7B attn', quick: false },
    { N: 11008, K: 4096, what: '7B ffn up', quick: false },
  ];
  const cases: BenchCase[] = [];
  // Decode: GEMV at M = 1. K-quants need K to be a multiple of 256, so hidden 576 has none
  // (llama.cpp falls back to Q5_0/Q8_0 there).
  for (const shape of decodeShapes) {
    if (quick && !shape.quick) continue;
    for (const type of formats) {
      if (isKQuant(type) && shape.K % 256 !== 0) continue;
      cases.push(matmulCase(type, 1, shape, 'gemv'));
    }
  }
  // The one-thread-per-row kernel, for comparison (fastest on SwiftShader, uncoalesced on a GPU).
  const square: MatmulShape = { N: 2048, K: 2048, what: 'Llama-3.2-1B attn' };
  for (const type of quick ? [T.Q4_0, T.Q4_K] : formats) cases.push(matmulCase(type, 1, square, 'rowwise'));
  // Short batches (speculative verification, small prefills) and prefill.
  for (const type of quick ? [T.Q4_K] : formats) {
    cases.push(matmulCase(type, 4, square, 'gemv'));
    cases.push(matmulCase(type, 16, square, 'gemv'));
    cases.push(matmulCase(type, 16, square, 'gemm'));
    cases.push(matmulCase(type, 64, square, 'gemm'));
    if (!quick) cases.push(matmulCase(type, 128, square, 'gemm'));
  }
  return cases;
}

function rmsNormCase(rows: number, n: number): BenchCase {
  return {
    name: `rmsNorm ${rows}x${n}`,
    bytes: 2 * rows * n * 4 + n * 4,
    flops: 4 * rows * n, // square-add, then scale and weight
    async prepare(gpu) {
      const x = gpu.upload(filler(rows * n, 5)), weight = gpu.upload(filler(n, 6)), out = gpu.buffer(rows * n * 4);
      return { record: (pass) => rmsNorm(gpu, pass, { x, weight, out, rows, n, eps: 1e-5 }), dispose: destroyAll(x, weight, out) };
    },
  };
}

function ropeCase(tokens: number, heads: number, headDim: number, layout: RopeLayout): BenchCase {
  const n = tokens * heads * headDim;
  return {
    name: `rope ${layout} T=${tokens} ${heads}x${headDim}`,
    bytes: 2 * n * 4 + tokens * 4 + (headDim / 2) * 16,
    flops: 3 * n, // per pair: 4 multiplies, 2 adds (the angle is not counted)
    async prepare(gpu) {
      const x = gpu.upload(filler(n, 7)), out = gpu.buffer(n * 4);
      const table = gpu.upload(ropeTable(ropeFrequencies({ ropeDim: headDim, base: 500000 })));
      const positions = gpu.upload(Int32Array.from({ length: tokens }, (_, i) => 1000 + i));
      return {
        record: (pass) => rope(gpu, pass, { x, out, table, positions, tokens, heads, headDim, layout }),
        dispose: destroyAll(x, out, table, positions),
      };
    },
  };
}

function logits(gpu: Gpu, rows: number, vocab: number): GPUBuffer {
  return gpu.upload(filler(rows * vocab, 9, 8));
}

function softmaxCase(rows: number, vocab: number): BenchCase {
  return {
    name: `softmax ${rows}x${vocab}`,
    bytes: 2 * rows * vocab * 4,
    flops: 3 * rows * vocab, // subtract the max, exp, scale
    async prepare(gpu) {
      const x = logits(gpu, rows, vocab), out = gpu.buffer(rows * vocab * 4);
      return { record: (pass) => softmax(gpu, pass, { x, out, rows, n: vocab }), dispose: destroyAll(x, out) };
    },
  };
}

function argmaxCase(rows: number, vocab: number): BenchCase {
  return {
    name: `argmax ${rows}x${vocab}`,
    bytes: rows * vocab * 4 + rows * 4,
    flops: rows * vocab, // one comparison each
    async prepare(gpu) {
      const x = logits(gpu, rows, vocab), out = gpu.buffer(rows * 4);
      return { record: (pass) => argmax(gpu, pass, { x, out, rows, n: vocab }), dispose: destroyAll(x, out) };
    },
  };
}

function sampleCase(rows: number, vocab: number, what: string, options: { temperature?: number; topK?: number; topP?: number; minP?: number }): BenchCase {
  return {
    name: `sample ${what} ${rows}x${vocab}`,
    bytes: rows * vocab * 4 + rows * 4,
    flops: 3 * rows * vocab, // scale, exp, sum (the filters' passes are not counted)
    async prepare(gpu) {
      const x = logits(gpu, rows, vocab), tokens = gpu.buffer(rows * 4);
      let step = 0;
      return {
        record: (pass) => sample(gpu, pass, { logits: x, tokens, rows, vocab, ...options, seed: 42, step: step++ }),
        dispose: destroyAll(x, tokens),
      };
    },
  };
}

function embeddingCase(type: GGMLTypeId, vocab: number, hidden: number, count: number, what: string): BenchCase {
  return {
    name: `embedding ${typeName(type)} ${count} of ${vocab}x${hidden} (${what})`,
    bytes: count * (rowBytes(type, hidden) + 4 + hidden * 4),
    flops: count * hidden, // one scale multiply per value
    async prepare(gpu) {
      const table = uploadWeight(gpu, type, vocab, hidden, weightBytes(type, vocab, hidden, 11));
      const ids = gpu.upload(Uint32Array.from({ length: count }, (_, i) => (i * 7919) % vocab)), out = gpu.buffer(count * hidden * 4);
      return {
        record: (pass) => embedding(gpu, pass, { table, ids, out, count }),
        dispose: destroyAll(ids, out, ...table.parts.map((p) => p.buffer)),
      };
    },
  };
}

interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  format: KvFormat;
  /** Where the shape comes from. */
  what: string;
}

/** KV bytes one slot of all kv heads takes, K and V together, scales included. */
function kvSlotBytes({ kvHeads, headDim, format }: AttentionShape): number {
  const scales = format === 'int8' || format === 'int4' ? (headDim / (headDim % 32 === 0 ? 32 : 16)) * 4 : 0;
  return 2 * kvHeads * (wordsPerHead(format, headDim) * 4 + scales);
}

/** A cache of `kvLen` slots filled through kvWrite (so quantized formats hold real scales). */
async function filledCache(gpu: Gpu, shape: AttentionShape, kvLen: number): Promise<{ cache: KvCache; pageTable: GPUBuffer }> {
  const capacity = Math.ceil(kvLen / PAGE) * PAGE;
  const pageTable = gpu.upload(identityPageTable(capacity));
  const cache = createKvCache(gpu, { capacity, kvHeads: shape.kvHeads, headDim: shape.headDim, format: shape.format, pageTable });
  const row = shape.kvHeads * shape.headDim;
  const k = gpu.upload(filler(kvLen * row, 21)), v = gpu.upload(filler(kvLen * row, 22));
  const slots = gpu.upload(Uint32Array.from({ length: kvLen }, (_, i) => i));
  await gpu.run((pass) => kvWrite(gpu, pass, { cache, k, v, slots, count: kvLen }));
  [k, v, slots].forEach((b) => b.destroy());
  return { cache, pageTable };
}

/**
 * One attention call: T queries at slots queryStart.. over kvLen cached slots. `visibleKeys` is
 * the number of (query, key) pairs the mask keeps per query head, `keysRead` the cache slots the
 * kernel must read at least; flops are 4·D per visible pair (q·k and p·v).
 */
function attentionCase(
  name: string, shape: AttentionShape,
  o: { T: number; kvLen: number; queryStart: number; visibleKeys: number; keysRead: number; path: 'flash' | 'split'; mask: (gpu: Gpu) => { mask: AttentionMask; buffers: GPUBuffer[] } },
): BenchCase {
  const { heads, headDim: D } = shape;
  return {
    name: `attention ${o.path} ${name} ${heads}/${shape.kvHeads}x${D} ${shape.format} (${shape.what})`,
    bytes: o.keysRead * kvSlotBytes(shape) + 2 * o.T * heads * D * 4,
    flops: 4 * D * heads * o.visibleKeys,
    async prepare(gpu) {
      const { cache, pageTable } = await filledCache(gpu, shape, o.kvLen);
      const q = gpu.upload(filler(o.T * heads * D, 23)), out = gpu.buffer(o.T * heads * D * 4);
      const { mask, buffers } = o.mask(gpu);
      return {
        record: (pass) => attention(gpu, pass, { q, cache, out, T: o.T, numHeads: heads, kvLen: o.kvLen, queryStart: o.queryStart, scale: 1 / Math.sqrt(D), mask, path: o.path }),
        dispose: () => {
          destroyKvCache(cache);
          [pageTable, q, out, ...buffers].forEach((b) => b.destroy());
        },
      };
    },
  };
}

const causal = () => ({ mask: { kind: 'causal' } as AttentionMask, buffers: [] });

function decodeAttention(shape: AttentionShape, kvLen: number): BenchCase {
  return attentionCase(`decode kvLen=${kvLen}`, shape, { T: 1, kvLen, queryStart: kvLen - 1, visibleKeys: kvLen, keysRead: kvLen, path: 'split', mask: causal });
}

function prefillAttention(shape: AttentionShape, T: number): BenchCase {
  return attentionCase(`prefill causal T=${T}`, shape, { T, kvLen: T, queryStart: 0, visibleKeys: (T * (T + 1)) / 2, keysRead: T, path: 'flash', mask: causal });
}

/**
 * Speculative verification: a 64-node token tree after `prefix` committed slots, in DFS
 * preorder: a 16-deep chain from the root, then three more 16-deep chains hanging off the root.
 */
function treeAttention(shape: AttentionShape, prefix: number): BenchCase {
  const parents: number[] = [];
  for (let branch = 0; branch < 4; branch++) for (let d = 0; d < 16; d++) parents.push(d === 0 ? (branch === 0 ? -1 : 0) : parents.length - 1);
  const { treeEnd, depths } = treeMaskFromParents(parents);
  const n = parents.length;
  const visibleKeys = n * prefix + Array.from(depths).reduce((sum, d) => sum + d + 1, 0);
  return attentionCase(`tree ${n} nodes after ${prefix}`, shape, {
    T: n, kvLen: prefix + n, queryStart: prefix, visibleKeys, keysRead: prefix + n, path: 'flash',
    mask: (gpu) => {
      const buffer = gpu.upload(treeEnd);
      return { mask: { kind: 'tree', treeEnd: buffer }, buffers: [buffer] };
    },
  });
}

/** Decode that reads a quarter of a kvLen cache: per kv head, `keep` blocks of 64 slots (the first, the last, and a spread between). */
function blockSparseAttention(shape: AttentionShape, kvLen: number): BenchCase {
  const blockSize = 64;
  const total = Math.ceil(kvLen / blockSize);
  const keep = Math.max(2, Math.floor(total / 4));
  const list = Array.from({ length: keep }, (_, i) => Math.round((i * (total - 1)) / (keep - 1)));
  const lastBlockKeys = kvLen - (total - 1) * blockSize;
  const keys = (keep - 1) * blockSize + lastBlockKeys;
  return attentionCase(`decode block-sparse ${keep}/${total} blocks of ${blockSize}, kvLen=${kvLen}`, shape, {
    T: 1, kvLen, queryStart: kvLen - 1, visibleKeys: keys, keysRead: keys, path: 'split',
    mask: (gpu) => {
      const blocks = gpu.upload(Uint32Array.from({ length: shape.kvHeads * keep }, (_, i) => list[i % keep]));
      const counts = gpu.upload(new Uint32Array(shape.kvHeads).fill(keep));
      return { mask: { kind: 'block-sparse', blocks, counts, blockSize, maxBlocks: keep }, buffers: [blocks, counts] };
    },
  });
}

function attentionCases(quick: boolean): BenchCase[] {
  const d64: AttentionShape = { heads: 32, kvHeads: 8, headDim: 64, format: 'f16', what: 'Llama-3.2-1B' };
  const d128: AttentionShape = { heads: 32, kvHeads: 8, headDim: 128, format: 'f16', what: 'Llama-3-8B' };
  const smol: AttentionShape = { heads: 9, kvHeads: 3, headDim: 64, format: 'f16', what: 'SmolLM2-135M' };
  const contexts = quick ? [512, 2048] : [512, 2048, 4096];
  return [
    ...contexts.flatMap((kvLen) => [decodeAttention(d64, kvLen), decodeAttention(d128, kvLen)]),
    // Compressed caches read fewer bytes for the same keys.
    ...(['f32', 'int8', 'int4'] as const).map((format) => decodeAttention({ ...d128, format }, quick ? 2048 : 4096)),
    prefillAttention(smol, quick ? 128 : 512),
    ...(quick ? [] : [prefillAttention(d64, 512)]),
    treeAttention(d64, quick ? 256 : 1024),
    blockSparseAttention(d128, quick ? 2048 : 4096),
  ];
}

export function benchCases({ quick }: SuiteOptions): BenchCase[] {
  const prefill = quick ? 128 : 512;
  return [
    ...matmulCases(quick),
    ...attentionCases(quick),
    rmsNormCase(1, 576),
    rmsNormCase(1, 2048),
    rmsNormCase(prefill, 576),
    rmsNormCase(prefill, 2048),
    ...(quick ? [] : [rmsNormCase(prefill, 4096)]),
    ropeCase(1, 32, 64, 'neox'),
    ropeCase(prefill, 9, 64, 'normal'),
    ropeCase(prefill, 9, 64, 'neox'),
    ropeCase(prefill, 32, 64, 'neox'),
    ...(quick ? [] : [ropeCase(4096, 32, 128, 'neox')]),
    softmaxCase(1, 49152),
    softmaxCase(1, 151936),
    argmaxCase(1, 49152),
    argmaxCase(1, 151936),
    sampleCase(1, 49152, 'T=1', { temperature: 1 }),
    sampleCase(1, 151936, 'T=1', { temperature: 1 }),
    sampleCase(1, 151936, 'T=0.7 top-k 40 top-p 0.9', { temperature: 0.7, topK: 40, topP: 0.9 }),
    ...(quick ? [] : [sampleCase(8, 151936, 'T=0.7 top-k 40 top-p 0.9', { temperature: 0.7, topK: 40, topP: 0.9 })]),
    embeddingCase(T.F16, 49152, 576, 1, 'SmolLM2 decode'),
    embeddingCase(T.Q8_0, 49152, 576, prefill, 'SmolLM2 prefill'),
    ...(quick ? [] : [embeddingCase(T.Q4_K, 128256, 2048, prefill, 'Llama-3.2-1B prefill')]),
    ...(quick ? [576, 2048] : [576, 2048, 4096]).map((h) => residualAdd(h, 128)),
  ];
}

/** The cases whose name matches `only` (a regular expression, case-insensitive); all without it. */
export function selectCases(cases: BenchCase[], only?: string): BenchCase[] {
  if (!only) return cases;
  const pattern = new RegExp(only, 'i');
  const selected = cases.filter((c) => pattern.test(c.name));
  if (selected.length === 0) throw new Error(`--only=${only} matches none of the ${cases.length} cases`);
  return selected;
}
