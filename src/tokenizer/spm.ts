// SentencePiece-style tokenization as llama.cpp does it for tokenizer.ggml.model = "llama"
// (llm_tokenizer_spm_session in llama-vocab.cpp): start from single characters and keep merging
// the adjacent pair whose concatenation is the vocabulary entry with the highest score (ties: the
// leftmost pair). Pieces that are not in the vocabulary fall back to <0xXX> byte tokens.

import { PriorityQueue } from './priority-queue';
import { utf8Encode } from './unicode';
import type { Vocabulary } from './vocabulary';

interface SpmSymbol {
  text: string;
  prev: number;
  next: number;
}

interface SpmBigram {
  left: number;
  right: number;
  score: number;
  /** Length of the merged text when queued; a mismatch later means one side has changed. */
  length: number;
}

// std::priority_queue with llama.cpp's comparator pops the highest score, then the smallest left.
const spmOrder = (a: SpmBigram, b: SpmBigram) => a.score > b.score || (a.score === b.score && a.left < b.left);

/**
 * Appends the tokens of `text` (spaces already escaped to "▁" by the caller) to `output`.
 * `text` is one fragment: special tokens have been split out before.
 */
export function spmTokenize(vocab: Vocabulary, text: string, output: number[]): void {
  const symbols: SpmSymbol[] = [];
  for (const ch of text) symbols.push({ text: ch, prev: symbols.length - 1, next: symbols.length + 1 });
  if (symbols.length === 0) return;
  symbols[symbols.length - 1]!.next = -1;

  const queue = new PriorityQueue<SpmBigram>(spmOrder);
  const tryAddBigram = (left: number, right: number) => {
    if (left === -1 || right === -1) return;
    const merged = symbols[left]!.text + symbols[right]!.text;
    const id = vocab.idOf(merged);
    if (id === undefined) return;
    queue.push({ left, right, score: vocab.scores[id]!, length: merged.length });
  };

  for (let i = 1; i < symbols.length; i++) tryAddBigram(i - 1, i);

  for (let bigram = queue.pop(); bigram; bigram = queue.pop()) {
    const left = symbols[bigram.left]!;
    const right = symbols[bigram.right]!;
    // Skip pairs where a side was merged away or has grown since this entry was queued.
    if (left.text.length === 0 || right.text.length === 0 || left.text.length + right.text.length !== bigram.length) continue;
    left.text += right.text;
    right.text = '';
    left.next = right.next;
    if (right.next >= 0) symbols[right.next]!.prev = bigram.left;
    tryAddBigram(left.prev, bigram.left);
    tryAddBigram(bigram.left, left.next);
  }

  for (let i = 0; i !== -1; i = symbols[i]!.next) {
    const piece = symbols[i]!.text;
    const id = vocab.idOf(piece);
    if (id !== undefined) output.push(id);
    else pushByteFallback(vocab, piece, output);
  }
}

/**
 * A piece with no vocabulary entry (only ever a single character: merged pieces are entries by
 * construction) becomes one <0xXX> token per UTF-8 byte. llama.cpp then tries the byte as a
 * one-character token and otherwise throws; a vocabulary without byte tokens gets <unk> here instead,
 * once per character, as SentencePiece does without byte fallback.
 */
function pushByteFallback(vocab: Vocabulary, piece: string, output: number[]): void {
  const ids: number[] = [];
  for (const byte of utf8Encode(piece)) {
    const id = vocab.byteTokenId(byte);
    if (id === undefined) {
      if (vocab.special.unk === undefined) {
        throw new Error(`tokenizer: ${JSON.stringify(piece)} is not in the vocabulary, which has no byte token for 0x${byte.toString(16)} and no <unk> token`);
      }
      output.push(vocab.special.unk);
      return;
    }
    ids.push(id);
  }
  output.push(...ids);
}
