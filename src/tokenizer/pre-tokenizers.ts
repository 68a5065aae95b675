// Pre-tokenizers of byte-level BPE vocabularies: how text is cut into words before merges run,
// selected by tokenizer.ggml.pre exactly as llama.cpp selects them (llama-vocab.cpp, load()), and
// split the way llama.cpp's hand-written matchers split (unicode.cpp, unicode_regex_split_custom_*),
// which is what its tokenization follows, not a JS regex engine's reading of the original pattern.

import { CharClass, charClass, codePoints } from './unicode';

export interface PreTokenizer {
  /** The splitting family: 'llama3' | 'qwen2' | 'smollm' | 'gpt2'. */
  readonly family: SplitFamily;
  /** Cut `text` into words; their concatenation is `text`. */
  split(text: string): string[];
  /** A word that is itself a vocabulary entry becomes that token without merging (llama3). */
  readonly ignoreMerges: boolean;
  /** llama.cpp's detokenizer removes spaces before punctuation (clean_up_tokenization_spaces). */
  readonly cleanSpaces: boolean;
  /** BOS default for this pre-tokenizer, before tokenizer.ggml.add_bos_token overrides it. */
  readonly addBosDefault: boolean;
}

type SplitFamily = 'llama3' | 'qwen2' | 'smollm' | 'gpt2';

interface Settings {
  family: SplitFamily;
  ignoreMerges?: boolean;
  cleanSpaces?: boolean;
  addBos?: boolean;
}

// tokenizer.ggml.pre values and the settings llama.cpp gives them; only those whose regex is one
// of the four families here. Flags llama.cpp leaves at their BPE defaults are omitted
// (clean_spaces true, ignore_merges false, add_bos false).
const PRE_TOKENIZERS: Record<string, Settings> = {
  ...aliases(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2', 'jina-v5-nano'],
    { family: 'llama3', ignoreMerges: true, addBos: true }),
  ...aliases(['dbrx', 'smaug-bpe'], { family: 'llama3' }),
  ...aliases(['qwen2', 'deepseek-r1-qwen', 'kormo', 'f2llmv2'], { family: 'qwen2', cleanSpaces: false }),
  ...aliases(['stablelm2', 'megrez'], { family: 'qwen2' }),
  ...aliases(['smollm', 'command-r'], { family: 'smollm', cleanSpaces: false }),
  ...aliases(['starcoder', 'refact', 'codeshell', 'exaone', 'minerva-7b', 'mellum2'], { family: 'smollm' }),
  ...aliases(['gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0', 'mellum',
    'modern-bert', 'jina-v1-en', 'jina-v2-code', 'roberta-bpe', 'mpt', 'olmo', 'jais', 'exaone4'], { family: 'gpt2' }),
  ...aliases(['trillion', 'granite-docling'], { family: 'gpt2', cleanSpaces: false }),
};

function aliases(names: string[], settings: Settings): Record<string, Settings> {
  return Object.fromEntries(names.map((n) => [n, settings]));
}

export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = Object.keys(PRE_TOKENIZERS);

/** The pre-tokenizer for a tokenizer.ggml.pre value; a clear error for any other value. */
export function preTokenizerFor(pre: string | undefined): PreTokenizer {
  const settings = pre === undefined ? undefined : PRE_TOKENIZERS[pre];
  if (!settings) {
    const what = pre === undefined || pre === ''
      ? 'this BPE vocabulary has no tokenizer.ggml.pre (llama.cpp falls back to its "default" pre-tokenizer, which is not supported here)'
      : `unsupported BPE pre-tokenizer ${JSON.stringify(pre)} (tokenizer.ggml.pre)`;
    throw new Error(`tokenizer: ${what}; supported: ${SUPPORTED_PRE_TOKENIZERS.join(', ')}`);
  }
  const { family } = settings;
  return {
    family,
    split: (text) => splitWords(family, text),
    ignoreMerges: settings.ignoreMerges ?? false,
    cleanSpaces: settings.cleanSpaces ?? true,
    addBosDefault: settings.addBos ?? false,
  };
}

function splitWords(family: SplitFamily, text: string): string[] {
  const cps = codePoints(text);
  const lengths: number[] = [];
  switch (family) {
    case 'llama3': splitLlama3Like(cps, 0, cps.length, 3, lengths); break;
    case 'qwen2': splitLlama3Like(cps, 0, cps.length, 1, lengths); break;
    case 'gpt2': splitGpt2(cps, 0, cps.length, lengths); break;
    case 'smollm': {
      // Two passes, as llama.cpp runs them: every \p{N} alone, then GPT-2's split inside each piece.
      let start = 0;
      for (const len of isolateNumbers(cps)) {
        splitGpt2(cps, start, start + len, lengths);
        start += len;
      }
      break;
    }
  }
  const words: string[] = [];
  let at = 0;
  for (const len of lengths) {
    words.push(String.fromCodePoint(...cps.slice(at, at + len)));
    at += len;
  }
  return words;
}

const IN_RANGE = 8; // set for every position inside the piece: llama.cpp's `flags.as_uint() != 0`
const NONE = -1; // llama.cpp's OUT_OF_RANGE code point

/** Code point and class accessors bounded to [start, end), like llama.cpp's _get_cpt/_get_flags. */
function bounded(cps: number[], start: number, end: number) {
  return {
    cpt: (pos: number) => (pos >= start && pos < end ? cps[pos]! : NONE),
    flags: (pos: number) => (pos >= start && pos < end ? charClass(cps[pos]!) | IN_RANGE : 0),
  };
}

const isLetter = (f: number) => (f & CharClass.Letter) !== 0;
const isNumber = (f: number) => (f & CharClass.Number) !== 0;
const isSpace = (f: number) => (f & CharClass.Whitespace) !== 0;
const isOther = (f: number) => (f & (CharClass.Letter | CharClass.Number | CharClass.Whitespace)) === 0 && f !== 0;
const lower = (cp: number) => (cp >= 0x41 && cp <= 0x5a ? cp + 32 : cp); // only ASCII matters to the contractions
const ch = (s: string) => s.charCodeAt(0);
const CR = 0x0d, LF = 0x0a, SPACE = 0x20, QUOTE = 0x27;

/** Length of the contraction ('s 't 're 've 'm 'll 'd) at pos, or 0. */
function contraction(cpt: (p: number) => number, pos: number, end: number, caseFold: (cp: number) => number): number {
  if (cpt(pos) !== QUOTE || pos + 1 >= end) return 0;
  const a = caseFold(cpt(pos + 1));
  if (a === ch('s') || a === ch('t') || a === ch('m') || a === ch('d')) return 2;
  if (pos + 2 >= end) return 0;
  const b = caseFold(cpt(pos + 2));
  if ((a === ch('r') && b === ch('e')) || (a === ch('v') && b === ch('e')) || (a === ch('l') && b === ch('l'))) return 3;
  return 0;
}

/**
 * GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
 * (unicode_regex_split_custom_gpt2). Pushes word lengths (in code points) to `out`.
 */
function splitGpt2(cps: number[], start: number, end: number, out: number[]): void {
  const { cpt, flags } = bounded(cps, start, end);
  let prevEnd = start;
  const addToken = (tokenEnd: number) => {
    const len = tokenEnd - prevEnd;
    if (len > 0) out.push(len);
    prevEnd = tokenEnd;
    return len;
  };
  for (let pos = start; pos < end;) {
    const c = cpt(pos);
    const f = flags(pos);
    const n = contraction(cpt, pos, end, (x) => x);
    if (n > 0) { pos += addToken(pos + n); continue; }

    let f2 = c === SPACE ? flags(pos + 1) : f;
    if (isLetter(f2) || isNumber(f2) || isOther(f2)) {
      const same = isLetter(f2) ? isLetter : isNumber(f2) ? isNumber : isOther;
      pos += c === SPACE ? 1 : 0;
      while (same(f2)) f2 = flags(++pos);
      addToken(pos);
      continue;
    }

    let spaces = 0;
    while (isSpace(flags(pos + spaces))) spaces++;
    if (spaces > 1 && cpt(pos + spaces) !== NONE) { // \s+(?!\S): leave the last space to the next word
      pos += spaces - 1;
      addToken(pos);
      continue;
    }
    if (spaces > 0) { pos += spaces; addToken(pos); continue; }
    addToken(++pos);
  }
}

/**
 * Llama 3 (maxDigits 3) and Qwen2 (maxDigits 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * (unicode_regex_split_custom_llama3 / _qwen2).
 */
function splitLlama3Like(cps: number[], start: number, end: number, maxDigits: number, out: number[]): void {
  const { cpt, flags } = bounded(cps, start, end);
  let prevEnd = start;
  const addToken = (tokenEnd: number) => {
    const len = tokenEnd - prevEnd;
    if (len > 0) out.push(len);
    prevEnd = tokenEnd;
    return len;
  };
  for (let pos = start; pos < end;) {
    const c = cpt(pos);
    const f = flags(pos);
    const n = contraction(cpt, pos, end, lower);
    if (n > 0) { pos += addToken(pos + n); continue; }

    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(c === CR || c === LF || isNumber(f)) && (isLetter(f) || isLetter(flags(pos + 1)))) {
      pos++;
      while (isLetter(flags(pos))) pos++;
      addToken(pos);
      continue;
    }

    // \p{N}{1,maxDigits}
    if (isNumber(f)) {
      let first = pos;
      while (isNumber(flags(pos))) {
        if (++pos - first >= maxDigits) { addToken(pos); first = pos; }
      }
      addToken(pos);
      continue;
    }

    // <space>?[^\s\p{L}\p{N}]+[\r\n]*   (the first test reads `f`, not `f2`, as llama.cpp does)
    let f2 = c === SPACE ? flags(pos + 1) : f;
    if (!(isSpace(f2) || isLetter(f2) || isNumber(f2)) && f !== 0) {
      pos += c === SPACE ? 1 : 0;
      while (isOther(f2)) f2 = flags(++pos);
      for (let c2 = cpt(pos); c2 === CR || c2 === LF;) c2 = cpt(++pos);
      addToken(pos);
      continue;
    }

    let spaces = 0;
    let lastLineBreakEnd = 0;
    while (isSpace(flags(pos + spaces))) {
      const c2 = cpt(pos + spaces);
      if (c2 === CR || c2 === LF) lastLineBreakEnd = pos + spaces + 1;
      spaces++;
    }
    if (lastLineBreakEnd > 0) { pos = lastLineBreakEnd; addToken(pos); continue; } // \s*[\r\n]+
    if (spaces > 1 && cpt(pos + spaces) !== NONE) { pos += spaces - 1; addToken(pos); continue; } // \s+(?!\S)
    if (spaces > 0) { pos += spaces; addToken(pos); continue; } // \s+
    addToken(++pos);
  }
}

/** Lengths of the pieces when every \p{N} code point stands alone (llama.cpp's std::regex pass "\p{N}"). */
function isolateNumbers(cps: number[]): number[] {
  const lengths: number[] = [];
  let run = 0;
  for (const cp of cps) {
    if (isNumber(charClass(cp))) {
      if (run > 0) lengths.push(run);
      lengths.push(1);
      run = 0;
    } else {
      run++;
    }
  }
  if (run > 0) lengths.push(run);
  return lengths;
}
