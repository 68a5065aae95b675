// Speculative generation: each step verifies [root, ...draft tree] in one forward pass of the
// target (tree attention, positions prefix + depth), keeps a path of it, commits that path's K/V,
// and emits its tokens plus one token of the target's own. Greedy: the path is the longest one
// whose tokens are the target's own greedy choices, so the output is the target's greedy output.
// Sampling (temperature > 0): the path and the extra token come from the lossless acceptance
// rules, so the output is distributed as plain sampling's. Either way Session.verifyTree walks the
// tree and commits the path on the GPU, and only the accepted ids leave it.
import type { Decoder } from '../../models/decoder';
import type { Tokenizer } from '../../tokenizer';
import { EngineError } from '../errors';
import { DEFAULT_TEMPERATURE, type GenerateRequest, type GenerateResult, GeneratedText, checkedPrompt, generationStats } from '../generate';
import type { Session } from '../session';
import { AcceptanceStats, DraftSizer, TRIAL_RATIO, chooseDraftSize, costOf, verifyCost } from './sizing';
import { EMPTY_TREE, type Strategy } from './strategy';

export interface SpeculativeStats {
  strategy: string;
  /** Draft nodes per step the sizing settled on (maxNodes when fixed). */
  draftSize: number;
  /** Target forward passes after the prompt. */
  steps: number;
  drafted: number;
  accepted: number;
  /** Mean tokens emitted per verify step, the bonus token included (MAT). */
  tokensPerStep: number;
  /** Accepted over drafted. */
  acceptanceRate: number;
  /** Milliseconds this generation spent measuring verify costs for the sizing (0 when they were known). */
  sizingMs: number;
}

export interface SpeculativeResult extends GenerateResult {
  speculative: SpeculativeStats;
}

export interface SpeculativeOptions {
  /** Most draft nodes per step (default 16); also bounded by the session's prefill chunk. */
  maxNodes?: number;
  /**
   * 'auto' (A7): measure the verify cost against rows on this device and size each step's draft
   * for the most tokens per second, down to none (plain decoding) when drafts cannot pay.
   * 'fixed' (default): always up to maxNodes.
   */
  sizing?: 'auto' | 'fixed';
}

export async function generateSpeculative(
  model: Decoder, tokenizer: Tokenizer, session: Session, request: GenerateRequest, strategy: Strategy, options: SpeculativeOptions = {},
): Promise<SpeculativeResult> {
  const temperature = request.temperature ?? DEFAULT_TEMPERATURE;
  if (temperature > 0 && (request.repetitionPenalty ?? 1) !== 1) {
    // The penalty depends on each tree row's own history; lossless verification would need one per row.
    throw new EngineError('bad-request', 'speculative decoding with sampling does not support a repetition penalty; use plain decoding for it');
  }
  const seed = (request.seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
  const sampling = temperature > 0 ? { temperature, topK: request.topK, topP: request.topP, minP: request.minP, seed } : undefined;
  const { prompt, maxTokens } = checkedPrompt(model, tokenizer, session, request);
  // Pieces are marked as accepted drafts or the target's own token (the demo shows which is which).
  let drafting = false;
  const onToken = request.onToken;
  const output = new GeneratedText(tokenizer, { ...request, onToken: onToken && ((piece, id) => onToken(piece, id, drafting)) });
  const maxNodes = Math.min(options.maxNodes ?? 16, session.treeRows - 1);
  const base = session.length;

  const start = performance.now();
  let root: number;
  let finishReason = 'length' as GenerateResult['finishReason'];
  let firstTokenAt = 0;
  let more = true;
  if (!request.prefilled) {
    await session.prefill(prompt.slice(0, -1), request.signal);
    root = prompt.at(-1)!;
  } else if (request.signal?.aborted) {
    [root, more, finishReason] = [0, false, 'abort'];
  } else {
    // The session holds the whole prompt (image rows among it) and its last row's logits: the
    // first token comes from them, as in plain generation, and roots the first step. Its
    // uniforms must not be the first verify's (same cache length): another seed.
    root = await session.sampleNext(sampling ? { ...sampling, seed: (seed ^ 0x9e3779b9) >>> 0, step: session.length } : { temperature: 0, seed, step: 0 });
    firstTokenAt = performance.now();
    more = output.push(root) && output.tokens.length < maxTokens;
    if (output.stopped) finishReason = 'stop';
  }
  const stats: SpeculativeStats = { strategy: strategy.name, draftSize: maxNodes, steps: 0, drafted: 0, accepted: 0, tokensPerStep: 0, acceptanceRate: 0, sizingMs: 0 };
  const sizing = more && options.sizing === 'auto' ? await startSizing(model, session, strategy, maxNodes, stats) : undefined;

  while (more) {
    if (request.signal?.aborted) {
      finishReason = 'abort';
      break;
    }
    const stepStart = performance.now();
    const size = sizing ? await sizing.next(stats.steps) : maxNodes;
    stats.draftSize = size;
    const budget = Math.min(size, maxTokens - output.tokens.length - 1, session.capacity - session.length - 1);
    // The step picks this verify's uniforms: the cache length grows every step, so it never repeats.
    const stepSampling = sampling && { ...sampling, step: session.length };
    const tree = budget > 0 ? await strategy.propose(session.tokens, root, budget, stepSampling) : EMPTY_TREE;
    if (tree.parents.length > Math.max(0, budget)) throw new EngineError('internal', `${strategy.name} proposed ${tree.parents.length} nodes over a budget of ${budget}`);
    const parents = [-1, ...tree.parents.map((p) => p + 1)];
    const draft = 'tokens' in tree
      ? [root, ...tree.tokens]
      : { count: parents.length, fill: (pass: GPUComputePassEncoder, ids: GPUBuffer) => tree.fill(pass, ids, root), afterVerify: tree.afterVerify?.bind(tree) };
    let path: number[];
    let kept: number[];
    let bonus: number;
    let depth = 0;
    if (parents.length === 1) {
      // No draft: a plain decoding step (one forward, the next token read back), cheaper than a
      // one-row tree verification. Nothing was proposed, so the strategy has nothing to learn.
      path = [0];
      kept = [root];
      bonus = stepSampling ? (await session.feedSampled([root], stepSampling)).token : (await session.feedConfident([root])).token;
    } else {
      const draftProbs = 'tokens' in tree ? tree.draftProbs : undefined;
      ({ path, tokens: kept, next: bonus, depth } = await session.verifyTree(draft, parents, { sampling: stepSampling, draft: draftProbs, commit: true }));
      await strategy.observe?.({ parents, path, tokens: kept });
    }
    stats.steps++;
    stats.drafted += parents.length - 1;
    stats.accepted += path.length - 1;
    sizing?.record(stats.steps - 1, parents.length - 1, depth, path, performance.now() - stepStart);
    if (!firstTokenAt) firstTokenAt = performance.now();
    for (const [i, node] of [...kept.slice(1), bonus].entries()) {
      drafting = i < path.length - 1;
      if (!(more = output.push(node) && output.tokens.length < maxTokens)) break;
    }
    drafting = false;
    if (!more) {
      if (output.stopped) finishReason = 'stop';
      break;
    }
    root = bonus;
  }
  // Leave the cache as plain generation does: the prompt and every emitted token but the last.
  const out = output.tokens;
  session.truncate(Math.min(session.length, base + prompt.length + Math.max(0, out.length - 1)));
  output.flush();
  // A prefilled prompt's first token came from its own logits, not from a step.
  stats.tokensPerStep = stats.steps ? (out.length - (request.prefilled && out.length ? 1 : 0)) / stats.steps : 0;
  stats.acceptanceRate = stats.drafted ? stats.accepted / stats.drafted : 0;
  return {
    text: output.text, tokens: out, finishReason, speculative: stats,
    stats: generationStats(prompt.length, out.length, start, firstTokenAt, performance.now()),
  };
}

/**
 * Sizing for one generation: the device's verify cost curve (measured once per model and context
 * bucket), acceptance by depth (unless the strategy keeps its own), and the timing guard.
 */
async function startSizing(model: Decoder, session: Session, strategy: Strategy, maxNodes: number, stats: SpeculativeStats) {
  const timed = async () => {
    const start = performance.now();
    const cost = await verifyCost(model, session, maxNodes + 1);
    stats.sizingMs += performance.now() - start;
    return cost;
  };
  let measured = await timed();
  let measuredAt = Math.max(1, session.length);
  // Prior: acceptance halves with each level.
  const depths = new AcceptanceStats(maxNodes, (i) => 0.5 ** (i + 1));
  const draftCost = (n: number) => (strategy.draftMs?.(n) ?? 0) / measured.oneRowMs;
  const expected = (n: number) => strategy.expectedTokens?.(n) ?? depths.expected(n);
  const choose = (minRatio = 1) => chooseDraftSize(measured.cost, expected, maxNodes, draftCost, minRatio);
  // Probing while the model says no only where a 2-node draft and its verify cost little more than
  // a plain step, drafting included (a draft model's chain is not free even where rows are); on a
  // software adapter it never pays.
  const sizer = new DraftSizer(choose, measured.oneRowMs, () => costOf(measured.cost, 3) + draftCost(2) < 1.5, maxNodes, () => choose(TRIAL_RATIO));
  return {
    async next(step: number): Promise<number> {
      if (session.length >= 2 * measuredAt) {
        measured = await timed();
        measuredAt = session.length;
      }
      return sizer.next(step);
    },
    /** One step: the draft's nodes and depth (0: a plain step), the kept path, its wall time. */
    record(step: number, nodes: number, depth: number, path: readonly number[], ms: number): void {
      // Per depth: drafted when the tree reached it, accepted when the path did.
      depths.record(Array.from({ length: depth }, (_, d) => d), path.slice(1).map((_, d) => d));
      sizer.record(step, nodes, path.length, ms);
    },
  };
}
