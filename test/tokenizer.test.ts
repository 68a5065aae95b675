// Tokenizer behaviour on small hand-made vocabularies, where each rule of llama.cpp's tokenizers
// (llama-vocab.cpp, unicode.cpp) can be seen at work: SentencePiece merges by score, byte fallback,
// the space prefix, special-token matching, BPE merge ranks, the pre-tokenizer splits, decoding.

import { describe, expect, it } from 'vitest';
import { GGUFType, gv } from '../src/formats/gguf';
import { readGGUF } from '../src/formats/gguf-reader';
import { encodeGGUF } from '../src/formats/gguf-writer';
import { TokenType, Tokenizer, metadataFromTokenizerJson } from '../src/tokenizer';
import { preTokenizerFor } from '../src/tokenizer/pre-tokenizers';
import { byteTokenName } from '../src/tokenizer/unicode';

const { NORMAL, UNKNOWN, CONTROL, USER_DEFINED, BYTE } = TokenType;

/** A SentencePiece vocabulary: <unk> <s> </s>, optionally the 256 byte tokens, then `pieces` (score, type). */
function spmMetadata(pieces: [string, number, number?][], options: { byteTokens?: boolean; extra?: Record<string, unknown> } = {}) {
  const tokens = ['<unk>', '<s>', '</s>'];
  const scores = [0, 0, 0];
  const types: number[] = [UNKNOWN, CONTROL, CONTROL];
  if (options.byteTokens ?? true) {
    for (let b = 0; b < 256; b++) { tokens.push(byteTokenName(b)); scores.push(0); types.push(BYTE); }
  }
  for (const [text, score, type] of pieces) { tokens.push(text); scores.push(score); types.push(type ?? NORMAL); }
  return {
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.scores': scores,
    'tokenizer.ggml.token_type': types,
    ...options.extra,
  };
}

/** GPT-2's bytes_to_unicode, written out here independently of src/tokenizer/unicode.ts. */
function byteChar(b: number): string {
  const keep = (x: number) => (x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff);
  if (keep(b)) return String.fromCodePoint(b);
  let n = 0;
  for (let x = 0; x < b; x++) if (!keep(x)) n++;
  return String.fromCodePoint(256 + n);
}

/** A byte-level BPE vocabulary: the 256 byte characters, the results of `merges` in order, then `extra` tokens. */
function bpeMetadata(merges: string[], pre = 'qwen2', extra: [string, number][] = []) {
  const tokens = Array.from({ length: 256 }, (_, b) => byteChar(b));
  const types: number[] = tokens.map(() => NORMAL);
  for (const m of merges) {
    const merged = m.replace(' ', '');
    if (!tokens.includes(merged)) { tokens.push(merged); types.push(NORMAL); }
  }
  for (const [t, type] of extra) { tokens.push(t); types.push(type); }
  return {
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': pre,
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': types,
    'tokenizer.ggml.merges': merges,
  };
}

const ids = (t: Tokenizer, pieces: string[]) => pieces.map((p) => { const id = t.tokenId(p); if (id === undefined) throw new Error(`no ${p}`); return id; });

describe('SentencePiece (tokenizer.ggml.model = "llama")', () => {
  const pieces: [string, number][] = [['▁', -1], ['h', -2], ['e', -2], ['l', -2], ['o', -2], ['w', -2], ['r', -2], ['d', -2],
    ['▁h', -5], ['he', -3], ['ll', -4], ['llo', -6], ['hello', -7], ['▁hello', -8], ['▁w', -9], ['or', -10], ['▁wor', -11], ['ld', -12], ['▁world', -13]];
  const tok = Tokenizer.fromGGUFMetadata(spmMetadata(pieces));

  it('escapes spaces to "▁", adds the space prefix, merges by score and adds BOS', () => {
    expect(tok.encode('hello world')).toEqual([1, ...ids(tok, ['▁hello', '▁world'])]);
    expect(tok.encode('hello world', { addSpecial: false })).toEqual(ids(tok, ['▁hello', '▁world']));
    expect(tok.encode('')).toEqual([1]);
    expect(tok.encode('', { addSpecial: false })).toEqual([]);
  });

  it('merges the highest-scoring pair first, the leftmost on a tie', () => {
    // "▁hell": "he" (-3) beats "ll" (-4) and "▁h" (-5), which "he" has then used up.
    expect(tok.encode('hell', { addSpecial: false })).toEqual(ids(tok, ['▁', 'he', 'll']));
    const tie = Tokenizer.fromGGUFMetadata(spmMetadata([['a', -1], ['aa', -2]], { extra: { 'tokenizer.ggml.add_space_prefix': false } }));
    expect(tie.encode('aaa', { addSpecial: false })).toEqual(ids(tie, ['aa', 'a']));
  });

  it('falls back to <0xXX> byte tokens for characters outside the vocabulary', () => {
    expect(tok.encode('hé', { addSpecial: false })).toEqual([...ids(tok, ['▁h']), 3 + 0xc3, 3 + 0xa9]);
    expect(tok.encode('\n', { addSpecial: false })).toEqual([...ids(tok, ['▁']), 3 + 0x0a]);
  });

  it('gives <unk> for a character with no byte token (SentencePiece without byte fallback)', () => {
    const noBytes = Tokenizer.fromGGUFMetadata(spmMetadata(pieces, { byteTokens: false }));
    expect(noBytes.encode('h€h', { addSpecial: false })).toEqual([...ids(noBytes, ['▁h']), 0, ...ids(noBytes, ['h'])]);
    const noUnk = Tokenizer.fromGGUFMetadata(spmMetadata(pieces, { byteTokens: false, extra: { 'tokenizer.ggml.unknown_token_id': 99999 } }));
    expect(noUnk.vocab.special.unk).toBe(0); // an out-of-range id keeps the default
  });

  it('puts the space prefix after each special token when special tokens are parsed', () => {
    expect(tok.encode('hello</s>world', { addSpecial: false, parseSpecial: true })).toEqual(ids(tok, ['▁hello', '</s>', '▁world']));
    // Not parsed: "</s>" is plain text (no pieces for "<" here, so bytes).
    const plain = tok.encode('</s>', { addSpecial: false });
    expect(plain).not.toContain(2);
    expect(tok.decode(plain)).toBe('</s>');
  });

  it('honours add_space_prefix = false and add_bos_token / add_eos_token', () => {
    const t = Tokenizer.fromGGUFMetadata(spmMetadata(pieces, { extra: {
      'tokenizer.ggml.add_space_prefix': false, 'tokenizer.ggml.add_bos_token': false, 'tokenizer.ggml.add_eos_token': true,
    } }));
    expect(t.encode('hello')).toEqual([...ids(t, ['hello']), 2]);
  });

  it('decodes bytes, "▁" and the leading space; control tokens only when asked', () => {
    const encoded = tok.encode('hello héllo\n', { addSpecial: true });
    expect(tok.decode(encoded)).toBe('hello héllo\n');
    expect(tok.decode(encoded, { special: true })).toBe('<s> hello héllo\n');
    expect(tok.decode(encoded, { stripLeadingSpace: false })).toBe(' hello héllo\n');
  });
});

describe('special tokens in text', () => {
  const meta = spmMetadata([['▁', -1], ['a', -2], ['<|im_start|>', 0, CONTROL], ['<|im_start|>x', 0, CONTROL], ['<tool>', 0, USER_DEFINED]]);
  const tok = Tokenizer.fromGGUFMetadata(meta);

  it('matches the longest special token first', () => {
    expect(tok.encode('<|im_start|>x<|im_start|>a', { addSpecial: false, parseSpecial: true }))
      .toEqual(ids(tok, ['<|im_start|>x', '<|im_start|>', '▁', 'a']));
  });

  it('matches user-defined tokens even when special tokens are not parsed', () => {
    expect(tok.encode('a<tool>a', { addSpecial: false })).toEqual(ids(tok, ['▁', 'a', '<tool>', '▁', 'a']));
    expect(tok.decode(tok.encode('a<tool>a'))).toBe('a<tool> a');
  });

  it('lets phi-3 special tokens swallow the spaces after them (llama.cpp sets RSTRIP by model name)', () => {
    const phi = Tokenizer.fromGGUFMetadata({ ...meta, 'general.name': 'Phi-3-mini' });
    expect(phi.encode('<|im_start|>   a', { addSpecial: false, parseSpecial: true })).toEqual(ids(phi, ['<|im_start|>', '▁', 'a']));
    expect(tok.encode('<|im_start|>   a', { addSpecial: false, parseSpecial: true }).length).toBeGreaterThan(3);
  });

  it('marks end-of-turn tokens found by text as control and end of generation', () => {
    const t = Tokenizer.fromGGUFMetadata(spmMetadata([['<|im_end|>', 0, NORMAL], ['<|eot_id|>', 0, USER_DEFINED]]));
    const imEnd = t.tokenId('<|im_end|>')!;
    expect(t.vocab.special.eot).toBe(imEnd);
    expect(t.isEndOfGeneration(imEnd)).toBe(true);
    expect(t.isEndOfGeneration(t.tokenId('<|eot_id|>')!)).toBe(true);
    expect(t.isEndOfGeneration(2)).toBe(true); // EOS
    expect(t.decode([imEnd])).toBe(''); // now a control token
  });
});

describe('byte-level BPE (tokenizer.ggml.model = "gpt2")', () => {
  const merges = ['h e', 'l l', 'he ll', 'hell o', 'Ġ w', 'o r', 'Ġw or', 'Ġwor ld', 'l d', '1 2', '12 3'];

  it('merges pairs in rank order', () => {
    const t = Tokenizer.fromGGUFMetadata(bpeMetadata(merges));
    expect(t.encode('hello world').map((i) => t.tokenText(i))).toEqual(['hello', 'Ġworld']);
    // The same pairs in another order give another split: the lowest rank merges first.
    const text = (m: string[]) => { const b = Tokenizer.fromGGUFMetadata(bpeMetadata(m)); return b.encode('worl').map((i) => b.tokenText(i)); };
    expect(text(['r l', 'o r', 'w or'])).toEqual(['w', 'o', 'rl']);
    expect(text(['o r', 'r l', 'w or'])).toEqual(['wor', 'l']);
  });

  it('uses whole-word tokens without merging for llama3 (ignore_merges)', () => {
    const t = Tokenizer.fromGGUFMetadata(bpeMetadata(merges, 'llama-bpe', [['world', NORMAL]]));
    expect(t.encode('world', { addSpecial: false }).map((i) => t.tokenText(i))).toEqual(['world']);
    const q = Tokenizer.fromGGUFMetadata(bpeMetadata(merges, 'qwen2', [['world', NORMAL]]));
    expect(q.encode('world').map((i) => q.tokenText(i))).toEqual(['w', 'or', 'ld']);
  });

  it('adds BOS by default for llama3 only, and decodes bytes back to text', () => {
    const meta = bpeMetadata(merges, 'llama-bpe', [['<|begin_of_text|>', CONTROL]]);
    const bos = (meta['tokenizer.ggml.tokens'] as string[]).length - 1;
    const t = Tokenizer.fromGGUFMetadata({ ...meta, 'tokenizer.ggml.bos_token_id': BigInt(bos) });
    expect(t.encode('hi')[0]).toBe(bos);
    expect(Tokenizer.fromGGUFMetadata(bpeMetadata(merges)).encode('hi')).toHaveLength(2);
    expect(t.decode(t.encode('héllo 🦙 wörld\n'))).toBe('héllo 🦙 wörld\n');
  });

  it('names an unsupported pre-tokenizer, a missing one and missing merges in clear errors', () => {
    expect(() => Tokenizer.fromGGUFMetadata(bpeMetadata(merges, 'deepseek-llm'))).toThrow(/unsupported BPE pre-tokenizer "deepseek-llm".*supported: llama3/);
    const { 'tokenizer.ggml.pre': _, ...noPre } = bpeMetadata(merges);
    expect(() => Tokenizer.fromGGUFMetadata(noPre)).toThrow(/no tokenizer.ggml.pre/);
    const { 'tokenizer.ggml.merges': __, ...noMerges } = bpeMetadata(merges);
    expect(() => Tokenizer.fromGGUFMetadata(noMerges)).toThrow(/needs tokenizer.ggml.merges/);
    expect(() => Tokenizer.fromGGUFMetadata({ ...noMerges, 'tokenizer.ggml.model': 'bert' })).toThrow(/unsupported tokenizer model "bert"/);
  });
});

describe('pre-tokenizer splits (llama.cpp unicode_regex_split_custom_*)', () => {
  const split = (pre: string, text: string) => preTokenizerFor(pre).split(text);

  it('qwen2: one digit per word, letters with one leading non-letter, newlines kept together', () => {
    expect(split('qwen2', 'abc 12345 x')).toEqual(['abc', ' ', '1', '2', '3', '4', '5', ' x']);
    expect(split('qwen2', "I'll ALSO'S 're")).toEqual(['I', "'ll", ' ALSO', "'S", " '", 're']);
    expect(split('qwen2', 'a  \n\n b')).toEqual(['a', '  \n\n', ' b']);
    expect(split('qwen2', '..."!?\n\nx')).toEqual(['..."!?\n\n', 'x']);
    expect(split('qwen2', '   x  ')).toEqual(['  ', ' x', '  ']);
  });

  it('llama3: digits in groups of three', () => {
    expect(split('llama-bpe', '1234567 x')).toEqual(['123', '456', '7', ' x']);
  });

  it('gpt2: case-sensitive contractions, space-led runs of letters, digits, punctuation', () => {
    expect(split('gpt-2', "I'll 'LL 12345 ab!! \t")).toEqual(['I', "'ll", " '", 'LL', ' 12345', ' ab', '!!', ' \t']);
  });

  it('smollm: every digit alone first, then GPT-2 within the pieces', () => {
    expect(split('smollm', 'ab 123 x')).toEqual(['ab', ' ', '1', '2', '3', ' x']);
  });

  it('uses Unicode classes: CJK letters, Arabic-Indic digits, U+3000 as whitespace, U+FEFF as a symbol', () => {
    expect(split('qwen2', '你好١٢')).toEqual(['你好', '١', '٢']);
    expect(split('qwen2', 'a\u3000\u3000b')).toEqual(['a', '\u3000', '\u3000b']);
    expect(split('qwen2', '\ufeffx')).toEqual(['\ufeffx']);
  });
});

describe('GGUF metadata sources', () => {
  it('reads typed arrays, bigint ids, a Map and a GGUFFile alike', async () => {
    const meta = spmMetadata([['▁a', -1]]);
    const typed = { ...meta, 'tokenizer.ggml.scores': Float32Array.from(meta['tokenizer.ggml.scores']),
      'tokenizer.ggml.token_type': Int32Array.from(meta['tokenizer.ggml.token_type']), 'tokenizer.ggml.eos_token_id': 2n };
    const gguf = encodeGGUF({ metadata: [
      ['tokenizer.ggml.model', gv.str('llama')], ['tokenizer.ggml.tokens', gv.strings(meta['tokenizer.ggml.tokens'])],
      ['tokenizer.ggml.scores', gv.f32s(meta['tokenizer.ggml.scores'])],
      ['tokenizer.ggml.token_type', gv.array(GGUFType.INT32, Int32Array.from(meta['tokenizer.ggml.token_type']))],
      ['tokenizer.ggml.eos_token_id', gv.u64(2n)],
    ] });
    const expected = Tokenizer.fromGGUFMetadata(meta).encode('a a');
    for (const source of [typed, new Map(Object.entries(typed)), await readGGUF(gguf)]) {
      expect(Tokenizer.fromGGUFMetadata(source).encode('a a')).toEqual(expected);
    }
  });

  it('rejects malformed keys with the key name', () => {
    expect(() => Tokenizer.fromGGUFMetadata({ 'tokenizer.ggml.model': 'llama' })).toThrow(/no tokenizer.ggml.tokens/);
    expect(() => Tokenizer.fromGGUFMetadata({ ...spmMetadata([]), 'tokenizer.ggml.scores': [0] })).toThrow(/scores has 1 entries for 259 tokens/);
    expect(() => Tokenizer.fromGGUFMetadata({ ...spmMetadata([]), 'tokenizer.ggml.tokens': 'abc' })).toThrow(/tokenizer.ggml.tokens is string, expected an array of strings/);
  });
});

describe('decoding and streaming', () => {
  const tok = Tokenizer.fromGGUFMetadata(spmMetadata([['▁', -1]]));

  it('holds back an incomplete UTF-8 character until the token that completes it', () => {
    const llama = '🦙'; // F0 9F A6 99: four byte tokens
    const encoded = tok.encode(`a${llama}b`, { addSpecial: false, parseSpecial: false });
    expect(encoded.map((id) => tok.tokenText(id))).toEqual(['▁', '<0x61>', '<0xF0>', '<0x9F>', '<0xA6>', '<0x99>', '<0x62>']);
    const d = tok.streamingDecoder();
    const out = encoded.map((id) => d.push(id));
    expect(out).toEqual(['', 'a', '', '', '', llama, 'b']); // the first is the stripped space prefix
    expect(d.flush()).toBe('');
  });

  it('turns bytes that never complete a character into U+FFFD, at flush at the latest', () => {
    const d = tok.streamingDecoder();
    expect(d.push([3 + 0xf0, 3 + 0x9f])).toBe('');
    expect(d.flush()).toBe('\ufffd');
    expect(tok.decode([3 + 0xff, 3 + 0x41])).toBe('\ufffdA');
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([tok.vocabSize])).toThrow(RangeError);
  });

  it('cleans up spaces like llama.cpp when asked', () => {
    const t = Tokenizer.fromGGUFMetadata(bpeMetadata([], 'gpt-2'));
    expect(t.cleansSpaces).toBe(true);
    expect(t.decode(t.encode("a , b . c ' d 's"), { cleanSpaces: true })).toBe("a, b. c'd's");
  });
});

describe('tokenizer.json conversion', () => {
  const bpeJson = (preTokenizer: unknown) => ({
    added_tokens: [{ id: 5, content: '<|endoftext|>', special: true }, { id: 6, content: '<think>', special: false }],
    pre_tokenizer: preTokenizer,
    model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2, Ġ: 3, Ġab: 4 }, merges: [['a', 'b'], 'Ġ ab'] },
  });

  it('recognizes the byte-level pre-tokenizers and types added tokens as the converter does', () => {
    const byteLevel = (use_regex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, use_regex });
    const split = (regex: string) => ({ type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated' }, byteLevel(false)] });
    const qwenRegex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    expect(metadataFromTokenizerJson(bpeJson(split(qwenRegex)))['tokenizer.ggml.pre']).toBe('qwen2');
    expect(metadataFromTokenizerJson(bpeJson(split(qwenRegex.replace('\\p{N}|', '\\p{N}{1,3}|'))))['tokenizer.ggml.pre']).toBe('llama-bpe');
    expect(metadataFromTokenizerJson(bpeJson(byteLevel(true)))['tokenizer.ggml.pre']).toBe('gpt-2');
    expect(metadataFromTokenizerJson(bpeJson({ type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] }))['tokenizer.ggml.pre']).toBe('smollm');
    expect(() => metadataFromTokenizerJson(bpeJson(split('\\w+')))).toThrow(/cannot tell which llama.cpp pre-tokenizer.*options.pre/);

    const meta = metadataFromTokenizerJson(bpeJson(byteLevel(true)), { eos_token: '<|endoftext|>' }, { vocabSize: 9 });
    expect(meta['tokenizer.ggml.model']).toBe('gpt2');
    expect(meta['tokenizer.ggml.merges']).toEqual(['a b', 'Ġ ab']);
    expect(meta['tokenizer.ggml.tokens']).toEqual(['a', 'b', 'ab', 'Ġ', 'Ġab', '<|endoftext|>', '<think>', '[PAD7]', '[PAD8]']);
    expect(meta['tokenizer.ggml.token_type']).toEqual([NORMAL, NORMAL, NORMAL, NORMAL, NORMAL, CONTROL, USER_DEFINED, TokenType.UNUSED, TokenType.UNUSED]);
    expect(meta['tokenizer.ggml.eos_token_id']).toBe(5);
  });

  it('turns a SentencePiece BPE (byte_fallback) into "llama" scored by merge rank, and reads Unigram scores', () => {
    const spm = metadataFromTokenizerJson({
      added_tokens: [{ id: 0, content: '<unk>', special: true }, { id: 1, content: '<s>', special: true }],
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
      post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }] },
      model: { type: 'BPE', byte_fallback: true, unk_token: '<unk>', vocab: { '<unk>': 0, '<s>': 1, '<0x0A>': 2, '▁': 3, a: 4, '▁a': 5 }, merges: ['▁ a'] },
    });
    expect(spm['tokenizer.ggml.model']).toBe('llama');
    expect(spm['tokenizer.ggml.token_type']).toEqual([UNKNOWN, CONTROL, BYTE, NORMAL, NORMAL, NORMAL]);
    expect(spm['tokenizer.ggml.scores']).toEqual([-1, -1, -1, -1, -1, -0]);
    expect(spm['tokenizer.ggml.add_space_prefix']).toBe(true);
    expect(spm['tokenizer.ggml.bos_token_id']).toBe(1);
    expect(spm['tokenizer.ggml.add_bos_token']).toBe(true);
    const t = Tokenizer.fromGGUFMetadata(spm);
    expect(t.encode('a\n')).toEqual([1, 5, 2]);

    const unigram = metadataFromTokenizerJson({
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always' },
      model: { type: 'Unigram', unk_id: 0, vocab: [['<unk>', 0], ['▁a', -1.5], ['a', -3.25]] },
    });
    expect(unigram['tokenizer.ggml.scores']).toEqual([0, -1.5, -3.25]);
    expect(unigram['tokenizer.ggml.token_type']).toEqual([UNKNOWN, NORMAL, NORMAL]);
  });
});
