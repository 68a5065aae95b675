// Unicode helpers shared by the tokenizers: the character classes llama.cpp's pre-tokenizers test
// (letter, number, whitespace), UTF-8 conversion, and GPT-2's byte <-> printable-character map.

import { CLASS_RANGES, WHITESPACE } from './unicode-classes';

/** Character classes of one code point, as llama.cpp's unicode_cpt_flags uses them. */
export const CharClass = {
  Letter: 1, // \p{L}
  Number: 2, // \p{N}
  Whitespace: 4, // llama.cpp's whitespace set: Unicode's White_Space property
} as const;

// Letter and number classes come from llama.cpp's own Unicode table (unicode-classes.ts), not the
// JS engine's: engines differ in Unicode version, and llama.cpp's table decides its tokenization.
let starts: Uint32Array | undefined;
let classes: Uint8Array | undefined;
let bmpClasses: Uint8Array | undefined;

function decodeRanges(): void {
  const entries = CLASS_RANGES.split(',');
  starts = new Uint32Array(entries.length);
  classes = new Uint8Array(entries.length);
  let at = 0;
  entries.forEach((e, i) => {
    at += parseInt(e.slice(0, -1), 36);
    starts![i] = at;
    classes![i] = Number(e.at(-1));
  });
}

function lookup(cp: number): number {
  if (!starts) decodeRanges();
  let lo = 0;
  let hi = starts!.length - 1;
  while (lo < hi) { // last range starting at or before cp
    const mid = (lo + hi + 1) >> 1;
    if (starts![mid]! <= cp) lo = mid;
    else hi = mid - 1;
  }
  return classes![lo]!;
}

const whitespace = new Set(WHITESPACE);

/** Bit set of CharClass for code point `cp`. */
export function charClass(cp: number): number {
  if (cp < 0x10000) {
    if (!bmpClasses) {
      bmpClasses = new Uint8Array(0x10000);
      for (let c = 0; c < 0x10000; c++) bmpClasses[c] = lookup(c) | (whitespace.has(c) ? CharClass.Whitespace : 0);
    }
    return bmpClasses[cp]!;
  }
  return lookup(cp) | (whitespace.has(cp) ? CharClass.Whitespace : 0);
}

/** The code points of a string (lone surrogates become U+FFFD, as UTF-8 encoding would make them). */
export function codePoints(text: string): number[] {
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    out.push(cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp);
  }
  return out;
}

const encoder = new TextEncoder();
export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** UTF-8 length of a string without allocating. */
export function utf8Length(text: string): number {
  let n = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}

// GPT-2's byte-level alphabet: every byte becomes a printable character so that merges and
// vocabulary entries are plain strings. Printable Latin-1 bytes map to themselves, the others
// to U+0100 upwards in byte order (space becomes "Ġ", newline "Ċ").
const byteToChar: string[] = [];
const charToByte = new Map<string, number>();
{
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 0x100;
  for (let b = 0; b < 256; b++) {
    byteToChar[b] = String.fromCodePoint(keep(b) ? b : next++);
    charToByte.set(byteToChar[b]!, b);
  }
}

/** UTF-8 bytes of `text`, each written as its byte-level character. */
export function byteLevelEncode(text: string): string {
  let out = '';
  for (const b of utf8Encode(text)) out += byteToChar[b]!;
  return out;
}

/** The byte a byte-level character stands for, or undefined for characters outside the alphabet. */
export function byteLevelCharToByte(ch: string): number | undefined {
  return charToByte.get(ch);
}

/** "<0x0A>"-style name of a byte token (upper-case hex, as SentencePiece writes them). */
export function byteTokenName(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}
