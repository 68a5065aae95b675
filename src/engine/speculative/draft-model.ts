// Draft-model speculation (A1, A3, A4): a small model with the same vocabulary grows a draft tree
// by DySpec's greedy expansion. Each expansion runs the draft over the tree so far (one forward,
// tree attention) and gives every node added last time its `branching` best children; candidates
// wait ordered by value (greedy: the path probability, the product of the drafter's q along the
// path; sampling: the last factor replaced, see propose), and the best are added, `width` per
// expansion, until the budget, the depth limit or the value threshold (A8 rule 2) is reached.
// With branching 1 and width 1 the tree is a chain (A1).
// A greedy chain runs on the GPU without round trips: the drafter's forwards, each fed the argmax
// of the one before, are recorded into the target's verify submission, so a speculative step
// costs one round trip, as a plain decoding step does (the first chain runs on its own, timed,
// for the sizing). Greedy trees draft the drafter's likeliest children. Sampling draws each node's children
// from the drafter's own sampling distribution q without replacement (Gumbel-top-k, its own
// uniforms) and hands the q rows to the verify step, which walks siblings with recursive rejection
// sampling (A4), so the output is distributed as plain sampling's. The draft keeps its own KV
// cache, rolled back to the committed text before each proposal.
import type { Gpu } from '../../gpu';
import { copy } from '../../kernels/elementwise';
import type { Decoder } from '../../models/decoder';
import { EngineError } from '../errors';
import { type DraftProbs, Session, type TreeSampling } from '../session';
import { type DraftTree, EMPTY_TREE, type GpuDraftTree, type Strategy, chain, chainForwards } from './strategy';

export interface DraftModelOptions {
  /** Deepest draft (tokens along one path). Default 4. */
  draftLength?: number;
  /**
   * Children considered per expanded node (1: a chain). Default 1. With more, a budget of n nodes
   * is spent ceil(n / draftLength) nodes per expansion, the likeliest paths first.
   */
  branching?: number;
  /**
   * A8: greedy, a draft whose probability under the drafter is below this is not proposed (nor
   * the siblings after it); sampling, a node whose top probability is below this gets no children.
   * Default 0.
   */
  minConfidence?: number;
  /** A8 rule 2 (A3 step 4): a tree node is not added when its path value is below this. Default 0. */
  minPathValue?: number;
  contextLength?: number;
}

/**
 * What a draft model's drafting cost on this device, kept per draft model across requests (each
 * request makes its own DraftModel), so that the sizing prices drafts right from a request's
 * first step.
 */
const timings = new WeakMap<Decoder, DraftTiming>();

interface DraftTiming {
  /** Mean wall time of one expansion (a draft forward over the tree), over `expansions`. */
  msPerExpansion: number;
  expansions: number;
  /** A greedy chain's wall time per draft, measured on its first chain (0: not yet). */
  msPerChained: number;
}

interface Node {
  token: number;
  parent: number;
  depth: number;
  /** Product of the drafter's q along the path from the root. */
  pathProb: number;
  /** What it competed with other candidates by: pathProb, or with sampling its parent's times a bound on its own q (see propose). */
  value: number;
}

export class DraftModel implements Strategy {
  readonly name = 'draft-model';
  private readonly session: Session;
  private readonly draftLength: number;
  private readonly branching: number;
  private readonly minConfidence: number;
  private readonly minPathValue: number;
  /** Drafting costs for sizing, shared by every DraftModel on this draft model. */
  private readonly timing: DraftTiming;
  /** q rows for sampled drafts (row i: what node i's children were drawn from), made on first use. */
  private probs?: DraftProbs;
  /** q rows by node creation order, copied into `probs` in the tree's final order. */
  private staging?: DraftProbs;

  constructor(private readonly gpu: Gpu, readonly draft: Decoder, target: Decoder, options: DraftModelOptions = {}) {
    if (draft.config.vocabSize !== target.config.vocabSize) {
      throw new EngineError('bad-request', `the draft model's vocabulary (${draft.config.vocabSize}) differs from the target's (${target.config.vocabSize})`);
    }
    this.draftLength = options.draftLength ?? 4;
    this.branching = options.branching ?? 1;
    if (!Number.isInteger(this.branching) || this.branching < 1 || this.branching > 16) throw new EngineError('bad-request', `branching must be 1..16, got ${options.branching}`);
    this.minConfidence = options.minConfidence ?? 0;
    this.minPathValue = options.minPathValue ?? 0;
    this.session = new Session(gpu, draft, { contextLength: options.contextLength ?? Math.min(draft.config.contextLength, 2048) });
    let timing = timings.get(draft);
    if (!timing) timings.set(draft, (timing = { msPerExpansion: 0, expansions: 0, msPerChained: 0 }));
    this.timing = timing;
  }

  async propose(targetContext: readonly number[], root: number, budget: number, sampling?: TreeSampling): Promise<DraftTree | GpuDraftTree> {
    // The draft model reads text only: image rows (negative ids) in the target's cache are left
    // out. Its drafts after an image are guesses from the text, never wrong ones: the target verifies.
    const context = targetContext.some((id) => id < 0) ? targetContext.filter((id) => id >= 0) : targetContext;
    const want = Math.min(budget, this.session.capacity - context.length - 1, this.session.treeRows - 1);
    if (want < 1) return EMPTY_TREE;
    // Roll the draft's cache back to what it shares with the committed text, then catch up.
    const cached = this.session.tokens;
    let common = 0;
    while (common < cached.length && common < context.length && cached[common] === context[common]) common++;
    this.session.truncate(common);
    if (!sampling && this.branching === 1) return this.greedyChain(context.slice(common), root, Math.min(want, this.draftLength));
    await this.session.prefill(context.slice(common));

    const width = this.branching === 1 ? 1 : Math.ceil(want / this.draftLength);
    const nodes: Node[] = [{ token: root, parent: -1, depth: 0, pathProb: 1, value: 1 }];
    const staging = sampling && this.rows('staging', want + 1);
    let fresh = [0]; // nodes whose children are not known yet
    // Each expanded node's children wait in draw order; only the next of them is a candidate, so
    // the siblings in the tree are always the first draws, in order, as RSD needs.
    const waiting = new Map<number, Node[]>();
    const nextOf = (parent: number) => waiting.get(parent)?.[0];
    // The draft's uniforms must not be the target's: another seed, and a step per expansion.
    for (let expansion = 0; fresh.length && nodes.length - 1 < want; expansion++) {
      const order = preorder(nodes);
      const rank = new Map(order.map((node, row) => [node, row]));
      const start = performance.now();
      const expanded = await this.session.expandTree(
        order.map((i) => nodes[i].token), order.map((i) => (nodes[i].parent < 0 ? -1 : rank.get(nodes[i].parent)!)), this.branching,
        sampling && { ...sampling, seed: (sampling.seed ^ 0x5bd1e995) >>> 0, step: (context.length * 64 + expansion) >>> 0 },
        staging && { probs: staging, rows: order.map((i) => (fresh.includes(i) ? i : -1)) },
      );
      const t = this.timing;
      t.msPerExpansion = (t.msPerExpansion * t.expansions + performance.now() - start) / ++t.expansions;
      for (const parent of fresh) {
        const node = nodes[parent];
        if (node.depth >= this.draftLength) continue;
        const { children, top } = expanded[rank.get(parent)!];
        // A8 with sampling: a node where the drafter is unsure (its top probability below η) gets
        // no children. The rule must not look at which token a draw produced: kept drafts would
        // then come from q given the rule, not from q, and q-based acceptance would be biased.
        if (sampling && top < this.minConfidence) continue;
        const drawn: Node[] = [];
        let drawnMass = 0;
        for (const { token, q } of children) {
          // A8, greedy: a draft the drafter itself doubts ends its parent's list (and is not proposed).
          if (!sampling && q < this.minConfidence) break;
          // With sampling, for the same reason, a draw's value must not depend on the token it
          // drew: its own factor is what the draw could be worth before it was made, the node's
          // top probability capped by the mass the earlier draws left.
          const own = sampling ? Math.min(top, 1 - drawnMass) : q;
          drawnMass += q;
          drawn.push({ token, parent, depth: node.depth + 1, pathProb: node.pathProb * q, value: node.pathProb * own });
        }
        if (drawn.length) waiting.set(parent, drawn);
      }
      // Add the most valuable waiting children, up to `width` this expansion; A8 rule 2 (and A3
      // step 4): none whose value is below τ.
      fresh = [];
      while (fresh.length < width && nodes.length - 1 < want) {
        let best = -1;
        for (const parent of waiting.keys()) if (best < 0 || nextOf(parent)!.value > nextOf(best)!.value) best = parent;
        if (best < 0 || nextOf(best)!.value < this.minPathValue) break;
        nodes.push(waiting.get(best)!.shift()!);
        if (!waiting.get(best)!.length) waiting.delete(best);
        fresh.push(nodes.length - 1);
      }
    }
    if (nodes.length === 1) return EMPTY_TREE;
    const order = preorder(nodes);
    const rank = new Map(order.map((node, row) => [node, row]));
    const tree: DraftTree = {
      tokens: order.slice(1).map((i) => nodes[i].token),
      parents: order.slice(1).map((i) => rank.get(nodes[i].parent)! - 1),
    };
    if (!staging) return tree;
    // Row r of the verify walk's q is node order[r]'s: copied from creation order.
    const probs = this.rows('probs', want + 1);
    await this.gpu.run((pass) => {
      order.forEach((node, row) => {
        copy(this.gpu, pass, { src: staging.buffer, dst: probs.buffer, n: this.draft.config.vocabSize, srcOffset: node * staging.stride, dstOffset: row * probs.stride });
      });
    }, 'draft probs in tree order');
    return { ...tree, draftProbs: probs };
  }

  /**
   * A greedy chain of `count` drafts after the catch-up tokens and the root: recorded into the
   * verify submission, or, the first time and with A8's stop (which needs the probabilities
   * first), run and read back on its own.
   */
  private async greedyChain(catchUp: number[], root: number, count: number): Promise<DraftTree | GpuDraftTree> {
    if (catchUp.length >= this.session.stepTokens) {
      await this.session.prefill(catchUp);
      catchUp = [];
    }
    const feed = [...catchUp, root];
    if (this.timing.msPerChained && this.minConfidence === 0) {
      return {
        parents: Array.from({ length: count }, (_, i) => i - 1),
        fill: (pass, ids, verifyRoot) => void this.session.recordGreedyChain(pass, feed, count, { keepFeed: true, into: { ids, root: verifyRoot } }),
      };
    }
    const start = performance.now();
    const drafts = await this.session.greedyChain(feed, count, { keepFeed: true, minConfidence: this.minConfidence });
    this.timing.msPerChained ||= (performance.now() - start) / chainForwards(count, drafts.length, this.minConfidence);
    return chain(drafts);
  }

  /** Rows padded to the storage offset alignment, so that each can be bound on its own. */
  private rows(which: 'probs' | 'staging', count: number): DraftProbs {
    const existing = this[which];
    if (existing && existing.buffer.size >= (count + 1) * existing.stride * 4) return existing;
    existing?.buffer.destroy();
    const align = this.gpu.limits.minStorageBufferOffsetAlignment / 4;
    const stride = Math.ceil(this.draft.config.vocabSize / align) * align;
    // The verify walk may read one row past the last node (unused).
    const rows = Math.max(count + 1, this.draftLength + 2);
    const made = { buffer: this.gpu.buffer(rows * stride * 4, `draft ${which}`), stride };
    this[which] = made;
    return made;
  }

  draftMs(n: number): number {
    // A chain: one draft forward per node. A tree: one expansion per level, at most draftLength,
    // at most one per node.
    const { msPerChained, msPerExpansion } = this.timing;
    return Math.min(n, this.draftLength) * (this.branching === 1 && msPerChained ? msPerChained : msPerExpansion);
  }

  destroy(): void {
    this.session.destroy();
    this.probs?.buffer.destroy();
    this.staging?.buffer.destroy();
  }
}

/** Node ids in DFS preorder, children in creation order (the root, node 0, first). */
function preorder(nodes: readonly Node[]): number[] {
  const children: number[][] = nodes.map(() => []);
  nodes.forEach((node, i) => node.parent >= 0 && children[node.parent].push(i));
  const order: number[] = [];
  const visit = (i: number) => {
    order.push(i);
    children[i].forEach(visit);
  };
  visit(0);
  return order;
}
