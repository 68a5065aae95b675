// Byte-level BPE (GPT-2 style) as llama.cpp does it for tokenizer.ggml.model = "gpt2"
// (llm_tokenizer_bpe_session in llama-vocab.cpp): the pre-tokenizer cuts text into words, each
// word's UTF-8 bytes are written in GPT-2's byte alphabet, and adjacent symbols are merged by the
// rank of their pair in tokenizer.ggml.merges (lowest rank first; ties: the leftmost pair).

import type { PreTokenizer } from './pre-tokenizers';
import { PriorityQueue } from './priority-queue';
import { byteLevelEncode } from './unicode';
import type { Vocabulary } from './vocabulary';

interface BpeBigram {
  left: number;
  right: number;
  rank: number;
  /** The merged text when queued; if the two symbols no longer spell it, the entry is stale. */
  text: string;
}

const bpeOrder = (a: BpeBigram, b: BpeBigram) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left);

// Merging a word depends on nothing but the word: cache results, bounded so memory stays flat.
const CACHE_LIMIT = 20_000;

export class BpeSession {
  private readonly cache = new Map<string, readonly number[]>();

  constructor(private readonly vocab: Vocabulary, private readonly pre: PreTokenizer) {}

  /** Appends the tokens of one text fragment (special tokens already split out) to `output`. */
  tokenize(text: string, output: number[]): void {
    for (const word of this.pre.split(text)) {
      const encoded = byteLevelEncode(word);
      let ids = this.cache.get(encoded);
      if (!ids) {
        ids = this.tokenizeWord(encoded);
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(encoded, ids);
      }
      for (const id of ids) output.push(id);
    }
  }

  private tokenizeWord(word: string): number[] {
    const { vocab } = this;
    if (this.pre.ignoreMerges) {
      const whole = vocab.idOf(word);
      if (whole !== undefined) return [whole];
    }
    // Every byte-level character is one UTF-16 unit (they are all below U+0144).
    const symbols = [...word].map((text, i, all) => ({ text, prev: i - 1, next: i + 1 < all.length ? i + 1 : -1 }));
    const queue = new PriorityQueue<BpeBigram>(bpeOrder);
    const addBigram = (left: number, right: number) => {
      if (left === -1 || right === -1) return;
      const l = symbols[left]!.text;
      const r = symbols[right]!.text;
      const rank = vocab.mergeRank(l, r);
      if (rank !== undefined) queue.push({ left, right, rank, text: l + r });
    };
    for (let i = 1; i < symbols.length; i++) addBigram(i - 1, i);

    for (let bigram = queue.pop(); bigram; bigram = queue.pop()) {
      const left = symbols[bigram.left]!;
      const right = symbols[bigram.right]!;
      if (left.text.length === 0 || right.text.length === 0 || left.text + right.text !== bigram.text) continue;
      left.text += right.text;
      right.text = '';
      left.next = right.next;
      if (right.next >= 0) symbols[right.next]!.prev = bigram.left;
      addBigram(left.prev, bigram.left);
      addBigram(bigram.left, left.next);
    }

    const ids: number[] = [];
    for (const { text } of symbols) {
      if (text.length === 0) continue;
      const id = vocab.idOf(text);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      // A symbol outside the vocabulary: llama.cpp looks each of its UTF-8 bytes up as a
      // one-byte token, which can only succeed for ASCII, and silently drops the rest.
      for (const unit of text) {
        const byteId = unit.charCodeAt(0) < 0x80 ? vocab.idOf(unit) : undefined;
        if (byteId !== undefined) ids.push(byteId);
      }
    }
    return ids;
  }
}
