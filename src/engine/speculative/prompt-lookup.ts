// Prompt lookup (n-gram drafting, A6): the text often repeats itself (names, quotes, code), so
// find the latest earlier occurrence of the last few tokens and propose what followed it.
import { type DraftTree, EMPTY_TREE, type Strategy, chain } from './strategy';

export interface PromptLookupOptions {
  /** Longest and shortest n-gram to match, tried longest first. Default 3 and 1. */
  maxNgram?: number;
  minNgram?: number;
  /** Tokens proposed after a match. Default 8. */
  draftLength?: number;
}

export class PromptLookup implements Strategy {
  readonly name = 'prompt-lookup';
  private readonly maxNgram: number;
  private readonly minNgram: number;
  private readonly draftLength: number;

  constructor(options: PromptLookupOptions = {}) {
    this.maxNgram = options.maxNgram ?? 3;
    this.minNgram = options.minNgram ?? 1;
    this.draftLength = options.draftLength ?? 8;
  }

  propose(context: readonly number[], root: number, budget: number): DraftTree {
    const text = [...context, root];
    const want = Math.min(this.draftLength, budget);
    if (want < 1) return EMPTY_TREE;
    for (let n = Math.min(this.maxNgram, text.length - 1); n >= this.minNgram; n--) {
      const tail = text.length - n;
      // The latest earlier occurrence of the last n tokens, with at least one token after it.
      for (let start = tail - 1; start >= 0; start--) {
        let match = true;
        for (let j = 0; j < n && match; j++) match = text[start + j] === text[tail + j];
        if (!match) continue;
        // What followed, up to the first image row (a negative id is no token to propose).
        const next = text.slice(start + n, Math.min(start + n + want, text.length));
        const image = next.findIndex((id) => id < 0);
        const draft = image < 0 ? next : next.slice(0, image);
        if (draft.length) return chain(draft);
      }
    }
    return EMPTY_TREE;
  }
}
