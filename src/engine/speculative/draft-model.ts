// Draft-model speculation (A1, greedy chain): a small model with the same vocabulary drafts the
// next tokens one by one; the target verifies them all in one pass. The draft keeps its own KV
// cache, rolled back to the committed text before each proposal.
import type { Gpu } from '../../gpu';
import type { Decoder } from '../../models/decoder';
import { EngineError } from '../errors';
import { Session } from '../session';
import { type DraftTree, EMPTY_TREE, type Strategy, chain } from './strategy';

export interface DraftModelOptions {
  /** Tokens drafted per step. Default 4. */
  draftLength?: number;
  contextLength?: number;
}

export class DraftModel implements Strategy {
  readonly name = 'draft-model';
  private readonly session: Session;
  private readonly draftLength: number;
  /** Mean wall time of one drafted token, for sizing. */
  private msPerToken = 0;
  private timed = 0;

  constructor(gpu: Gpu, readonly draft: Decoder, target: Decoder, options: DraftModelOptions = {}) {
    if (draft.config.vocabSize !== target.config.vocabSize) {
      throw new EngineError('bad-request', `the draft model's vocabulary (${draft.config.vocabSize}) differs from the target's (${target.config.vocabSize})`);
    }
    this.draftLength = options.draftLength ?? 4;
    this.session = new Session(gpu, draft, { contextLength: options.contextLength ?? Math.min(draft.config.contextLength, 2048) });
  }

  async propose(context: readonly number[], root: number, budget: number): Promise<DraftTree> {
    const want = Math.min(this.draftLength, budget, this.session.capacity - context.length - 1);
    if (want < 1) return EMPTY_TREE;
    // Roll the draft's cache back to what it shares with the committed text, then catch up.
    const cached = this.session.tokens;
    let common = 0;
    while (common < cached.length && common < context.length && cached[common] === context[common]) common++;
    this.session.truncate(common);
    const drafts: number[] = [];
    let next = await this.session.feedGreedy([...context.slice(common), root]);
    drafts.push(next);
    while (drafts.length < want) {
      const start = performance.now();
      next = await this.session.feedGreedy([next]);
      drafts.push(next);
      this.msPerToken = (this.msPerToken * this.timed + performance.now() - start) / ++this.timed;
    }
    return chain(drafts);
  }

  draftMs(n: number): number {
    return n * this.msPerToken;
  }

  destroy(): void {
    this.session.destroy();
  }
}
