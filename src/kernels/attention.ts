// Attention launchers: flash attention for many queries, flash-decoding (split over the KV length,
// merged by log-sum-exp) for few, and the per-key attention mass that eviction and pruning
// policies rank keys by. All read the paged KV cache in any format and take one mask description.
import { type Binding, type Gpu, check, grid } from '../gpu';
import {
  type AttentionVariant, FLASH_QUERIES, SPLIT_MAX_CHUNK,
  flashWgsl, massWgsl, mergePairWgsl, mergeWgsl, scoreLseWgsl, splitWgsl,
} from '../shaders/attention';
import { type KvCache, kvBindings } from './kv-cache';
import { bindingBytes } from './matmul';

export type { MaskKind } from '../shaders/attention';

export type AttentionMask =
  /** Key j visible to query i iff j <= queryStart + i. */
  | { kind: 'causal' }
  /** Every key below kvLen (vision encoders). */
  | { kind: 'none' }
  /**
   * A token tree after a committed prefix of queryStart slots: query i is tree node i (nodes in
   * DFS preorder), keys before queryStart are always visible, tree node a is visible to node i
   * iff a <= i < treeEnd[a] (u32 buffer; see treeMaskFromParents).
   */
  | { kind: 'tree'; treeEnd: Binding }
  /** StreamingLLM: causal, and j < sinks or (query slot - j) < window. */
  | { kind: 'sink-window'; sinks: number; window: number }
  /** LM-Infinite's Λ visibility: causal, and j < global or (query slot - j) < local. */
  | { kind: 'lambda'; global: number; local: number }
  /**
   * Only the listed key blocks (blockSize slots each; 1 = single tokens), per kv head:
   * blocks u32 [kvHeads][maxBlocks] in ascending order, counts u32 [kvHeads]; intersected with causal.
   */
  | { kind: 'block-sparse'; blocks: Binding; counts: Binding; blockSize: number; maxBlocks: number };

export interface AttentionArgs {
  /** f32 [T][numHeads][headDim], already rotated. */
  q: Binding;
  cache: KvCache;
  /** f32 [T][numHeads][headDim]. */
  out: Binding;
  /** Optional f32 [T][numHeads]: log-sum-exp of each row's scores (−3e38 for a row that sees nothing). */
  lse?: Binding;
  T: number;
  numHeads: number;
  /** Valid logical slots. */
  kvLen: number;
  /** Logical slot of query 0. */
  queryStart: number;
  scale: number;
  mask: AttentionMask;
  /** Optional f32 [kvLen] added to every score of key j (ToMe's log size). */
  keyBias?: Binding;
  /** 'split' (flash-decoding) by default for T <= 16, 'flash' above. */
  path?: 'flash' | 'split';
  /** Chunks of the key range for the split path (each at most 256 keys). */
  splits?: number;
}

/** Parent index per node (-1 for roots), nodes in DFS preorder -> treeEnd and depths (RoPE positions are prefix + depth). */
export function treeMaskFromParents(parents: readonly number[]): { treeEnd: Uint32Array; depths: Uint32Array } {
  const n = parents.length;
  const treeEnd = new Uint32Array(n);
  const depths = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const p = parents[i];
    check(Number.isInteger(p) && p >= -1 && p < i, () => `tree: node ${i} has parent ${p}; nodes must be in DFS preorder (each parent before its children)`);
    treeEnd[i] = i + 1;
    depths[i] = p < 0 ? 0 : depths[p] + 1;
  }
  // Subtree ends, children before parents: a node's subtree ends where its last descendant does.
  for (let i = n - 1; i >= 0; i--) if (parents[i] >= 0) treeEnd[parents[i]] = Math.max(treeEnd[parents[i]], treeEnd[i]);
  // Preorder means every subtree is a contiguous range: node i+1 is i's first child or lies outside i's subtree.
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < treeEnd[i]; j++) {
      let a = parents[j];
      while (a > i) a = parents[a];
      check(a === i, () => `tree: nodes are not in DFS preorder (node ${j} sits inside node ${i}'s range but is not its descendant)`);
    }
  }
  return { treeEnd, depths };
}

interface Resolved {
  variant: AttentionVariant;
  params: Uint32Array;
  extra: Binding[];
}

function resolve(args: Omit<AttentionArgs, 'out' | 'path' | 'splits'>, what: string): Resolved {
  const { cache, T, numHeads, kvLen, queryStart, mask } = args;
  const D = cache.headDim;
  check([32, 64, 80, 96, 128].includes(D), `${what}: head size ${D} is not supported (32, 64, 80, 96, 128)`);
  check(Number.isInteger(T) && T >= 1, `${what}: bad query count ${T}`);
  check(Number.isInteger(numHeads) && numHeads >= 1 && numHeads % cache.kvHeads === 0, () => `${what}: ${numHeads} query heads is not a multiple of ${cache.kvHeads} kv heads`);
  check(Number.isInteger(kvLen) && kvLen >= 1 && kvLen <= cache.capacity, () => `${what}: kvLen ${kvLen} outside 1..${cache.capacity}`);
  check(Number.isInteger(queryStart) && queryStart >= 0, `${what}: bad queryStart ${queryStart}`);
  check(Number.isFinite(args.scale), `${what}: bad scale ${args.scale}`);
  check(bindingBytes(args.q) >= T * numHeads * D * 4, () => `${what}: q is smaller than [${T}][${numHeads}][${D}] f32`);

  let maskA = 0, maskB = 0, maskC = 0, virtualLen = kvLen, windowStart = 0;
  const extra: Binding[] = [];
  switch (mask.kind) {
    case 'causal':
    case 'none':
      break;
    case 'tree':
      check(bindingBytes(mask.treeEnd) >= T * 4, `${what}: treeEnd needs one u32 per query`);
      extra.push(mask.treeEnd);
      break;
    case 'sink-window':
    case 'lambda': {
      const [sinks, window] = mask.kind === 'lambda' ? [mask.global, mask.local] : [mask.sinks, mask.window];
      check(Number.isInteger(sinks) && sinks >= 0 && Number.isInteger(window) && window >= 1, () => `${what}: bad ${mask.kind} sizes ${sinks}, ${window}`);
      // Keys of the union of the queries' windows: the sinks, then from the first query's window on.
      const sinksInCache = Math.min(sinks, kvLen);
      windowStart = Math.min(kvLen, Math.max(sinksInCache, queryStart - window + 1));
      virtualLen = sinksInCache + (kvLen - windowStart);
      [maskA, maskB, maskC] = [sinks, window, sinksInCache];
      break;
    }
    case 'block-sparse':
      check(Number.isInteger(mask.blockSize) && mask.blockSize >= 1 && Number.isInteger(mask.maxBlocks) && mask.maxBlocks >= 1, `${what}: bad block-sparse sizes`);
      check(bindingBytes(mask.blocks) >= cache.kvHeads * mask.maxBlocks * 4 && bindingBytes(mask.counts) >= cache.kvHeads * 4, `${what}: blocks must be u32 [kvHeads][maxBlocks] and counts u32 [kvHeads]`);
      extra.push(mask.blocks, mask.counts);
      [maskA, maskC] = [mask.blockSize, mask.maxBlocks];
      virtualLen = mask.blockSize * mask.maxBlocks;
      break;
    default:
      check(false, `${what}: unknown mask ${(mask as { kind: string }).kind}`);
  }
  if (args.keyBias) {
    check(bindingBytes(args.keyBias) >= kvLen * 4, `${what}: keyBias needs one f32 per key`);
    extra.push(args.keyBias);
  }
  const params = new Uint32Array(20);
  params.set([T, numHeads, cache.kvHeads, kvLen, queryStart, 0, maskA, maskB, virtualLen, windowStart, 0, 0, maskC, 0, 0, 0, kvLen]);
  new Float32Array(params.buffer)[5] = args.scale;
  return { variant: { format: cache.format, group: cache.group, headDim: D, mask: mask.kind, bias: !!args.keyBias }, params, extra };
}

const variantKey = (v: AttentionVariant) => `${v.format}-g${v.group}-d${v.headDim}-${v.mask}${v.bias ? '-bias' : ''}`;

function commonBindings(cache: KvCache, extra: Binding[]): Binding[] {
  return [cache.pageTable, ...kvBindings(cache), ...extra];
}

export const SPLIT_MAX_QUERIES = 16;

/** Attention of T queries over the cache: out = softmax(q·Kᵀ·scale + bias, masked)·V. */
export function attention(gpu: Gpu, pass: GPUComputePassEncoder, args: AttentionArgs): void {
  const r = resolve(args, 'attention');
  const { T, numHeads, cache } = args;
  const D = cache.headDim;
  check(bindingBytes(args.out) >= T * numHeads * D * 4, 'attention: out is smaller than q');
  const path = args.path ?? (T <= SPLIT_MAX_QUERIES ? 'split' : 'flash');
  const key = variantKey(r.variant);
  const common = commonBindings(cache, r.extra);

  if (path === 'flash') {
    const lse = args.lse ?? gpu.scratch('attention lse', T * numHeads * 4);
    const pipeline = gpu.pipeline(`attention-flash-${key}`, () => flashWgsl(r.variant));
    gpu.dispatch(pass, pipeline, [args.q, args.out, lse, gpu.uniform(r.params), ...common], [Math.ceil(T / FLASH_QUERIES), numHeads]);
    return;
  }
  check(path === 'split', `attention: unknown path ${path}`);
  const virtualLen = r.params[8];
  const minSplits = Math.max(1, Math.ceil(virtualLen / SPLIT_MAX_CHUNK));
  const splits = Math.max(minSplits, args.splits ?? Math.min(Math.ceil(virtualLen / 64), 64));
  check(Number.isInteger(splits), `attention: bad split count ${args.splits}`);
  const chunk = Math.ceil(virtualLen / splits);
  const rows = T * numHeads;
  r.params[10] = splits;
  r.params[11] = chunk;
  const partO = gpu.scratch('attention partial o', splits * rows * D * 4);
  const partLse = gpu.scratch('attention partial lse', splits * rows * 4);
  const split = gpu.pipeline(`attention-split-${key}`, () => splitWgsl(r.variant));
  gpu.dispatch(pass, split, [args.q, partO, partLse, gpu.uniform(r.params), ...common], [splits, rows]);
  const lse = args.lse ?? gpu.scratch('attention lse', rows * 4);
  const merge = gpu.pipeline(`attention-merge-d${D}`, () => mergeWgsl(D));
  gpu.dispatch(pass, merge, [partO, partLse, args.out, lse, gpu.uniform(r.params)], grid(rows));
}

/**
 * Attention mass per key: mass [kvHeads][stride] f32 (+)= Σ over queries [from, to) and the query
 * heads of each kv head of exp(s − lse), with lse from attention() on the same inputs, or, with
 * no lse given, from a scoring pass here (keys ranked before attention runs, TokenSelect). The
 * stride (default kvLen) lets a policy accumulate over steps whose kvLen grows (stride = capacity).
 *
 * With `noise` (Keyformer, B3) each query's probabilities are those of the noised softmax
 * softmax((s + g) / τ), g Gumbel noise hashed from (seed, query slot, head, key slot); its
 * normaliser is computed here (the `lse` given is not used).
 */
export function attentionMass(
  gpu: Gpu, pass: GPUComputePassEncoder,
  args: Omit<AttentionArgs, 'out' | 'path' | 'splits'> & {
    lse?: Binding; mass: Binding; queryRange?: [number, number]; accumulate?: boolean; massStride?: number;
    noise?: { seed: number; temperature: number };
    /**
     * Workgroup counts written on the GPU (six u32 at byte `offset`: the scoring pass's, then the
     * mass pass's; see attentionMassGrid): zeros skip the work (TokenSelect's selection cache).
     */
    indirect?: { buffer: GPUBuffer; offset: number };
  },
): void {
  const r = resolve(args, 'attentionMass');
  const [from, to] = args.queryRange ?? [0, args.T];
  const stride = args.massStride ?? args.kvLen;
  check(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= args.T, `attentionMass: bad query range [${from}, ${to})`);
  check(Number.isInteger(stride) && stride >= args.kvLen, `attentionMass: mass stride ${stride} is below kvLen ${args.kvLen}`);
  check(bindingBytes(args.mass) >= args.cache.kvHeads * stride * 4, `attentionMass: mass must be f32 [kvHeads][${stride}]`);
  r.params[13] = from;
  r.params[14] = to;
  r.params[15] = args.accumulate ? 1 : 0;
  r.params[16] = stride;
  let lse = args.lse;
  const noise = args.noise;
  if (noise) {
    check(Number.isInteger(noise.seed) && noise.seed >= 0 && noise.seed < 2 ** 32 && noise.temperature > 0, `attentionMass: bad noise ${JSON.stringify(noise)}`);
    r.params[17] = noise.seed;
    new Float32Array(r.params.buffer)[18] = 1 / noise.temperature;
  }
  const grids = attentionMassGrid(args);
  const { indirect } = args;
  check(!indirect || !!grids.scoring, 'attentionMass: indirect dispatch needs its own scoring pass (no lse given)');
  const run = (pipeline: GPUComputePipeline, resources: Binding[], workgroups: [number, number], at: number) =>
    indirect ? gpu.dispatchIndirect(pass, pipeline, resources, indirect.buffer, indirect.offset + at) : gpu.dispatch(pass, pipeline, resources, workgroups);
  if (grids.scoring) {
    lse = gpu.scratch(noise ? 'attention noised lse' : 'attention score lse', args.T * args.numHeads * 4);
    const lsePipeline = gpu.pipeline(`attention-${noise ? 'noised' : 'score'}-lse-${variantKey(r.variant)}`, () => scoreLseWgsl(r.variant, !!noise));
    run(lsePipeline, [args.q, lse, gpu.uniform(r.params), ...commonBindings(args.cache, r.extra)], grids.scoring, 0);
  }
  const pipeline = gpu.pipeline(`attention-mass-${variantKey(r.variant)}${noise ? '-noised' : ''}`, () => massWgsl(r.variant, !!noise));
  run(pipeline, [args.q, lse!, args.mass, gpu.uniform(r.params), ...commonBindings(args.cache, r.extra)], grids.mass, 12);
}

/** The workgroups attentionMass dispatches: a scoring pass when it computes its own lse (none given, or noise), then the mass. */
export function attentionMassGrid(args: { T: number; numHeads: number; kvLen: number; cache: KvCache; lse?: Binding; noise?: unknown }): { scoring?: [number, number]; mass: [number, number] } {
  return {
    scoring: args.noise || !args.lse ? grid(Math.ceil((args.T * args.numHeads) / 64)) : undefined,
    mass: [Math.ceil(args.kvLen / 64), args.cache.kvHeads],
  };
}

/**
 * Merges two attention results over disjoint key sets into `out` and `lse`, each [rows][headDim]
 * and [rows] (rows = T x heads), weighting each by its share of the total exp-mass: exactly the
 * attention over the union. For LM-Infinite's distance cap (global branch with capped positions
 * + local branch), prefix + tree, or sparse + local.
 */
export function mergeAttention(
  gpu: Gpu, pass: GPUComputePassEncoder,
  args: { a: { out: Binding; lse: Binding }; b: { out: Binding; lse: Binding }; out: Binding; lse: Binding; rows: number; headDim: number },
): void {
  const { rows, headDim } = args;
  check(Number.isInteger(rows) && rows >= 0 && headDim % 4 === 0, `mergeAttention: bad shape ${rows}x${headDim}`);
  for (const [name, b] of [['a', args.a.out], ['b', args.b.out], ['out', args.out]] as const) check(bindingBytes(b) >= rows * headDim * 4, `mergeAttention: ${name} is smaller than [${rows}][${headDim}]`);
  const pipeline = gpu.pipeline(`attention-merge-pair-d${headDim}`, () => mergePairWgsl(headDim));
  const params = gpu.uniform(new Uint32Array([rows]));
  gpu.dispatch(pass, pipeline, [args.a.out, args.a.lse, args.b.out, args.b.lse, args.out, args.lse, params], grid(Math.ceil((rows * headDim) / 4 / 64)));
}
