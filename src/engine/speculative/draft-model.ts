// Draft-model speculation (A1, a chain): a small model with the same vocabulary drafts the next
// tokens one by one; the target verifies them all in one pass. Greedy decoding drafts the draft's
// argmax; sampling draws each draft from the draft's own sampling distribution q (same settings
// as the target's, its own uniforms) and hands the q rows to the verify step, which accepts by
// min(1, p/q) (A1 step 3). The draft keeps its own KV cache, rolled back to the committed text
// before each proposal.
import type { Gpu } from '../../gpu';
import type { Decoder } from '../../models/decoder';
import { EngineError } from '../errors';
import { type DraftProbs, Session, type TreeSampling } from '../session';
import { type DraftTree, EMPTY_TREE, type Strategy, chain } from './strategy';

export interface DraftModelOptions {
  /** Tokens drafted per step. Default 4. */
  draftLength?: number;
  /** A8: stop drafting at a draft whose probability under the drafter is below this. Default 0 (never). */
  minConfidence?: number;
  contextLength?: number;
}

export class DraftModel implements Strategy {
  readonly name = 'draft-model';
  private readonly session: Session;
  private readonly draftLength: number;
  private readonly minConfidence: number;
  /** Mean wall time of one drafted token, for sizing. */
  private msPerToken = 0;
  private timed = 0;
  /** q rows for sampled drafts (row i: what draft i + 1 was drawn from), made on first use. */
  private probs?: DraftProbs;

  constructor(private readonly gpu: Gpu, readonly draft: Decoder, target: Decoder, options: DraftModelOptions = {}) {
    if (draft.config.vocabSize !== target.config.vocabSize) {
      throw new EngineError('bad-request', `the draft model's vocabulary (${draft.config.vocabSize}) differs from the target's (${target.config.vocabSize})`);
    }
    this.draftLength = options.draftLength ?? 4;
    this.minConfidence = options.minConfidence ?? 0;
    this.session = new Session(gpu, draft, { contextLength: options.contextLength ?? Math.min(draft.config.contextLength, 2048) });
  }

  async propose(context: readonly number[], root: number, budget: number, sampling?: TreeSampling): Promise<DraftTree> {
    const want = Math.min(this.draftLength, budget, this.session.capacity - context.length - 1);
    if (want < 1) return EMPTY_TREE;
    // Roll the draft's cache back to what it shares with the committed text, then catch up.
    const cached = this.session.tokens;
    let common = 0;
    while (common < cached.length && common < context.length && cached[common] === context[common]) common++;
    this.session.truncate(common);
    const drafts: number[] = [];
    const probs = sampling && this.probRows();
    // The draft's uniforms must not be the target's: another seed, and a step per drafted token.
    const draw = async (tokens: number[]): Promise<{ token: number; confidence: number }> => {
      if (!probs) {
        const { token, probability } = await this.session.feedConfident(tokens);
        return { token, confidence: probability };
      }
      const seed = (sampling!.seed ^ 0x5bd1e995) >>> 0;
      const step = (context.length * 64 + drafts.length) >>> 0;
      const row = { buffer: probs.buffer, offset: drafts.length * probs.stride * 4, size: this.draft.config.vocabSize * 4 };
      return this.session.feedSampled(tokens, { ...sampling!, seed, step }, row);
    };
    let input = [...context.slice(common), root];
    while (drafts.length < want) {
      const start = performance.now();
      const { token, confidence } = await draw(input);
      if (drafts.length > 0) this.msPerToken = (this.msPerToken * this.timed + performance.now() - start) / ++this.timed;
      // A8: stop where the drafter doubts its own draft; that draft is not proposed. (The fed
      // tokens stay in the draft's cache: the next proposal rolls it back as needed.)
      if (confidence < this.minConfidence) break;
      drafts.push(token);
      input = [token];
    }
    return probs ? { ...chain(drafts), draftProbs: probs } : chain(drafts);
  }

  /** Rows padded to the storage offset alignment, so that each can be bound on its own. */
  private probRows(): DraftProbs {
    if (!this.probs) {
      const align = this.gpu.limits.minStorageBufferOffsetAlignment / 4;
      const stride = Math.ceil(this.draft.config.vocabSize / align) * align;
      // draftLength rows are written; the verify walk may read one more (the last draft's, unused).
      this.probs = { buffer: this.gpu.buffer((this.draftLength + 1) * stride * 4, 'draft probs'), stride };
    }
    return this.probs;
  }

  draftMs(n: number): number {
    return n * this.msPerToken;
  }

  destroy(): void {
    this.session.destroy();
    this.probs?.buffer.destroy();
  }
}
