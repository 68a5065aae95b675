// Greedy speculative decoding is lossless: every strategy gives plain greedy decoding's tokens
// (a divergence is allowed only at a near-tie of the target's logits, where the verify pass's
// M-row matmuls and the decode's 1-row ones may round differently), over long generations that
// cross KV pages; a committed path leaves the cache as a fresh prefill of the same text would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/engine/generate';
import { Session } from '../src/engine/session';
import { DraftModel } from '../src/engine/speculative/draft-model';
import { LayerSkip, skipCandidates } from '../src/engine/speculative/layer-skip';
import { generateSpeculative } from '../src/engine/speculative/generate';
import { PromptLookup } from '../src/engine/speculative/prompt-lookup';
import { AcceptanceStats, DraftSizer, FIRST_BACKOFF, JUDGE_AFTER, SIZES, TRIAL_RATIO, chooseDraftSize } from '../src/engine/speculative/sizing';
import { type Strategy, chain } from '../src/engine/speculative/strategy';
import { readGGUF } from '../src/formats/gguf-reader';
import { Decoder } from '../src/models/decoder';
import { Tokenizer } from '../src/tokenizer';
import { argmax, range, relativeDiff } from './logits';
import { llamaFixture } from './oracle/llama-fixture';
import { testGpu } from './util';

const shape = { nEmbd: 128, nHead: 4, nHeadKv: 2, nLayer: 2, nFf: 256, contextLength: 512 };
const NEAR_TIE = 1e-3;

describe('greedy speculative decoding', () => {
  let target: Decoder;
  let other: Decoder;
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    const gpu = await testGpu();
    const file = await readGGUF(llamaFixture({ ...shape, seed: 21 }));
    target = await Decoder.load(gpu, file);
    other = await Decoder.load(gpu, await readGGUF(llamaFixture({ ...shape, seed: 22 })));
    tokenizer = Tokenizer.fromGGUFMetadata(file);
  });
  afterAll(() => {
    target?.destroy();
    other?.destroy();
  });

  const prompt = 'the cat sat on the mat and the cat sat on the mat and the cat';

  async function plain(maxTokens: number): Promise<number[]> {
    const gpu = await testGpu();
    const session = new Session(gpu, target, { contextLength: 512, prefillChunk: 32 });
    try {
      return (await generate(target, tokenizer, session, { prompt, maxTokens, temperature: 0 })).tokens;
    } finally {
      session.destroy();
    }
  }

  /** Where two greedy runs differ, the target's top two logits there must be a near-tie. */
  async function expectSameOrNearTie(got: number[], want: number[]): Promise<void> {
    const at = got.findIndex((t, i) => t !== want[i]);
    if (at < 0 && got.length === want.length) return;
    const gpu = await testGpu();
    const session = new Session(gpu, target, { contextLength: 512, prefillChunk: 32 });
    const logits = (await session.evaluate([...tokenizer.encode(prompt, { addSpecial: true }), ...want.slice(0, at)])).at(-1)!;
    session.destroy();
    const gap = (logits[argmax(logits)] - logits[got[at]]) / range(logits);
    console.log(`speculative output differs from plain at token ${at}: gap ${gap.toExponential(2)} of the range`);
    expect(gap).toBeLessThan(NEAR_TIE);
  }

  async function speculative(strategy: Strategy, maxTokens: number, sizing: 'auto' | 'fixed' = 'fixed', onToken?: (piece: string, id: number, drafted?: boolean) => void) {
    const gpu = await testGpu();
    const session = new Session(gpu, target, { contextLength: 512, prefillChunk: 32 });
    try {
      const result = await generateSpeculative(target, tokenizer, session, { prompt, maxTokens, temperature: 0, onToken }, strategy, { sizing });
      return { result, session };
    } catch (error) {
      session.destroy();
      throw error;
    }
  }

  it('auto sizing turns off a strategy whose drafts never pay, within a few steps, and the output stays plain', async () => {
    // A drafter that claims absurd acceptance (so the cost model says yes on any adapter), takes
    // 40 ms per draft and proposes tokens the target never picks: only the timing guard can catch it.
    const slowWrong: Strategy = {
      name: 'slow-wrong',
      async propose(_context, root, budget) {
        await new Promise((resolve) => setTimeout(resolve, 40));
        return chain(Array.from({ length: Math.min(2, budget) }, (_, i) => (root + 7 + i) % 256));
      },
      expectedTokens: (n) => 1 + 50 * n,
    };
    const want = await plain(48);
    const { result, session } = await speculative(slowWrong, 48, 'auto');
    session.destroy();
    await expectSameOrNearTie(result.tokens, want);
    const speculativeSteps = result.speculative.drafted / 2;
    console.log(`slow-wrong drafter, auto sizing: ${speculativeSteps} speculative steps of ${result.speculative.steps}, acceptance ${result.speculative.acceptanceRate}`);
    // Judged after JUDGE_AFTER steps, off for FIRST_BACKOFF, judged again, off for twice as long.
    expect(speculativeSteps).toBeGreaterThan(0); // the cost model said yes: the guard is under test
    expect(speculativeSteps).toBeLessThanOrEqual(2 * JUDGE_AFTER);
    expect(result.speculative.steps).toBeGreaterThan(2 * JUDGE_AFTER + FIRST_BACKOFF);
  });

  it('the target drafting for itself: every draft accepted, the same tokens, and the cache equals a fresh prefill', async () => {
    const gpu = await testGpu();
    const want = await plain(120);
    const strategy = new DraftModel(gpu, target, target, { draftLength: 4 });
    const pieces: Array<{ piece: string; drafted?: boolean }> = [];
    const submissions = gpu.submissions;
    const { result, session } = await speculative(strategy, 120, 'fixed', (piece, _id, drafted) => pieces.push({ piece, drafted }));
    try {
      await expectSameOrNearTie(result.tokens, want);
      // The drafts are chained on the GPU inside the verify submission: however long the chain, a
      // step is one forward submission and two readbacks that wait together (a plain step: one
      // and one). The prompt's prefill and the first, timed chain add a few.
      expect(gpu.submissions - submissions).toBeLessThanOrEqual(3 * result.speculative.steps + 6);
      // Streamed pieces say which came from accepted drafts: here about four in five.
      expect(pieces.map((p) => p.piece).join('')).toBe(result.text);
      const drafted = pieces.filter((p) => p.drafted).length;
      expect(drafted).toBeGreaterThan(pieces.length / 2);
      expect(drafted).toBeLessThan(pieces.length);
      expect(result.speculative.acceptanceRate).toBeGreaterThan(0.95);
      expect(result.speculative.tokensPerStep).toBeGreaterThan(4);
      // The next token's logits from the speculative session's cache equal a fresh prefill's.
      const text = [...tokenizer.encode(prompt, { addSpecial: true }), ...result.tokens];
      expect(session.tokens).toEqual(text.slice(0, -1));
      const next = (await session.evaluate([text.at(-1)!]))[0];
      const fresh = new Session(gpu, target, { contextLength: 512, prefillChunk: 32 });
      const reference = (await fresh.evaluate(text)).at(-1)!;
      fresh.destroy();
      expect(relativeDiff(next, reference)).toBeLessThan(1e-4);
    } finally {
      session.destroy();
      strategy.destroy();
    }
  });

  it('a different draft model and prompt lookup give the plain greedy tokens', async () => {
    const gpu = await testGpu();
    const want = await plain(48);
    for (const [strategy, sizing] of [[new DraftModel(gpu, other, target, { draftLength: 3 }), 'fixed'], [new DraftModel(gpu, other, target, { draftLength: 3, branching: 3 }), 'fixed'], [new PromptLookup(), 'fixed'], [new PromptLookup(), 'auto']] as const) {
      const { result, session } = await speculative(strategy, 48, sizing);
      session.destroy();
      (strategy as Strategy).destroy?.();
      console.log(`${strategy.name} (${sizing} sizing, ${result.speculative.draftSize} nodes at the end): ${result.speculative.tokensPerStep.toFixed(2)} tokens/step, acceptance ${(result.speculative.acceptanceRate * 100).toFixed(0)}%`);
      await expectSameOrNearTie(result.tokens, want);
    }
  }, 900_000);

  it('layer-skip self-speculation: calibration picks a measured skip set, and the tokens are plain greedy\'s', async () => {
    const gpu = await testGpu();
    const deep = await Decoder.load(gpu, await readGGUF(llamaFixture({ ...shape, nLayer: 5, seed: 23 })));
    const session = new Session(gpu, deep, { contextLength: 512, prefillChunk: 32 });
    try {
      const plainSession = new Session(gpu, deep, { contextLength: 512, prefillChunk: 32 });
      const want = (await generate(deep, tokenizer, plainSession, { prompt, maxTokens: 40, temperature: 0 })).tokens;
      plainSession.destroy();
      const strategy = new LayerSkip(session, deep.config.layers, { draftLength: 3 });
      const candidates = skipCandidates(deep.config.layers);
      expect(candidates.every((c) => c.every((l) => l > 0 && l < deep.config.layers - 1))).toBe(true);
      const { skip, scores } = await strategy.calibrate(tokenizer.encode(prompt, { addSpecial: true }), candidates, 4);
      expect(session.length).toBe(0);
      expect(scores.map((s) => s.skip)).toContainEqual(skip);
      const submissions = gpu.submissions;
      const result = await generateSpeculative(deep, tokenizer, session, { prompt, maxTokens: 40, temperature: 0 }, strategy);
      expect(result.tokens).toEqual(want);
      // Drafting rides in the verify submission after the first step (see the draft model's test).
      expect(gpu.submissions - submissions).toBeLessThanOrEqual(3 * result.speculative.steps + 6);
    } finally {
      session.destroy();
      deep.destroy();
    }
  }, 300_000);

  it('confidence early stop (A8, rules 1 and 2): a higher threshold drafts less, and the tokens stay plain greedy\'s', async () => {
    const gpu = await testGpu();
    const want = await plain(24);
    const drafted: number[] = [];
    for (const minConfidence of [0, 0.5, 1]) {
      const strategy = new DraftModel(gpu, target, target, { draftLength: 4, minConfidence });
      const { result, session } = await speculative(strategy, 24);
      session.destroy();
      strategy.destroy();
      await expectSameOrNearTie(result.tokens, want);
      drafted.push(result.speculative.drafted);
    }
    console.log(`drafted tokens at min confidence 0, 0.5, 1: ${drafted.join(', ')}`);
    expect(drafted[0]).toBeGreaterThan(0);
    expect(drafted[1]).toBeLessThanOrEqual(drafted[0]);
    // Probability 1 is never reached by a softmax of distinct logits: nothing is drafted.
    expect(drafted[2]).toBe(0);
    // Rule 2 on a DySpec tree: a path-value threshold grows smaller trees, with the same tokens.
    const treeDrafted: number[] = [];
    for (const minPathValue of [0, 0.3]) {
      const strategy = new DraftModel(gpu, other, target, { draftLength: 3, branching: 3, minPathValue });
      const { result, session } = await speculative(strategy, 24);
      session.destroy();
      strategy.destroy();
      await expectSameOrNearTie(result.tokens, want);
      treeDrafted.push(result.speculative.drafted / result.speculative.steps);
    }
    console.log(`tree nodes per step at min path value 0, 0.3: ${treeDrafted.map((n) => n.toFixed(1)).join(', ')}`);
    expect(treeDrafted[1]).toBeLessThan(treeDrafted[0]);
    const session = new Session(gpu, target, { contextLength: 512, prefillChunk: 32 });
    const skipping = new LayerSkip(session, target.config.layers, { minConfidence: 1 });
    expect(await skipping.propose([], 4, 3)).toEqual({ tokens: [], parents: [] });
    // Drafting halts at the doubted draft (Kangaroo): one forward (a submission and a read) per
    // draft made, none after it, and the drafts leave the cache; the chain is the one drafted
    // without the stop.
    await session.prefill(tokenizer.encode(prompt, { addSpecial: true }));
    const length = session.length;
    const chained = await session.greedyChain([4], 4);
    for (const [minConfidence, drafts] of [[1, 0], [Number.MIN_VALUE, 4]]) {
      const submissions = gpu.submissions;
      const got = await session.greedyChain([4], 4, { minConfidence });
      expect(got).toEqual(chained.slice(0, drafts));
      expect(gpu.submissions - submissions).toBe(2 * Math.min(4, drafts + 1));
      expect(session.length).toBe(length);
    }
    session.destroy();
  }, 300_000);

  it('branching trees: wrong branches are dropped, the right one kept', async () => {
    const want = await plain(60);
    // Drafts the plain output's next two tokens in the second branch, behind a wrong first branch.
    const oracle: Strategy = {
      name: 'tree-oracle',
      propose(context, _root, budget) {
        const done = context.length + 1 - tokenizer.encode(prompt, { addSpecial: true }).length;
        const [a, b] = [want[done] ?? 0, want[done + 1] ?? 0];
        // A prefix of a DFS preorder is still a tree: cut to the budget near the end.
        return { tokens: [(a + 1) % 300, 4, a, b, (b + 7) % 300].slice(0, budget), parents: [-1, 0, -1, 2, 2].slice(0, budget) };
      },
    };
    const { result, session } = await speculative(oracle, 60);
    session.destroy();
    await expectSameOrNearTie(result.tokens, want);
    expect(result.speculative.tokensPerStep).toBeGreaterThan(2.5);
    expect(chain([1, 2]).parents).toEqual([-1, 0]);
  });
});

describe('hardware-aware sizing', () => {
  const costs = (f: (rows: number) => number) => new Map(SIZES.map((n) => [n, f(n) / f(1)]));

  it('keeps plain decoding where every row costs as much as the first (a software adapter)', () => {
    expect(chooseDraftSize(costs((rows) => rows), (n) => 1 + 0.5 * Math.min(n, 3), 16)).toBe(0);
  });

  it('grows the tree where extra rows are nearly free (a GPU at batch 1), until acceptance stops paying', () => {
    const n = chooseDraftSize(costs((rows) => 1 + 0.01 * rows), (k) => 1 + 0.9 * (1 - 0.8 ** k) / 0.2, 80);
    expect(n).toBeGreaterThan(8);
    expect(n).toBeLessThan(80);
  });

  it('the timing guard turns speculation off when it delivers fewer tokens per millisecond than plain steps, longer each time', () => {
    const sizer = new DraftSizer(() => 4, 10, () => false, 4);
    const sizes: number[] = [];
    for (let step = 0; step < 80; step++) {
      const size = sizer.next(step);
      sizes.push(size);
      // Speculative steps take 30 ms for 2 tokens (15 ms each); plain ones 10 ms for 1.
      sizer.record(step, size, size ? 2 : 1, size ? 30 : 10);
    }
    const on = sizes.map((s) => s > 0);
    expect(on.slice(0, JUDGE_AFTER).every(Boolean)).toBe(true);
    expect(on.slice(JUDGE_AFTER, JUDGE_AFTER + FIRST_BACKOFF).some(Boolean)).toBe(false);
    const second = JUDGE_AFTER + FIRST_BACKOFF;
    expect(on.slice(second, second + JUDGE_AFTER).every(Boolean)).toBe(true);
    expect(on.slice(second + JUDGE_AFTER, second + JUDGE_AFTER + 2 * FIRST_BACKOFF).some(Boolean)).toBe(false);
  });

  it('the timing guard leaves speculation on while it pays', () => {
    const sizer = new DraftSizer(() => 4, 10, () => false, 4);
    for (let step = 0; step < 40; step++) {
      expect(sizer.next(step)).toBe(4);
      sizer.record(step, 4, 3, 12); // 4 ms per token against 10
    }
  });

  it('chooses again right after the first speculative step, once the drafts\' cost is known', () => {
    // The drafter's cost is unknown (0) until it has drafted once; then it is too dear.
    let draftMs = 0;
    const sizer = new DraftSizer(() => (draftMs > 0 ? 0 : 4), 10, () => false, 4);
    expect(sizer.next(0)).toBe(4);
    draftMs = 50;
    sizer.record(0, 4, 2, 80);
    expect(sizer.next(1)).toBe(0);
    expect(sizer.next(2)).toBe(0);
  });

  it('probes with 2 nodes every 16th step while switched off, only as long as the probe is cheap', () => {
    let cheap = true;
    const sizer = new DraftSizer(() => 0, 10, () => cheap, 4);
    const sizes = Array.from({ length: 16 }, (_, step) => sizer.next(step));
    expect(sizes.filter((s) => s > 0)).toEqual([2]);
    expect(sizes[15]).toBe(2);
    cheap = false; // the drafter turned out dear: no more probes
    expect(Array.from({ length: 32 }, (_, i) => sizer.next(16 + i)).every((s) => s === 0)).toBe(true);
  });

  it('offers a close call for a trial: a draft predicted within TRIAL_RATIO of plain decoding, though not faster', () => {
    const cost = new Map([[1, 1], [2, 1.6], [4, 3.2]]);
    const expected = (n: number) => 1 + 0.5 * Math.min(n, 1); // 1.5 tokens for 1.6 steps' time: 0.94 of plain
    expect(chooseDraftSize(cost, expected, 3)).toBe(0);
    expect(chooseDraftSize(cost, expected, 3, () => 0, TRIAL_RATIO)).toBe(1);
    expect(chooseDraftSize(new Map([[1, 1], [2, 2]]), expected, 1, () => 0, TRIAL_RATIO)).toBe(0); // 0.75: no trial
  });

  it('tries a close call the cost model declined, keeps it while the timing says it wins, and backs off when it loses', () => {
    // Plain steps take 10 ms; the one-node trial first delivers 2 tokens in 15 ms (wins), then 1 (loses).
    const sizer = new DraftSizer(() => 0, 10, () => false, 4, () => 1);
    const sizes: number[] = [];
    for (let step = 0; step < 100; step++) {
      const size = sizer.next(step);
      sizes.push(size);
      sizer.record(step, size, size ? (step < 40 ? 2 : 1) : 1, size ? 15 : 10);
    }
    expect(sizes.slice(0, 40).every((s) => s === 1)).toBe(true);
    // Judged at step 43 (the window of steps 40-43 lost): off for FIRST_BACKOFF, tried again, off for twice as long.
    const off = 40 + JUDGE_AFTER;
    expect(sizes.slice(off, off + FIRST_BACKOFF).some((s) => s > 0)).toBe(false);
    const again = off + FIRST_BACKOFF;
    expect(sizes.slice(again, again + JUDGE_AFTER).every((s) => s === 1)).toBe(true);
    expect(sizes.slice(again + JUDGE_AFTER, again + JUDGE_AFTER + 2 * FIRST_BACKOFF).some((s) => s > 0)).toBe(false);
  });

  it('estimates each node\'s acceptance over the steps that drafted it: plain steps and smaller trees do not wear it down', () => {
    const stats = new AcceptanceStats(3, () => 0.5);
    // 20 one-node steps, 15 accepted, then 200 steps with speculation off.
    for (let step = 0; step < 20; step++) stats.record([0], step < 15 ? [0] : []);
    for (let step = 0; step < 200; step++) stats.record([], []);
    expect(stats.expected(1)).toBeCloseTo(1 + (15 + 2) / (20 + 4), 9);
    // Nodes never drafted keep their prior.
    expect(stats.expected(3) - stats.expected(1)).toBeCloseTo(1, 9);
  });

  it('counts a draft model\'s own time against it', () => {
    const flat = costs((rows) => 1 + 0.01 * rows);
    const expected = (n: number) => 1 + 0.6 * Math.min(n, 4);
    expect(chooseDraftSize(flat, expected, 4)).toBe(4);
    expect(chooseDraftSize(flat, expected, 4, (n) => n * 2)).toBe(0);
  });
});

describe('prompt lookup', () => {
  it('proposes what followed the latest match of the last tokens, and never an image row', () => {
    const lookup = new PromptLookup({ draftLength: 4 });
    expect(lookup.propose([1, 5, 6, 7, 8, 9, 2, 5, 6], 7, 4)).toEqual(chain([8, 9, 2, 5]));
    // Image rows (negative ids) after the match: the draft stops before them.
    expect(lookup.propose([1, 5, 6, 7, 8, -1, -1, 2, 5, 6], 7, 4)).toEqual(chain([8]));
    // The latest match is followed straight by an image: the one before it is used.
    expect(lookup.propose([7, 9, 9, 7, -1, -1], 7, 4)).toEqual(chain([9, 9, 7]));
    expect(lookup.propose([4, -1, -1], 4, 4).parents).toEqual([]);
  });
});
