// Speculative sampling is lossless end to end: the tokens speculative generation emits are
// distributed as plain sampling's. Each configuration draws the first two tokens after a prompt
// many times (seeds 0..N-1) and compares the counts of every first token and every pair with
// the exact distribution of plain sampling (softmax(logits / T) of the target, computed on the
// CPU from the model's logits), by a chi-square goodness-of-fit test at the 0.1% level.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/engine/session';
import { DraftModel } from '../src/engine/speculative/draft-model';
import { generateSpeculative } from '../src/engine/speculative/generate';
import type { DraftTree, Strategy } from '../src/engine/speculative/strategy';
import { readGGUF } from '../src/formats/gguf-reader';
import { Decoder } from '../src/models/decoder';
import { Tokenizer } from '../src/tokenizer';
import { llamaFixture } from './oracle/llama-fixture';
import { testGpu } from './util';
import { chiSquare, critical } from './stats';

// A small random model, and a low temperature that concentrates its distributions on a few
// tokens, so that a few hundred draws measure them well. (Top-k/top-p are the sampler's own
// business, tested with it; here they would only cost time.)
const shape = { nEmbd: 64, nHead: 2, nHeadKv: 1, nLayer: 1, nFf: 128, contextLength: 256, seed: 31 };
const TEMPERATURE = 0.4;
const DRAWS = 150;

function softmax(logits: Float32Array, temperature: number): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const out = Float64Array.from(logits, (v) => Math.exp((v - max) / temperature));
  const sum = out.reduce((a, b) => a + b, 0);
  return out.map((v) => v / sum);
}

describe('speculative sampling', () => {
  let target: Decoder;
  let tokenizer: Tokenizer;
  let prompt: number[];
  /** Exact plain-sampling probabilities of the first token and of each first pair. */
  const first = new Map<string, number>();
  const pairs = new Map<string, number>();
  beforeAll(async () => {
    const gpu = await testGpu();
    const file = await readGGUF(llamaFixture(shape));
    target = await Decoder.load(gpu, file);
    tokenizer = Tokenizer.fromGGUFMetadata(file);
    prompt = tokenizer.encode('the cat sat on the mat and the cat', { addSpecial: true });
    const session = new Session(gpu, target, { contextLength: 256, prefillChunk: 32 });
    try {
      const p1 = softmax((await session.evaluate(prompt)).at(-1)!, TEMPERATURE);
      for (let t1 = 0; t1 < p1.length; t1++) {
        if (p1[t1] < 1e-4) continue;
        first.set(String(t1), p1[t1]);
        session.truncate(prompt.length);
        const p2 = softmax((await session.evaluate([t1]))[0], TEMPERATURE);
        p2.forEach((p, t2) => p * p1[t1] > 1e-6 && pairs.set(`${t1},${t2}`, p * p1[t1]));
      }
    } finally {
      session.destroy();
    }
    // The test measures something only if the distributions are neither flat nor a point mass.
    expect(first.size).toBeGreaterThan(1);
    expect(Math.max(...first.values())).toBeLessThan(0.95);
  }, 600_000);
  afterAll(() => target?.destroy());

  async function expectPlainDistribution(strategy: Strategy, draws = DRAWS): Promise<{ acceptanceRate: number }> {
    const gpu = await testGpu();
    const session = new Session(gpu, target, { contextLength: 256, prefillChunk: 32 });
    const counts = [new Map<string, number>(), new Map<string, number>()];
    let accepted = 0;
    let drafted = 0;
    try {
      await session.prefill(prompt.slice(0, -1));
      for (let seed = 0; seed < draws; seed++) {
        session.truncate(prompt.length - 1);
        const result = await generateSpeculative(target, tokenizer, session, { tokens: prompt.slice(-1), maxTokens: 4, temperature: TEMPERATURE, seed }, strategy, { sizing: 'fixed', maxNodes: 3 });
        // Four tokens, so that the first step's budget is the whole tree (3 nodes); the first two are counted.
        const [t1, t2] = result.tokens;
        for (const [i, key] of [String(t1), `${t1},${t2}`].entries()) counts[i].set(key, (counts[i].get(key) ?? 0) + 1);
        accepted += result.speculative.accepted;
        drafted += result.speculative.drafted;
      }
    } finally {
      session.destroy();
    }
    for (const [i, [what, exact]] of ([['first token', first], ['first pair', pairs]] as const).entries()) {
      const { statistic, df } = chiSquare(counts[i], exact, draws);
      console.log(`${strategy.name}, ${what}: chi-square ${statistic.toFixed(1)} with ${df} df (critical ${critical(df).toFixed(1)}); acceptance ${(accepted / drafted).toFixed(2)}`);
      expect(df).toBeGreaterThan(0);
      expect(statistic, `${strategy.name}, ${what}`).toBeLessThan(critical(df));
    }
    return { acceptanceRate: drafted ? accepted / drafted : 0 };
  }

  it('drafts sampled from q (a draft model at another temperature): q-based acceptance gives the target\'s distribution', async () => {
    const gpu = await testGpu();
    // The target drafting for itself at a higher temperature: q is flatter than p, so drafts are
    // sometimes rejected and the residual is drawn from. Accepting every draft would give q's
    // distribution, which this test tells apart from p's.
    // (A tiny A8 threshold brings the chain's drafts back to the CPU, where this test needs them.)
    const drafter = new DraftModel(gpu, target, target, { draftLength: 2, minConfidence: Number.MIN_VALUE });
    const strategy: Strategy = {
      name: 'draft model at T = 1.2',
      propose: (context, root, budget, sampling) => drafter.propose(context, root, budget, sampling && { ...sampling, temperature: 1.2 }),
    };
    try {
      const { acceptanceRate } = await expectPlainDistribution(strategy);
      expect(acceptanceRate).toBeGreaterThan(0.1);
      expect(acceptanceRate).toBeLessThan(0.95);
    } finally {
      drafter.destroy();
    }
  }, 600_000);

  it('a DySpec draft tree whose siblings are drawn from q without replacement (RSD) gives the target\'s distribution', async () => {
    const gpu = await testGpu();
    // Two siblings under the root (Gumbel-top-2 from q at T = 1.2) and one grandchild: the walk
    // rejects the first sibling, tries the second against the residual, then draws from what is left.
    const drafter = new DraftModel(gpu, target, target, { draftLength: 2, branching: 2 });
    let siblings = 0;
    const strategy: Strategy = {
      name: 'draft tree at T = 1.2',
      async propose(context, root, budget, sampling) {
        const tree = await drafter.propose(context, root, budget, sampling && { ...sampling, temperature: 1.2 });
        siblings += tree.parents.filter((p) => p === -1).length > 1 ? 1 : 0;
        return tree;
      },
    };
    try {
      const { acceptanceRate } = await expectPlainDistribution(strategy);
      expect(siblings).toBeGreaterThan(DRAWS / 2); // the trees did branch at the root
      expect(acceptanceRate).toBeGreaterThan(0.1);
      expect(acceptanceRate).toBeLessThan(0.95);
    } finally {
      drafter.destroy();
    }
  }, 600_000);

  it('A8 with sampling: nodes where the drafter is unsure get no children, and the output keeps the target\'s distribution', async () => {
    const gpu = await testGpu();
    // The rule reads each node's top probability, never the drawn token's: dropping a draw by its
    // own q (what greedy drafting does) gave a chi-square of 30 here (critical 14.1) at 400 draws.
    const drafter = new DraftModel(gpu, target, target, { draftLength: 2, minConfidence: 0.2 });
    const sizes = new Set<number>();
    const strategy: Strategy = {
      name: 'draft model, A8 at 0.2',
      async propose(context, root, budget, sampling) {
        const tree = await drafter.propose(context, root, budget, sampling && { ...sampling, temperature: 1.2 });
        if (budget >= 2) sizes.add(tree.parents.length);
        return tree;
      },
    };
    try {
      await expectPlainDistribution(strategy, 400);
      expect(sizes.has(2)).toBe(true); // confident nodes were expanded...
      expect([...sizes].some((n) => n < 2)).toBe(true); // ...and doubted ones were not
    } finally {
      drafter.destroy();
    }
  }, 600_000);

  it('a DySpec tree whose nodes compete for the budget (and a path-value threshold, A8 rule 2) gives the target\'s distribution', async () => {
    const gpu = await testGpu();
    // Two siblings drawn under the root join; then their first children compete for the last
    // node, by value. With sampling a draw's value is known before the draw (its parent's path
    // probability times the parent's top probability, capped by the mass earlier draws left), not
    // its own q: choosing by q would prefer likely tokens and bias the walk.
    const drafter = new DraftModel(gpu, target, target, { draftLength: 2, branching: 2, minPathValue: 0.02 });
    const shapes = new Set<string>();
    const strategy: Strategy = {
      name: 'DySpec tree with selection',
      async propose(context, root, budget, sampling) {
        const tree = await drafter.propose(context, root, budget, sampling && { ...sampling, temperature: 1.2 });
        if (budget >= 3) shapes.add(tree.parents.join());
        return tree;
      },
    };
    try {
      await expectPlainDistribution(strategy, 300);
      expect(shapes.size).toBeGreaterThan(1); // the selection chose different shapes
    } finally {
      drafter.destroy();
    }
  }, 600_000);

  it('steps without a draft (plain decoding steps inside the speculative loop) give the target\'s distribution', async () => {
    const strategy: Strategy = { name: 'never drafts', propose: () => ({ tokens: [], parents: [] }) };
    await expectPlainDistribution(strategy);
  }, 600_000);

  it('deterministic drafts in a branching tree (point-mass acceptance) give the target\'s distribution', async () => {
    const gpu = await testGpu();
    // The target's greedy chain, and the second most likely first token as a sibling.
    // (A tiny A8 threshold brings the chain's drafts back to the CPU, where this test needs them.)
    const drafter = new DraftModel(gpu, target, target, { draftLength: 2, minConfidence: Number.MIN_VALUE });
    const second = [...first.entries()].sort((a, b) => b[1] - a[1])[1][0];
    const strategy: Strategy = {
      name: 'branching greedy tree',
      async propose(context, root, budget) {
        const chain = await drafter.propose(context, root, Math.min(2, budget)) as DraftTree;
        if (budget < 3 || chain.tokens.length < 2) return chain;
        return { tokens: [...chain.tokens, Number(second)], parents: [-1, 0, -1] };
      },
    };
    try {
      const { acceptanceRate } = await expectPlainDistribution(strategy);
      expect(acceptanceRate).toBeGreaterThan(0.1);
    } finally {
      drafter.destroy();
    }
  }, 600_000);
});
