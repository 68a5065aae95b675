// KV-cache compression policies (ALGORITHMS.md, section B) behind one interface. A policy says
// what attention sees on each step (its mask), where its sink tokens sit (RoPE position), what
// attention statistics it needs, and, when the cache is full, which slots each layer keeps. The
// session (src/engine/kv/compressed-cache.ts) does the rest on the GPU: accumulating attention
// mass, moving kept K/V together, placing sinks.
//
// Positions: a kept key keeps the RoPE rotation of its original position, so distances between
// kept tokens stay true, except for sink tokens, which streaming policies move (see sinkPositions).
//
// Selection policies (TokenSelect, TidalDecode) evict nothing: the whole cache stays, and each step
// attends to a subset of it, chosen on the GPU (src/engine/kv/key-selection.ts). Positions never
// change. Their budget is the number of tokens a step attends to.
import type { AttentionMask } from '../../kernels/attention';

export type KvPolicyName = 'full' | 'streaming-llm' | 'lm-infinite' | 'h2o' | 'keyformer' | 'snapkv' | 'tokenselect' | 'tidaldecode' | 'infllm';
export const KV_POLICIES: readonly KvPolicyName[] = ['full', 'streaming-llm', 'lm-infinite', 'h2o', 'keyformer', 'snapkv', 'tokenselect', 'tidaldecode', 'infllm'];

export interface KvPolicyOptions {
  policy: KvPolicyName;
  /** Tokens the cache keeps (per layer) after an eviction. */
  budget?: number;
  /** Initial tokens always kept (StreamingLLM's sinks, LM-Infinite's global branch). Default 4. */
  sinks?: number;
  /**
   * Most recent tokens always kept (H2O's recent window, SnapKV's observation window). Default:
   * half the budget for H2O, 16 for SnapKV.
   */
  recent?: number;
  /** SnapKV: width of the max-pool over positions that lets neighbours of strong tokens survive (odd). Default 7. */
  pool?: number;
  /** Keyformer: tokens over which the Gumbel softmax temperature rises from 1 to 2. Default 1024. */
  horizon?: number;
  /** Keyformer: seed of the Gumbel noise. Default 0. */
  seed?: number;
  /**
   * TokenSelect's selection cache: a layer reuses its last ranking of the keys while the cosine
   * similarity of the step's mean query to the one that ranked stays at least this. Default 0.9;
   * above 1, every step ranks.
   */
  reuse?: number;
  /** InfLLM: tokens per memory unit (default 16, or an eighth of a smaller budget). */
  block?: number;
  /** InfLLM: representative tokens per unit (default 4, at most the unit size). */
  representatives?: number;
}

/** What a policy sees when the cache is full. */
export interface KvState {
  /** Slots in use, per layer. */
  used: number;
  layers: number;
  kvHeads: number;
  /** Mass rows' stride: mass[l][h * stride + slot]. */
  stride: number;
  /** Attention mass per layer, when the policy asks for it (`massRows`). */
  mass?: Float32Array[];
}

export interface KvPolicy {
  readonly kind: 'evict';
  readonly name: KvPolicyName;
  readonly budget: number;
  /** The attention mask of every step. */
  readonly mask: AttentionMask;
  /** Leading slots whose K is rotated again before each step (0: positions never change). */
  readonly sinks: number;
  /**
   * Where sink i sits for a step whose first query has position `query` and sees the window from
   * position `windowStart` on (its oldest visible non-sink key): RoPE positions, one per sink.
   */
  sinkPositions?(query: number, windowStart: number): number[];
  /**
   * The attention mass the forward accumulates: 'all' query rows since the last eviction (H2O), or
   * only the latest `n` queries (SnapKV's observation window). Absent: no mass.
   */
  readonly massRows?: 'all' | { last: number };
  /**
   * Keyformer: the mass of a step whose first token has position `position` is that of the
   * noised softmax softmax((s + g) / temperature), g Gumbel noise drawn from `seed`.
   */
  massNoise?(position: number): { seed: number; temperature: number };
  /**
   * Slots each layer's kv heads keep, [layer][kvHead], ascending, `budget` of them, when `used`
   * slots are in the cache. Each head's K/V move on their own, so heads may keep different tokens.
   */
  keep(state: KvState): number[][][];
}

/** Keeps slots [0, sinks) and the last budget − sinks: StreamingLLM (B1) and LM-Infinite (B2). */
class StreamingPolicy implements KvPolicy {
  readonly kind = 'evict';
  readonly mask: AttentionMask;

  constructor(readonly name: 'streaming-llm' | 'lm-infinite', readonly budget: number, readonly sinks: number) {
    const window = budget - sinks;
    // Each query sees the sinks and its own last `window` tokens, as if evicted token by token,
    // whatever else the cache holds between evictions.
    this.mask = name === 'lm-infinite' ? { kind: 'lambda', global: sinks, local: window } : { kind: 'sink-window', sinks, window };
  }

  /**
   * StreamingLLM (B1) numbers positions within the cache: the sinks sit right before the oldest
   * window token the query sees, so every distance is a distance in the cache. LM-Infinite (B2)
   * caps the distance to the global tokens at the local window: a sink further back than that is
   * seen as if exactly `window` away (its "stationary" position).
   */
  sinkPositions(query: number, windowStart: number): number[] {
    const window = this.budget - this.sinks;
    return Array.from({ length: this.sinks }, (_, i) =>
      this.name === 'streaming-llm' ? Math.max(i, windowStart - this.sinks + i) : Math.max(i, query - window));
  }

  keep(state: KvState): number[][][] {
    const slots = [...range(0, this.sinks), ...range(state.used - (this.budget - this.sinks), state.used)];
    return Array.from({ length: state.layers }, () => Array.from({ length: state.kvHeads }, () => slots));
  }
}

/**
 * Heavy hitters plus a recent window, by accumulated attention mass: H2O (B4); Keyformer (B3),
 * whose mass is that of a Gumbel-noised softmax with a temperature rising from 1 to 2; and SnapKV
 * (B5), which votes with the latest `recent` queries only (its observation window) and max-pools
 * the votes over neighbouring positions. Per kv head, as in the papers: each head keeps the tokens
 * its own query heads attended to most (GQA: the mass of the heads that share it, summed).
 */
class MassPolicy implements KvPolicy {
  readonly kind = 'evict';
  readonly mask: AttentionMask = { kind: 'causal' };
  readonly sinks = 0;
  readonly massRows: KvPolicy['massRows'];
  readonly massNoise?: KvPolicy['massNoise'];

  constructor(
    readonly name: 'h2o' | 'keyformer' | 'snapkv', readonly budget: number, private readonly recent: number, private readonly pool: number,
    keyformer?: { horizon: number; seed: number },
  ) {
    this.massRows = name === 'snapkv' ? { last: recent } : 'all';
    if (keyformer) {
      // τ rises linearly from 1 to 2 (B3 step 2) over `horizon` tokens (the paper: over the
      // generation length, which a session does not know); the noise is drawn afresh every step.
      this.massNoise = (position) => ({
        seed: (keyformer.seed ^ Math.imul(position + 1, 0x9e3779b1)) >>> 0,
        temperature: 1 + Math.min(1, position / keyformer.horizon),
      });
    }
  }

  keep(state: KvState): number[][][] {
    const { used, kvHeads, stride, mass } = state;
    if (!mass) throw new Error(`${this.name}: no attention mass`);
    const older = used - this.recent;
    return mass.map((layer) => Array.from({ length: kvHeads }, (_, h) => {
      const score = layer.subarray(h * stride, h * stride + older);
      const ranked = this.pool > 1 ? maxPool(score, this.pool) : score;
      // Ties (and all-zero votes) keep the later token.
      const heavy = range(0, older).sort((a, b) => ranked[b] - ranked[a] || b - a).slice(0, this.budget - this.recent);
      return [...heavy.sort((a, b) => a - b), ...range(older, used)];
    }));
  }
}

/**
 * What a layer does under a selection policy: attend to everything ('full'); attend to everything,
 * then rank the keys by that attention's mass for the layers after it ('full-select', TidalDecode's
 * selection layers); rank the keys by its own queries first and attend to the best ('select',
 * TokenSelect); or attend to what the latest 'full-select' layer chose ('sparse').
 */
export type LayerRole = 'full' | 'full-select' | 'select' | 'sparse';

/**
 * Per-step top-k attention over a cache that keeps everything: TokenSelect (B6) and TidalDecode
 * (B7). A step attends to the sinks, the `recent` latest tokens (and always its own), and the topK
 * keys with the most attention mass; one selection per kv head.
 */
export interface SelectionPolicy {
  readonly kind: 'select';
  readonly name: 'tokenselect' | 'tidaldecode' | 'infllm';
  /** Tokens a step attends to: sinks + topK + recent. Below that much context, attention is full. */
  readonly budget: number;
  readonly sinks: number;
  readonly recent: number;
  readonly topK: number;
  /** TokenSelect's selection cache threshold (cosine similarity), or null: every step ranks. */
  readonly reuse: number | null;
  /**
   * InfLLM (B8): select whole memory units of `block` tokens instead of tokens: the sinks' units,
   * the window's units and the `count` units whose `representatives` (the tokens that received the
   * most attention while local) score highest against the step's queries.
   */
  readonly units?: { block: number; representatives: number; count: number };
  /** Per layer. */
  roles(layers: number): LayerRole[];
}

class TopKSelection implements SelectionPolicy {
  readonly kind = 'select';
  readonly topK: number;

  constructor(
    readonly name: 'tokenselect' | 'tidaldecode' | 'infllm', readonly budget: number, readonly sinks: number, readonly recent: number,
    readonly reuse: number | null, readonly units?: { block: number; representatives: number; count: number },
  ) {
    this.topK = units ? units.count * units.block : budget - sinks - recent;
  }

  roles(layers: number): LayerRole[] {
    if (this.name !== 'tidaldecode') return Array.from({ length: layers }, () => 'select');
    // TidalDecode's defaults for 32 layers: full attention below layer 2, the selection at layer 1
    // used by the layers after it, and a re-selection (full attention) at layer 13. Scaled to depth.
    const sparseStart = Math.max(1, Math.round((2 * layers) / 32));
    const correction = Math.round((13 * layers) / 32);
    return Array.from({ length: layers }, (_, l) => {
      if (l < sparseStart - 1) return 'full';
      if (l === sparseStart - 1 || (l === correction && correction > sparseStart)) return 'full-select';
      return 'sparse';
    });
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

/** Max over a centred window of `width` (odd) positions. */
export function maxPool(x: ArrayLike<number>, width: number): Float64Array {
  const half = (width - 1) / 2;
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let m = -Infinity;
    for (let j = Math.max(0, i - half); j <= Math.min(x.length - 1, i + half); j++) m = Math.max(m, x[j]);
    out[i] = m;
  }
  return out;
}

/** The policy for `options`, checked; null for 'full' (no compression). */
export function createKvPolicy(options: KvPolicyOptions): KvPolicy | SelectionPolicy | null {
  const { policy } = options;
  if (!KV_POLICIES.includes(policy)) throw new RangeError(`unknown KV policy ${JSON.stringify(policy)}; choose one of ${KV_POLICIES.join(', ')}`);
  if (policy === 'full') return null;
  const budget = options.budget ?? 256;
  if (!Number.isInteger(budget) || budget < 8) throw new RangeError(`KV budget must be an integer of at least 8 tokens, got ${options.budget}`);
  const positive = (value: number, what: string, max: number) => {
    if (!Number.isInteger(value) || value < 1 || value > max) throw new RangeError(`KV ${what} must be an integer in 1..${max}, got ${value}`);
    return value;
  };
  switch (policy) {
    case 'streaming-llm':
    case 'lm-infinite':
      return new StreamingPolicy(policy, budget, positive(options.sinks ?? 4, 'sinks', budget - 1));
    case 'h2o':
      return new MassPolicy(policy, budget, positive(options.recent ?? Math.floor(budget / 2), 'recent window', budget - 1), 1);
    case 'keyformer': {
      const seed = options.seed ?? 0;
      if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new RangeError(`Keyformer seed must be a u32, got ${options.seed}`);
      const keyformer = { horizon: positive(options.horizon ?? 1024, 'Keyformer horizon', 2 ** 30), seed };
      return new MassPolicy(policy, budget, positive(options.recent ?? Math.floor(budget / 2), 'recent window', budget - 1), 1, keyformer);
    }
    case 'snapkv': {
      const pool = options.pool ?? 7;
      if (!Number.isInteger(pool) || pool < 1 || pool % 2 === 0) throw new RangeError(`SnapKV pool width must be a positive odd integer, got ${pool}`);
      return new MassPolicy(policy, budget, positive(options.recent ?? Math.min(16, budget >> 1), 'observation window', budget - 1), pool);
    }
    case 'tokenselect':
    case 'tidaldecode': {
      const sinks = positive(options.sinks ?? 4, 'sinks', budget - 2);
      const recent = positive(options.recent ?? Math.floor(budget / 4), 'recent window', budget - sinks - 1);
      const reuse = options.reuse ?? 0.9;
      if (!(reuse >= -1)) throw new RangeError(`TokenSelect's reuse threshold must be a cosine similarity (-1..1, or above 1 for never), got ${options.reuse}`);
      return new TopKSelection(policy, budget, sinks, recent, policy === 'tokenselect' && reuse <= 1 ? reuse : null);
    }
    case 'infllm': {
      // Units of 16 (the paper: 128 for 4K+ contexts), smaller for small budgets so some can be retrieved.
      const block = positive(options.block ?? Math.min(16, Math.max(1, Math.floor(budget / 8))), 'InfLLM unit size', budget);
      const representatives = positive(options.representatives ?? Math.min(4, block), 'InfLLM representatives per unit', block);
      const sinks = positive(options.sinks ?? 4, 'sinks', budget);
      const recent = positive(options.recent ?? Math.floor(budget / 4), 'recent window', budget);
      // Attended: the sinks' units, the window's (one more for a partial unit) and the retrieved ones.
      const count = Math.floor(budget / block) - Math.ceil(sinks / block) - (Math.ceil(recent / block) + 1);
      if (count < 1) throw new RangeError(`an InfLLM budget of ${budget} tokens leaves no unit to retrieve after the sinks' and the window's units of ${block}`);
      return new TopKSelection(policy, budget, sinks, recent, null, { block, representatives, count });
    }
  }
}
