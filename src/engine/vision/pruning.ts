// Vision-token pruning and merging (docs/VISION.md, ../shared/ALGORITHMS.md section C): which of
// an image's tokens reach the language model. One options type for every method; the budget is a
// ratio of the image's tokens or a count.
import { GpuError } from '../../gpu';

export const PRUNING_METHODS = ['cls', 'hiprune', 'todre', 'tome', 'pitome', 'fastv'] as const;
export type PruningMethod = (typeof PRUNING_METHODS)[number];

export interface VisionPruning {
  /**
   * cls: top-k by the class token's attention (C1); hiprune: anchors, buffers and registers from
   * two tower layers' attention (C2); todre: greedy k-center diversity after the tower, then
   * inside the language model the text's attention, and from deeper on none (C3);
   * tome / pitome: merging inside the tower, size-weighted, with proportional attention (C6, C4);
   * fastv: pruning inside the language model after decoder layer `layer` by the attention the image
   * tokens get (C7).
   */
  method: PruningMethod;
  /** Image tokens to keep: a ratio in (0, 1], or a whole count above 1 (at most the image's tokens). */
  budget: number;
  /**
   * fastv: the decoder layer after which image tokens are pruned (default 2); todre: the layer of
   * its second stage (default: the middle). At most layers − 2.
   */
  layer?: number;
}

/** What pruning did to one image, for stats and the demo's heatmap. */
export interface ImageTokens {
  /** The image's tokens before pruning (its patches). */
  patches: number;
  /** Tokens the language model reads for it (its layers above `layer`, for FastV). */
  kept: number;
  /**
   * Per patch (row-major over the patch grid), which kept token carries it: -1 pruned, else the
   * kept token's index (merged patches share one).
   */
  patchMap: Int32Array;
  /**
   * FastV, and ToDRE's second stage: the language model's layers above `layer` read only `kept`
   * of the image's tokens (patchMap as above, for those layers), and the layers above `noneAfter`
   * none (ToDRE, in a model deep enough).
   */
  deep?: { layer: number; kept: number; patchMap: Int32Array; noneAfter?: number };
  /** Milliseconds in the vision tower (with its pruning or merging). */
  encodeMs: number;
}

/** The number of tokens a budget keeps out of n, checked. */
export function keptCount(budget: number, n: number): number {
  if (!(budget > 0) || !Number.isFinite(budget)) throw new GpuError('bad-argument', `pruning budget must be a ratio in (0, 1] or a count, got ${budget}`);
  if (budget <= 1) return Math.max(1, Math.floor(n * budget));
  if (!Number.isInteger(budget) || budget > n) throw new GpuError('bad-argument', `pruning budget ${budget} is not a whole count of at most ${n} image tokens`);
  return budget;
}

export function checkPruning(pruning: VisionPruning | undefined): void {
  if (pruning === undefined) return;
  if (!PRUNING_METHODS.includes(pruning.method)) throw new GpuError('bad-argument', `unknown pruning method ${JSON.stringify(pruning.method)} (one of ${PRUNING_METHODS.join(', ')})`);
  keptCount(pruning.budget, Number.MAX_SAFE_INTEGER);
}
