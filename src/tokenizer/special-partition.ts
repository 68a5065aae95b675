// Splitting input text at special tokens before tokenization (llama.cpp's tokenizer_st_partition):
// each special token, longest first, is searched for in the text that is still raw, and every
// occurrence becomes that token. Control and unknown tokens are matched only when the caller asks
// to parse special tokens; user-defined tokens always are, as Hugging Face tokenizers do.

import { TokenAttr } from './token-types';
import type { Vocabulary } from './vocabulary';

export type Fragment = { text: string } | { token: number };

// C's isspace in the "C" locale: the bytes llama.cpp strips next to LSTRIP/RSTRIP tokens.
const isAsciiSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';

export function partitionSpecialTokens(vocab: Vocabulary, text: string, parseSpecial: boolean): Fragment[] {
  let fragments: Fragment[] = text.length > 0 ? [{ text }] : [];
  for (const id of vocab.specialTokensLongestFirst) {
    if (!parseSpecial && vocab.hasAttr(id, TokenAttr.CONTROL | TokenAttr.UNKNOWN)) continue;
    const special = vocab.tokens[id]!;
    const lstrip = vocab.hasAttr(id, TokenAttr.LSTRIP);
    const rstrip = vocab.hasAttr(id, TokenAttr.RSTRIP);
    const next: Fragment[] = [];
    for (const fragment of fragments) {
      if (!('text' in fragment)) {
        next.push(fragment);
        continue;
      }
      const raw = fragment.text;
      let start = 0;
      for (let match = raw.indexOf(special); match >= 0; match = raw.indexOf(special, start)) {
        let leftEnd = match;
        if (lstrip) while (leftEnd > start && isAsciiSpace(raw[leftEnd - 1]!)) leftEnd--;
        if (leftEnd > start) next.push({ text: raw.slice(start, leftEnd) });
        next.push({ token: id });
        start = match + special.length;
        if (rstrip) while (start < raw.length && isAsciiSpace(raw[start]!)) start++;
      }
      if (start < raw.length) next.push({ text: raw.slice(start) });
    }
    fragments = next;
  }
  return fragments;
}
