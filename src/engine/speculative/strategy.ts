// Speculative decoding strategies: each proposes a draft tree after the committed text, the
// engine verifies the whole tree in one forward pass of the target model, keeps the longest path
// the target agrees with, and tells the strategy what happened.
import type { DraftProbs, TreeSampling } from '../session';

/** Draft nodes in DFS preorder; parents[i] is the index of node i's parent, or -1 for a child of the root. */
export interface DraftTree {
  tokens: number[];
  parents: number[];
  /**
   * With sampling: the distributions the drafts were drawn from (row i for node i's children,
   * row 0 the root's), so verification uses the q-based rules. Absent: the drafts count as
   * point masses (chosen without randomness), which is lossless too.
   */
  draftProbs?: DraftProbs;
}

/**
 * A draft tree whose tokens a kernel writes on the GPU (Token Recycling): the engine passes the
 * verify step's ids buffer, and `fill` writes [root, ...draft] into it; `afterVerify` may read the
 * verified rows' logits in the same submission.
 */
export interface GpuDraftTree {
  /** Parents of the draft nodes, as in DraftTree. */
  parents: number[];
  fill(pass: GPUComputePassEncoder, ids: GPUBuffer, root: number): void;
  afterVerify?(pass: GPUComputePassEncoder, logits: GPUBuffer, ids: GPUBuffer, rows: number): void;
}

export interface VerifiedStep {
  /** parents of the verified nodes [root, ...draft] (the root's is -1). */
  parents: number[];
  /** Node indices kept, the root first. */
  path: number[];
  /** The kept nodes' tokens, the root first. */
  tokens: number[];
}

export interface Strategy {
  readonly name: string;
  /**
   * A draft to follow `context` (the tokens in the target's cache) and `root` (the token emitted
   * last, not yet in the cache), with at most `budget` nodes. An empty tree means plain decoding.
   * `sampling` is given when the target samples (temperature > 0): a drafter that samples too
   * returns its distributions in draftProbs.
   */
  propose(context: readonly number[], root: number, budget: number, sampling?: TreeSampling): Promise<DraftTree | GpuDraftTree> | DraftTree | GpuDraftTree;
  /** Expected tokens per step (bonus included) with a draft of n nodes, for sizing; default: the loop's per-depth statistics. */
  expectedTokens?(n: number): number;
  /** Drafting time for n nodes in milliseconds (0 when drafting is free, as for prompt lookup). */
  draftMs?(n: number): number;
  /** Learns from the verified step. */
  observe?(step: VerifiedStep): void | Promise<void>;
  /** Frees what the strategy holds on the GPU. */
  destroy?(): void;
}

export const EMPTY_TREE: DraftTree = { tokens: [], parents: [] };

/** A chain of drafts: each the child of the one before. */
export function chain(tokens: number[]): DraftTree {
  return { tokens, parents: tokens.map((_, i) => i - 1) };
}

/** Drafter forwards behind a greedy chain of `drafted` out of `count` (Session.greedyChain: with A8's stop, one past the last kept draft). */
export function chainForwards(count: number, drafted: number, minConfidence = 0): number {
  return minConfidence > 0 ? Math.min(count, drafted + 1) : count;
}
