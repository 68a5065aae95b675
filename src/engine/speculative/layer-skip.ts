// Self-speculative decoding by layer skipping (A9): the target itself, with some layers left out,
// drafts a chain for the full model to verify. No second model, no extra memory: the draft runs
// on the session's own KV cache, at the slots the verify pass then overwrites.
//
// Drafting is chained on the GPU and, after the first (timed) step, recorded into the verify
// submission itself, so a step costs one round trip, as plain decoding's does (with A8's stop the
// drafts are read back first, since the stop needs their probabilities).
//
// Which layers to skip is measured, not guessed: `calibrate` runs each candidate set (one middle
// layer, two, alternate layers, ...) on the text at hand and keeps the one whose drafts the full
// model accepts most per unit of drafting time.
import type { Decoder } from '../../models/decoder';
import type { Session } from '../session';
import { type DraftTree, EMPTY_TREE, type GpuDraftTree, type Strategy, chain, chainForwards } from './strategy';

export interface LayerSkipOptions {
  /** Tokens drafted per step. Default 3. */
  draftLength?: number;
  /** Layers to skip; default: chosen by calibrate() (or the middle third until then). */
  skip?: number[];
  /** A8: stop drafting at a draft whose probability (under the skipping model) is below this. Default 0 (never). */
  minConfidence?: number;
}

/** Drafting time per token by model and skip set, kept across requests (each makes its own LayerSkip). */
const timings = new WeakMap<Decoder, Map<string, { msPerToken: number; timed: number }>>();

/** Candidate skip sets for a model of `layers` layers: never the first or the last layer. */
export function skipCandidates(layers: number): number[][] {
  const middle = Array.from({ length: Math.max(0, layers - 2) }, (_, i) => i + 1);
  const candidates = new Map<string, number[]>();
  const add = (set: number[]) => set.length > 0 && set.length < layers - 1 && candidates.set(set.join(','), set);
  for (const l of middle) add([l]); // each single middle layer
  add(middle.filter((_, i) => i % 2 === 0)); // alternate
  add(middle.filter((_, i) => i % 2 === 1));
  add(middle.slice(Math.floor(middle.length / 3), Math.ceil((2 * middle.length) / 3))); // middle third
  add(middle.slice(0, Math.ceil(middle.length / 2))); // lower half of the middle
  add(middle.slice(Math.floor(middle.length / 2))); // upper half
  return [...candidates.values()];
}

export class LayerSkip implements Strategy {
  readonly name = 'layer-skip';
  private skip: Set<number>;
  private readonly draftLength: number;

  constructor(private readonly session: Session, layers: number, private readonly options: LayerSkipOptions = {}) {
    this.draftLength = options.draftLength ?? 3;
    const middle = Array.from({ length: Math.max(0, layers - 2) }, (_, i) => i + 1);
    this.skip = new Set(options.skip ?? middle.slice(Math.floor(middle.length / 3), Math.ceil((2 * middle.length) / 3)));
  }

  get skipped(): number[] {
    return [...this.skip].sort((a, b) => a - b);
  }

  /**
   * Picks the skip set by measurement on `text` (token ids that follow what the session holds):
   * for each candidate, chains of `draftLength` drafted at `probes` places in the text and
   * verified by the full model as in a real step; the set with the most accepted tokens per
   * millisecond of drafting wins. The session is left as it was.
   */
  async calibrate(text: number[], candidates: number[][], probes = 8): Promise<{ skip: number[]; scores: Array<{ skip: number[]; acceptance: number; msPerToken: number }> }> {
    const base = this.session.length;
    // Latest first: each probe only shortens the cache; the text is put back once per candidate.
    const positions = Array.from({ length: probes }, (_, i) => Math.floor(((probes - i) * (text.length - 1)) / (probes + 1)));
    const scores = [];
    for (const skip of candidates) {
      await this.session.prefill(text.slice(this.session.length - base));
      let accepted = 0;
      let ms = 0;
      for (const p of positions) {
        this.session.truncate(base + p);
        const start = performance.now();
        const drafts = await this.session.greedyChain([text[p]], this.draftLength, { skipLayers: new Set(skip) });
        ms += performance.now() - start;
        const nodes = [text[p], ...drafts];
        accepted += (await this.session.verifyTree(nodes, nodes.map((_, i) => i - 1))).path.length - 1;
      }
      scores.push({ skip, acceptance: accepted / (positions.length * this.draftLength), msPerToken: ms / (positions.length * this.draftLength) });
    }
    this.session.truncate(base);
    const best = scores.reduce((a, b) => (b.acceptance / b.msPerToken > a.acceptance / a.msPerToken ? b : a));
    this.skip = new Set(best.skip);
    return { skip: best.skip, scores };
  }

  async propose(_context: readonly number[], root: number, budget: number): Promise<DraftTree | GpuDraftTree> {
    const want = Math.min(this.draftLength, budget);
    if (want < 1) return EMPTY_TREE;
    const timing = this.timing();
    if (timing.timed && !this.options.minConfidence) {
      return {
        parents: Array.from({ length: want }, (_, i) => i - 1),
        fill: (pass, ids, verifyRoot) => void this.session.recordGreedyChain(pass, [verifyRoot], want, { skipLayers: this.skip, into: { ids, root: verifyRoot } }),
      };
    }
    const start = performance.now();
    const drafts = await this.session.greedyChain([root], want, { skipLayers: this.skip, minConfidence: this.options.minConfidence });
    timing.msPerToken = (timing.msPerToken * timing.timed + (performance.now() - start) / chainForwards(want, drafts.length, this.options.minConfidence)) / ++timing.timed;
    return chain(drafts);
  }

  draftMs(n: number): number {
    return n * this.timing().msPerToken;
  }

  /** This model's drafting time with the current skip set, shared by every LayerSkip on it. */
  private timing(): { msPerToken: number; timed: number } {
    let byModel = timings.get(this.session.model);
    if (!byModel) timings.set(this.session.model, (byModel = new Map()));
    const key = this.skipped.join();
    let timing = byModel.get(key);
    if (!timing) byModel.set(key, (timing = { msPerToken: 0, timed: 0 }));
    return timing;
  }
}
