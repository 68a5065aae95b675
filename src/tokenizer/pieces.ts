// Token ids back to bytes (llama.cpp's token_to_piece) and the text-level clean-ups of its
// detokenizer. Pieces are bytes, not strings: a byte token or a byte-level BPE token can hold
// part of a UTF-8 character, completed only by the next token.

import { TokenAttr } from './token-types';
import { byteLevelCharToByte, utf8Encode } from './unicode';
import type { Vocabulary } from './vocabulary';

const EMPTY = new Uint8Array(0);
const SPECIAL_OR_UNKNOWN = TokenAttr.CONTROL | TokenAttr.UNKNOWN;

export class PieceTable {
  /** Pieces with special tokens rendered as their text, built on first use. */
  private readonly pieces: (Uint8Array | undefined)[] = [];

  constructor(private readonly vocab: Vocabulary) {}

  /** The bytes token `id` stands for; control and unknown tokens are empty unless `special`. */
  bytes(id: number, special: boolean): Uint8Array {
    const { vocab } = this;
    if (!Number.isInteger(id) || id < 0 || id >= vocab.size) throw new RangeError(`tokenizer: token id ${id} is outside the vocabulary (0..${vocab.size - 1})`);
    if (!special && vocab.hasAttr(id, SPECIAL_OR_UNKNOWN)) return EMPTY;
    return (this.pieces[id] ??= this.render(id));
  }

  private render(id: number): Uint8Array {
    const { vocab } = this;
    const text = vocab.tokens[id]!;
    if (vocab.hasAttr(id, SPECIAL_OR_UNKNOWN | TokenAttr.USER_DEFINED)) return utf8Encode(text);
    if (vocab.hasAttr(id, TokenAttr.NORMAL)) {
      return vocab.model === 'llama' ? utf8Encode(text.replaceAll('▁', ' ')) : byteLevelDecode(text);
    }
    if (vocab.hasAttr(id, TokenAttr.BYTE)) return Uint8Array.of(parseInt(text.slice(3, 5), 16) || 0);
    return EMPTY; // unused and undefined tokens print nothing
  }
}

/**
 * A byte-level token's bytes. A character outside GPT-2's byte alphabet is written the way
 * llama.cpp's llama_decode_text writes it, "[UNK_BYTE_0x<its UTF-8 in hex><the token>]".
 */
function byteLevelDecode(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const b = byteLevelCharToByte(ch);
    if (b !== undefined) {
      out.push(b);
      continue;
    }
    const hex = [...utf8Encode(ch)].map((x) => x.toString(16).padStart(2, '0')).join('');
    out.push(...utf8Encode(`[UNK_BYTE_0x${hex}${text}]`));
  }
  return Uint8Array.from(out);
}

/**
 * llama.cpp's clean_up_tokenization_spaces passes: drop the space before ? ! . , and before the
 * contractions 's 'm 're 've, and the spaces around a lone apostrophe (" ' ").
 */
export function cleanUpSpaces(text: string): string {
  let s = text.replace(/ ([?!.,])/g, '$1');
  s = s.replace(/ ' /g, "'");
  s = s.replace(/ '(s|m|re|ve)/g, "'$1");
  return s;
}
