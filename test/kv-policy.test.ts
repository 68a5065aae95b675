// KV-cache compression policies on the GPU against a float64 reference that applies the same
// policy token by token: which keys each query sees, at which RoPE positions, and (H2O, SnapKV)
// which tokens survive each eviction by the attention mass the reference itself computes. Also:
// the policies' choices on hand-made states, no change before the first eviction, flat memory
// over a long generation, int8/int4 caches under eviction, and the session's refusals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KvPolicy, type KvPolicyOptions, type SelectionPolicy, createKvPolicy, maxPool } from '../src/engine/kv/policy';
import { Session } from '../src/engine/session';
import { readGGUF } from '../src/formats/gguf-reader';
import { Decoder } from '../src/models/decoder';
import { gumbelRef } from '../src/reference/attention';
import { type LlamaReferenceModel, type VisibleKeys, llamaForward, loadLlamaReference } from '../src/reference/llama';
import { Tokenizer } from '../src/tokenizer';
import { llamaFixture } from './oracle/llama-fixture';
import { rng, testGpu } from './util';

const argmax = (row: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
};

/**
 * The reference: llamaForward with hooks that keep, per layer and kv head, the token in each cache
 * slot and the attention mass each slot received, evicting with the policy's own keep() when a
 * token would not fit (the GPU session evicts at the same moments with prefill chunks of 1). Each
 * query sees the union of its layer's heads' tokens, and each kv head only its own (restrict).
 */
function referenceWithPolicy(model: LlamaReferenceModel, tokens: number[], policy: KvPolicy, capacity: number) {
  const c = model.config;
  const group = c.nHead / c.nHeadKv;
  const slots: number[][][] = Array.from({ length: c.nLayer }, () => Array.from({ length: c.nHeadKv }, () => []));
  let mass = Array.from({ length: c.nLayer }, () => new Float64Array(c.nHeadKv * capacity));
  const kept: number[][][][] = [];
  const evict = () => {
    const keep = policy.keep({ used: slots[0][0].length, layers: c.nLayer, kvHeads: c.nHeadKv, stride: capacity, mass: mass.map((m) => Float32Array.from(m)) });
    const next = mass.map(() => new Float64Array(c.nHeadKv * capacity));
    keep.forEach((heads, l) => heads.forEach((chosen, h) => {
      if (policy.massRows === 'all') chosen.forEach((slot, i) => { next[l][h * capacity + i] = mass[l][h * capacity + slot]; });
      slots[l][h] = chosen.map((slot) => slots[l][h][slot]);
    }));
    mass = next;
    kept.push(slots.map((layer) => layer.map((s) => [...s])));
  };
  const mask = policy.mask;
  const streaming = policy.sinks > 0;
  const logits = llamaForward(model, tokens, {
    visible(layer, pos): VisibleKeys {
      if (layer === 0 && slots[0][0].length + 1 > capacity) evict();
      for (const head of slots[layer]) head.push(pos);
      if (!streaming) {
        const keys = [...new Set(slots[layer].flat())].sort((a, b) => a - b);
        return { keys, positions: keys };
      }
      // Streaming policies keep the same tokens in every head.
      const cached = slots[layer][0];
      const qs = cached.length - 1;
      const keys: number[] = [];
      const positions: number[] = [];
      const window = mask.kind === 'sink-window' ? mask.window : mask.kind === 'lambda' ? mask.local : Infinity;
      const sinks = policy.sinks;
      // The oldest window token this query sees (itself while it is a sink).
      const oldest = Math.max(sinks, qs - window + 1);
      const windowStart = oldest <= qs ? cached[oldest] : pos;
      cached.forEach((token, slot) => {
        if (!(slot < sinks || qs - slot < window)) return;
        keys.push(token);
        if (slot >= sinks) positions.push(token);
        // StreamingLLM (B1): positions within the cache, so the sinks sit right before the window.
        else if (policy.name === 'streaming-llm') positions.push(Math.max(token, windowStart - sinks + slot));
        // LM-Infinite (B2): a global token further than the local window is seen at that distance.
        else positions.push(Math.max(token, pos - window));
      });
      return { keys, positions };
    },
    restrict(layer, pos, keys, probs) {
      if (streaming) return null;
      const slotOf = slots[layer].map((head) => new Map(head.map((token, slot) => [token, slot])));
      const chosen = slotOf.map((heads) => keys.map((token) => heads.has(token)));
      if (!policy.massRows) return chosen;
      const noise = policy.massNoise?.(pos);
      const querySlot = slots[layer][0].length - 1;
      probs.forEach((p, head) => {
        const h = Math.floor(head / group);
        // The head's softmax over its own keys; for Keyformer that of (s + g) / τ, with s = log p
        // (a softmax does not change when every score moves by the same amount).
        const logits = keys.map((token, i) => (!chosen[h][i] ? -Infinity : noise
          ? (Math.log(p[i]) + gumbelRef(noise.seed, querySlot, head, slotOf[h].get(token)!)) / noise.temperature
          : Math.log(p[i])));
        const max = Math.max(...logits);
        const sum = logits.reduce((a, x) => a + Math.exp(x - max), 0);
        keys.forEach((token, i) => { if (chosen[h][i]) mass[layer][h * capacity + slotOf[h].get(token)!] += Math.exp(logits[i] - max) / sum; });
      });
      return chosen;
    },
  });
  return { logits, kept };
}

/**
 * The reference for selection policies: full attention probabilities per query, and where the
 * policy attends sparsely, per kv head the sinks, the recent window and the topK keys with the
 * most mass (summed over the kv head's query heads; ties to the earlier token). TokenSelect ranks
 * with each layer's own probabilities, or, while its query stays within the reuse threshold's
 * cosine similarity of the one that last ranked, with those older scores (zero for newer keys);
 * TidalDecode ranks with the probabilities of its selection layers.
 */
function referenceWithSelection(model: LlamaReferenceModel, tokens: number[], policy: SelectionPolicy) {
  const c = model.config;
  const group = c.nHead / c.nHeadKv;
  const roles = policy.roles(c.nLayer);
  const massOf = (probs: Float64Array[]) => Array.from({ length: c.nHeadKv }, (_, h) => {
    const mass = new Float64Array(probs[0].length);
    for (let head = h * group; head < (h + 1) * group; head++) probs[head].forEach((p, i) => { mass[i] += p; });
    return mass;
  });
  const choose = (mass: Float64Array[], n: number): boolean[][] => mass.map((scores) => {
    const chosen = Array.from({ length: n }, (_, i) => i < policy.sinks || i >= n - policy.recent);
    const others = Array.from({ length: n }, (_, i) => i).filter((i) => !chosen[i]);
    others.sort((a, b) => (scores[b] ?? 0) - (scores[a] ?? 0) || a - b).slice(0, policy.topK).forEach((i) => { chosen[i] = true; });
    return chosen;
  });
  const cosine = (a: Float64Array, b: Float64Array) => {
    let dot = 0, na = 0, nb = 0;
    a.forEach((x, i) => { dot += x * b[i]; na += x * x; nb += b[i] * b[i]; });
    return dot / Math.sqrt(na * nb);
  };
  const ranked: Array<{ q: Float64Array; mass: Float64Array[] } | null> = roles.map(() => null);
  const cache = { hits: 0, misses: 0 };
  let latest: boolean[][] | null = null;
  const logits = llamaForward(model, tokens, {
    restrict(layer, _pos, keys, probs, q) {
      if (keys.length <= policy.budget) return null;
      const role = roles[layer];
      if (role === 'select') {
        const last = ranked[layer];
        if (policy.reuse !== null && last && cosine(q, last.q) >= policy.reuse) {
          cache.hits++;
          return choose(last.mass, keys.length);
        }
        if (policy.reuse !== null) cache.misses++;
        ranked[layer] = { q: q.slice(), mass: massOf(probs) };
        return choose(ranked[layer]!.mass, keys.length);
      }
      if (role === 'full-select') latest = choose(massOf(probs), keys.length);
      return role === 'sparse' ? latest : null;
    },
  });
  return { logits, cache };
}

/**
 * The reference for InfLLM: per layer and kv head, the attention mass each token received while
 * attended; when a unit of `block` tokens leaves the window, its representatives are the tokens
 * with the most mass (ties to the earlier); a sparse step scores each represented unit by its
 * representatives' share of the softmax over all representatives, and attends to the sinks' units,
 * the window's units and the best `count` others.
 */
function referenceWithUnits(model: LlamaReferenceModel, tokens: number[], policy: SelectionPolicy) {
  const c = model.config;
  const group = c.nHead / c.nHeadKv;
  const { block, representatives, count } = policy.units!;
  const sinkUnits = Math.ceil(policy.sinks / block);
  const window = Math.ceil(policy.recent / block) + 1;
  const mass = Array.from({ length: c.nLayer }, () => Array.from({ length: c.nHeadKv }, () => new Float64Array(tokens.length)));
  const reps = Array.from({ length: c.nLayer }, () => Array.from({ length: c.nHeadKv }, () => [] as number[][]));
  const best = (scores: ArrayLike<number>, candidates: number[], k: number) => [...candidates].sort((a, b) => scores[b] - scores[a] || a - b).slice(0, k);
  const logits = llamaForward(model, tokens, {
    restrict(layer, _pos, keys, probs) {
      const n = keys.length;
      const units = Math.ceil(n / block);
      const addMass = (chosen: boolean[][] | null) => probs.forEach((p, head) => {
        const h = Math.floor(head / group);
        const total = chosen ? p.reduce((a, x, i) => a + (chosen[h][i] ? x : 0), 0) : 1;
        p.forEach((x, i) => { if (!chosen || chosen[h][i]) mass[layer][h][i] += x / total; });
      });
      if (units <= sinkUnits + count + window) {
        addMass(null);
        return null;
      }
      const departed = units - window;
      const chosen = Array.from({ length: c.nHeadKv }, (_, h) => {
        const unitReps = reps[layer][h];
        for (let u = unitReps.length; u < departed; u++) {
          unitReps.push(best(mass[layer][h], Array.from({ length: block }, (_, i) => u * block + i), representatives).sort((a, b) => a - b));
        }
        // Each head's softmax restricted to the representatives, summed over the kv head's query heads.
        const repScore = new Float64Array(n);
        const all = unitReps.slice(0, departed).flat();
        for (let head = h * group; head < (h + 1) * group; head++) {
          const total = all.reduce((a, slot) => a + probs[head][slot], 0);
          for (const slot of all) repScore[slot] += probs[head][slot] / total;
        }
        const unitScore = Array.from({ length: units }, (_, u) => (u < departed ? unitReps[u].reduce((a, slot) => a + repScore[slot], 0) : 0));
        const others = Array.from({ length: units }, (_, u) => u).filter((u) => u >= sinkUnits && u < departed);
        const picked = new Set([...Array.from({ length: sinkUnits }, (_, u) => u), ...best(unitScore, others, count), ...Array.from({ length: window }, (_, i) => departed + i)]);
        return Array.from({ length: n }, (_, i) => picked.has(Math.floor(i / block)));
      });
      addMass(chosen);
      return chosen;
    },
  });
  return logits;
}

describe('KV policies choose', () => {
  /** mass[l] is one layer's [kvHeads][used] scores, head after head. */
  const state = (used: number, mass?: number[][], kvHeads = 1) => ({ used, layers: mass?.length ?? 2, kvHeads, stride: used, mass: mass?.map((m) => Float32Array.from(m)) });

  it('StreamingLLM and LM-Infinite: the sinks and the most recent tokens, in every layer and head', () => {
    for (const name of ['streaming-llm', 'lm-infinite'] as const) {
      const policy = createKvPolicy({ policy: name, budget: 8, sinks: 2 }) as KvPolicy;
      const slots = [0, 1, 14, 15, 16, 17, 18, 19];
      expect(policy.keep(state(20, undefined, 2))).toEqual([[slots, slots], [slots, slots]]);
    }
  });

  it('H2O: the recent window, then the heaviest older tokens, per layer and kv head', () => {
    const policy = createKvPolicy({ policy: 'h2o', budget: 8, recent: 2 }) as KvPolicy;
    const head0 = [0.1, 5, 0.2, 3, 0.4, 0.3, 8, 0.6, 0.7, 0.01, 0.5, 9, 9];
    const head1 = [7, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    // Head 1's ties at zero keep the later tokens; layer 1 has the heads the other way round.
    const kept0 = [1, 3, 6, 7, 8, 10, 11, 12];
    const kept1 = [0, 2, 7, 8, 9, 10, 11, 12];
    expect(policy.keep(state(13, [[...head0, ...head1], [...head1, ...head0]], 2))).toEqual([[kept0, kept1], [kept1, kept0]]);
  });

  it('SnapKV: votes max-pooled over neighbours, so a strong token brings its neighbours', () => {
    expect(Array.from(maxPool([0, 1, 0, 0, 0, 0, 3], 3))).toEqual([1, 1, 1, 0, 0, 3, 3]);
    const policy = createKvPolicy({ policy: 'snapkv', budget: 8, recent: 2, pool: 3 }) as KvPolicy;
    // Older tokens 0..13: token 5 is the strongest, its neighbours 4 and 6 tie with it after pooling; then token 11 and its neighbours.
    const votes = [0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1];
    expect(policy.keep(state(16, [votes]))[0][0]).toEqual([4, 5, 6, 10, 11, 12, 14, 15]);
  });

  it('TokenSelect selects in every layer; TidalDecode attends fully in its selection layers, scaled from 32 layers', () => {
    const roles = (name: 'tokenselect' | 'tidaldecode', layers: number) => (createKvPolicy({ policy: name, budget: 64 }) as SelectionPolicy).roles(layers);
    expect(roles('tokenselect', 3)).toEqual(['select', 'select', 'select']);
    expect(roles('tidaldecode', 2)).toEqual(['full-select', 'sparse']);
    const deep = roles('tidaldecode', 32);
    expect(deep.slice(0, 3)).toEqual(['full', 'full-select', 'sparse']);
    expect(deep.flatMap((role, l) => (role === 'full-select' ? [l] : []))).toEqual([1, 13]);
    const policy = createKvPolicy({ policy: 'tidaldecode', budget: 64 }) as SelectionPolicy;
    expect([policy.sinks, policy.recent, policy.topK]).toEqual([4, 16, 44]);
  });

  it('refuses bad options with a clear message', () => {
    expect(() => createKvPolicy({ policy: 'nope' as KvPolicyOptions['policy'] })).toThrow(/unknown KV policy "nope"/);
    expect(() => createKvPolicy({ policy: 'h2o', budget: 4 })).toThrow(/at least 8/);
    expect(() => createKvPolicy({ policy: 'streaming-llm', budget: 16, sinks: 16 })).toThrow(/sinks must be an integer in 1..15/);
    expect(() => createKvPolicy({ policy: 'snapkv', budget: 16, pool: 4 })).toThrow(/odd/);
    expect(() => createKvPolicy({ policy: 'tokenselect', budget: 16, sinks: 4, recent: 12 })).toThrow(/recent window must be an integer in 1..11/);
    expect(() => createKvPolicy({ policy: 'tokenselect', budget: 16, reuse: Number.NaN })).toThrow(/cosine similarity/);
    expect((createKvPolicy({ policy: 'tokenselect', budget: 16, reuse: 1.5 }) as SelectionPolicy).reuse).toBeNull();
    expect((createKvPolicy({ policy: 'tidaldecode', budget: 16 }) as SelectionPolicy).reuse).toBeNull();
    expect(() => createKvPolicy({ policy: 'infllm', budget: 48, block: 16 })).toThrow(/leaves no unit to retrieve/);
    // A small budget gets small units: 16 tokens are 2 sink units, 3 window units and 3 retrieved, of 2 tokens with 2 representatives.
    expect((createKvPolicy({ policy: 'infllm', budget: 16 }) as SelectionPolicy).units).toEqual({ block: 2, representatives: 2, count: 3 });
    expect(() => createKvPolicy({ policy: 'infllm', budget: 64, block: 8, representatives: 9 })).toThrow(/representatives per unit must be an integer in 1..8/);
    expect(createKvPolicy({ policy: 'full' })).toBeNull();
  });
});

describe('KV policies on the GPU', () => {
  let decoder: Decoder;
  let reference: LlamaReferenceModel;
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    const file = await readGGUF(llamaFixture({ nEmbd: 128, nHead: 4, nHeadKv: 2, nLayer: 2, nFf: 256, contextLength: 256, seed: 5 }));
    decoder = await Decoder.load(await testGpu(), file);
    reference = await loadLlamaReference(file);
    tokenizer = Tokenizer.fromGGUFMetadata(file);
  });
  afterAll(() => decoder?.destroy());

  const randomTokens = (n: number, seed: number) => {
    const random = rng(seed);
    return Array.from({ length: n }, () => 3 + Math.floor(random() * (decoder.config.vocabSize - 3)));
  };

  const relativeError = (got: ArrayLike<number>, want: ArrayLike<number>) => {
    let diff = 0, lo = Infinity, hi = -Infinity;
    for (let j = 0; j < want.length; j++) {
      diff = Math.max(diff, Math.abs(got[j] - want[j]));
      lo = Math.min(lo, want[j]);
      hi = Math.max(hi, want[j]);
    }
    return diff / (hi - lo);
  };

  const policies: KvPolicyOptions[] = [
    { policy: 'streaming-llm', budget: 16, sinks: 4 },
    { policy: 'lm-infinite', budget: 16, sinks: 3 },
    { policy: 'h2o', budget: 16, recent: 6 },
    { policy: 'keyformer', budget: 16, recent: 6, horizon: 40, seed: 3 },
    { policy: 'snapkv', budget: 16, recent: 4, pool: 3 },
  ];

  for (const options of policies) {
    it(`${options.policy}: every query's logits match the reference applying the policy token by token, over three evictions`, async () => {
      const gpu = await testGpu();
      const tokens = randomTokens(70, 11);
      const session = new Session(gpu, decoder, { prefillChunk: 1, kv: options });
      try {
        expect(session.capacity).toBe(32);
        const got = await session.evaluate(tokens);
        const want = referenceWithPolicy(reference, tokens, session.compressed!.policy as KvPolicy, session.capacity);
        expect(want.kept.length).toBe(3);
        expect(await session.kvStats()).toMatchObject({ keptTokens: 70 - 3 * 16, evictedTokens: 3 * 16, evictions: 3 });
        let worst = 0;
        got.forEach((row, i) => { worst = Math.max(worst, relativeError(row, want.logits[i])); });
        expect(worst).toBeLessThan(1e-3);
        expect(got.every((row, i) => argmax(row) === argmax(want.logits[i]))).toBe(true);
        // The mass policies kept the same tokens as the reference (original positions = token index).
        if (options.policy === 'h2o' || options.policy === 'keyformer' || options.policy === 'snapkv') {
          const kept = session.compressed!.positions.map((layer) => layer.map((head) => Array.from(head.subarray(0, 16))));
          expect(kept).toEqual(want.kept.at(-1)!.map((layer) => layer.map((head) => head.slice(0, 16))));
          // Per head: the heads of a layer kept different tokens.
          expect(kept.some((layer) => layer.some((head) => head.join() !== layer[0].join()))).toBe(true);
        }
        // And the policy did something: the logits differ from the full cache's after the first eviction.
        const full = llamaForward(reference, tokens);
        expect(Math.max(...got.slice(40).map((row, i) => relativeError(row, full[40 + i])))).toBeGreaterThan(1e-2);
      } finally {
        session.destroy();
      }
    });
  }

  const selections: KvPolicyOptions[] = [
    { policy: 'tokenselect', budget: 16, sinks: 2, recent: 4, reuse: 2 },
    { policy: 'tokenselect', budget: 16, sinks: 2, recent: 4, reuse: 0.9 },
    { policy: 'tidaldecode', budget: 16, sinks: 2, recent: 4 },
  ];
  for (const options of selections) {
    const name = `${options.policy}${options.policy === 'tokenselect' ? (options.reuse! > 1 ? ' (ranking every step)' : ` (selection cache at cosine ${options.reuse})`) : ''}`;
    it(`${name}: every query's logits match the reference selecting per kv head, token by token, past its budget`, async () => {
      const gpu = await testGpu();
      // Runs of repeated tokens give similar consecutive queries, so the selection cache has something to reuse.
      const tokens = options.reuse !== undefined && options.reuse <= 1 ? randomTokens(20, 16).flatMap((t) => [t, t, t]) : randomTokens(60, 16);
      const session = new Session(gpu, decoder, { prefillChunk: 1, contextLength: 64, kv: options });
      try {
        const bytes = session.kvBytes;
        const got = await session.evaluate(tokens);
        const want = referenceWithSelection(reference, tokens, session.selection!.policy);
        let worst = 0;
        got.forEach((row, i) => { worst = Math.max(worst, relativeError(row, want.logits[i])); });
        expect(worst).toBeLessThan(1e-3);
        expect(got.every((row, i) => argmax(row) === argmax(want.logits[i]))).toBe(true);
        // Nothing is evicted; the latest step attended to 16 of its 60 tokens, sinks and window included.
        expect(session.kvBytes).toBe(bytes);
        const stats = (await session.kvStats())!;
        expect(stats).toMatchObject({ keptTokens: 60, evictions: 0, selected: { steps: 60, sparseSteps: 60 - 16 } });
        const attended = stats.selected!.positions;
        expect(attended).toHaveLength(16);
        expect(attended.slice(0, 2)).toEqual([0, 1]);
        expect(attended.slice(-4)).toEqual([56, 57, 58, 59]);
        // The selection cache decided as the reference did, and both ways at least once.
        if (session.selection!.policy.reuse !== null) {
          console.log(`${name}: ${want.cache.hits} of ${want.cache.hits + want.cache.misses} layer-steps reused their scores`);
          expect(stats.selected!.cache).toEqual(want.cache);
          expect(want.cache.hits).toBeGreaterThan(0);
          expect(want.cache.misses).toBeGreaterThan(0);
        }
        // And the selection changed something: the logits differ from full attention's.
        const full = llamaForward(reference, tokens);
        expect(Math.max(...got.slice(30).map((row, i) => relativeError(row, full[30 + i])))).toBeGreaterThan(1e-2);
      } finally {
        session.destroy();
      }
    });
  }

  it('infllm: every query\'s logits match the reference retrieving memory units by their representatives, token by token', async () => {
    const gpu = await testGpu();
    const tokens = randomTokens(90, 18);
    const options = { policy: 'infllm', budget: 48, block: 8, representatives: 2, sinks: 4, recent: 8 } as const;
    const session = new Session(gpu, decoder, { prefillChunk: 1, contextLength: 96, kv: options });
    try {
      const policy = session.selection!.policy;
      expect(policy.units).toEqual({ block: 8, representatives: 2, count: 6 - 1 - 2 });
      const got = await session.evaluate(tokens);
      const want = referenceWithUnits(reference, tokens, policy);
      let worst = 0;
      got.forEach((row, i) => { worst = Math.max(worst, relativeError(row, want[i])); });
      expect(worst).toBeLessThan(1e-3);
      expect(got.every((row, i) => argmax(row) === argmax(want[i]))).toBe(true);
      // Sparse from 7 units (49 tokens) on; the last step read the sinks' unit, 3 retrieved units and the window's 2 (the last one partial).
      const { selected } = (await session.kvStats())!;
      expect(selected!.sparseSteps).toBe(90 - 48);
      expect(selected!.positions).toHaveLength(8 * 5 + 2);
      expect(selected!.positions.slice(0, 8)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(selected!.positions.slice(-10)).toEqual(Array.from({ length: 10 }, (_, i) => 80 + i));
      const full = llamaForward(reference, tokens);
      expect(Math.max(...got.slice(50).map((row, i) => relativeError(row, full[50 + i])))).toBeGreaterThan(1e-2);
      // The units summarise attention from every later token: a rollback keeps all or nothing, and
      // after nothing the session starts afresh.
      expect(() => session.truncate(40)).toThrow(/infllm memory cannot roll back to 40 of 90 tokens/);
      expect(session.reusablePrefix([...tokens.slice(0, 40), 5])).toBe(0);
      session.truncate(0);
      const again = await session.evaluate(tokens.slice(0, 60));
      again.forEach((row, i) => expect(relativeError(row, got[i])).toBeLessThan(1e-6));
    } finally {
      session.destroy();
    }
  });

  it('selection in prefill chunks: the recent window grows to cover the chunk, so every query sees the chunk before it', async () => {
    const gpu = await testGpu();
    const tokens = randomTokens(60, 17);
    for (const policy of ['tokenselect', 'tidaldecode'] as const) {
      const session = new Session(gpu, decoder, { prefillChunk: 8, contextLength: 64, kv: { policy, budget: 24, sinks: 2, recent: 4 } });
      try {
        const logits = await session.evaluate(tokens);
        expect(logits.every((row) => row.every(Number.isFinite))).toBe(true);
        // Sparse from kvLen 2 + 18 + 8 = 28 on: the steps ending at 32, 40, 48, 56 and 60.
        const { selected } = (await session.kvStats())!;
        expect(selected).toMatchObject({ steps: 8, sparseSteps: 5 });
        expect(selected!.positions).toHaveLength(2 + 18 + 4);
        expect(selected!.positions.slice(0, 2)).toEqual([0, 1]);
        expect(selected!.positions.slice(-4)).toEqual([56, 57, 58, 59]);
      } finally {
        session.destroy();
      }
    }
  });

  it('before the first eviction, every policy gives the full cache\'s logits', async () => {
    const gpu = await testGpu();
    const tokens = randomTokens(40, 12);
    const full = new Session(gpu, decoder, { contextLength: 64, prefillChunk: 16 });
    const want = await full.evaluate(tokens);
    full.destroy();
    for (const options of [...policies, { policy: 'tokenselect' } as const, { policy: 'tidaldecode' } as const, { policy: 'infllm' } as const]) {
      const session = new Session(gpu, decoder, { prefillChunk: 16, contextLength: 64, kv: { ...options, budget: 48 } });
      const got = await session.evaluate(tokens);
      expect((await session.kvStats())!.evictions).toBe(0);
      session.destroy();
      got.forEach((row, i) => expect(relativeError(row, want[i])).toBeLessThan(1e-5));
    }
  });

  it('a long greedy generation keeps the cache\'s memory flat and evicts as it goes', async () => {
    const gpu = await testGpu();
    const session = new Session(gpu, decoder, { prefillChunk: 16, kv: { policy: 'streaming-llm', budget: 32 } });
    try {
      const bytes = session.kvBytes;
      let token = await session.feedGreedy(tokenizer.encode('hello world the cat sat on', { addSpecial: true }));
      for (let i = 0; i < 200; i++) token = await session.feedGreedy([token]);
      expect(session.tokens.length).toBeGreaterThan(200);
      expect(session.length).toBeLessThanOrEqual(session.capacity);
      expect(session.capacity).toBe(48);
      expect(session.kvBytes).toBe(bytes);
      expect((await session.kvStats())!.evictions).toBe(Math.ceil((session.tokens.length - 48) / 16));
    } finally {
      session.destroy();
    }
  });

  for (const format of ['int8', 'int4'] as const) {
    it(`${format} KV under StreamingLLM and H2O: as close to the f32 cache under the same policy as without a policy`, async () => {
      const gpu = await testGpu();
      const tokens = randomTokens(48, 13);
      const run = async (kvFormat: 'f32' | typeof format, kv?: KvPolicyOptions) => {
        const session = new Session(gpu, decoder, { prefillChunk: 4, contextLength: 64, kvFormat, kv });
        try {
          return await session.evaluate(tokens);
        } finally {
          session.destroy();
        }
      };
      const compare = (exact: Float32Array[], quantized: Float32Array[]) => ({
        agree: exact.filter((row, i) => argmax(row) === argmax(quantized[i])).length / exact.length,
        worst: Math.max(...exact.map((row, i) => relativeError(quantized[i], row))),
      });
      // Quantization alone, on the full cache: what the policies should not make worse (the
      // sinks, placed again before every step, are rotated from an f32 copy, so rounding does not compound).
      const baseline = compare(await run('f32'), await run(format));
      for (const options of [policies[0], policies[2]]) {
        const { agree, worst } = compare(await run('f32', options), await run(format, options));
        console.log(`${options.policy}, ${format} KV vs f32 KV: top-1 agreement ${(agree * 100).toFixed(1)}%, worst |Δlogit| / range ${worst.toExponential(2)} (full cache: ${(baseline.agree * 100).toFixed(1)}%, ${baseline.worst.toExponential(2)})`);
        expect(agree).toBeGreaterThanOrEqual(baseline.agree - 0.1);
        expect(worst).toBeLessThan(2 * baseline.worst);
      }
    });
  }

  it('a compressed session rolls back only to nothing, and refuses speculative verification', async () => {
    const gpu = await testGpu();
    const session = new Session(gpu, decoder, { prefillChunk: 8, kv: { policy: 'h2o', budget: 16 } });
    try {
      await session.prefill(randomTokens(40, 14));
      expect(() => session.truncate(10)).toThrow(/only to 0/);
      expect(session.reusablePrefix(session.tokens.slice(0, 30))).toBe(0);
      expect(session.reusablePrefix([...session.tokens, 5])).toBe(40);
      await expect(session.verifyTree([5, 6], [-1, 0])).rejects.toThrow(/KV policy \(h2o\)/);
      session.truncate(0);
      expect(session.length).toBe(0);
      expect(await session.kvStats()).toMatchObject({ keptTokens: 0, evictions: 0 });
      // Usable again: the same prompt gives the same logits as a fresh session.
      const tokens = randomTokens(12, 15);
      const again = await session.evaluate(tokens);
      const fresh = new Session(gpu, decoder, { prefillChunk: 8, kv: { policy: 'h2o', budget: 16 } });
      const want = await fresh.evaluate(tokens);
      fresh.destroy();
      again.forEach((row, i) => expect(relativeError(row, want[i])).toBeLessThan(1e-6));
    } finally {
      session.destroy();
    }
  });
});
