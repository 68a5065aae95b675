// The vocabulary as llama.cpp loads it from GGUF metadata (llama_vocab::impl::load): tokens with
// scores and attributes, merge ranks, special token ids with llama.cpp's defaults, BOS/EOS and
// space-prefix settings, and the special tokens that are matched literally in input text.

import { type MetadataSource, MetadataReader } from './metadata';
import { type PreTokenizer, preTokenizerFor } from './pre-tokenizers';
import { type SpecialTokenIds, applyStripQuirks, inferSpecialTokens } from './special-tokens';
import { TokenAttr, attrOfType } from './token-types';
import { byteTokenName, utf8Length } from './unicode';

/** tokenizer.ggml.model values handled here: SentencePiece ("llama") and byte-level BPE ("gpt2"). */
export type TokenizerModel = 'llama' | 'gpt2';

const ID_KEYS: [keyof SpecialTokenIds, string][] = [
  ['bos', 'bos_token_id'], ['eos', 'eos_token_id'], ['eot', 'eot_token_id'], ['eom', 'eom_token_id'],
  ['unk', 'unknown_token_id'], ['sep', 'seperator_token_id'], ['pad', 'padding_token_id'], ['mask', 'mask_token_id'],
  ['fimPre', 'fim_pre_token_id'], ['fimSuf', 'fim_suf_token_id'], ['fimMid', 'fim_mid_token_id'],
  ['fimPad', 'fim_pad_token_id'], ['fimRep', 'fim_rep_token_id'], ['fimSep', 'fim_sep_token_id'],
  // deprecated spellings of the first three FIM ids
  ['fimPre', 'prefix_token_id'], ['fimSuf', 'suffix_token_id'], ['fimMid', 'middle_token_id'],
];

export class Vocabulary {
  readonly size: number;
  /** Special tokens (control, user-defined, unknown) longest first: the order they are matched in text. */
  readonly specialTokensLongestFirst: readonly number[];
  private readonly tokenToId = new Map<string, number>();
  private readonly mergeRanks = new Map<string, number>();
  private readonly byteTokens: (number | undefined)[] = [];

  private constructor(
    readonly model: TokenizerModel,
    readonly tokens: readonly string[],
    readonly scores: Float32Array,
    readonly attrs: Uint16Array,
    merges: readonly string[],
    readonly special: Readonly<SpecialTokenIds>,
    readonly endOfGeneration: ReadonlySet<number>,
    readonly addBos: boolean,
    readonly addEos: boolean,
    /** SentencePiece: a space is put before text that starts the input or follows a special token. */
    readonly addSpacePrefix: boolean,
    /** Byte-level BPE only. */
    readonly preTokenizer: PreTokenizer | undefined,
    readonly chatTemplate: string | undefined,
    names: { model?: string; pre?: string; arch?: string },
  ) {
    this.size = tokens.length;
    // Later duplicates win, as in llama.cpp's token_to_id map.
    tokens.forEach((t, id) => this.tokenToId.set(t, id));
    // The first occurrence of a pair keeps its rank (std::map::emplace).
    merges.forEach((m, rank) => {
      const space = m.indexOf(' ', 1);
      const key = space < 0 ? ' ' : m;
      if (!this.mergeRanks.has(key)) this.mergeRanks.set(key, rank);
    });
    if (model === 'llama') {
      for (let b = 0; b < 256; b++) this.byteTokens[b] = this.idOf(byteTokenName(b)) ?? (b < 0x80 ? this.idOf(String.fromCharCode(b)) : undefined);
    }
    const specials: number[] = [];
    for (let id = 0; id < this.size; id++) {
      if (attrs[id]! & (TokenAttr.CONTROL | TokenAttr.USER_DEFINED | TokenAttr.UNKNOWN)) specials.push(id);
    }
    const lengths = tokens.map(utf8Length);
    this.specialTokensLongestFirst = specials.sort((a, b) => lengths[b]! - lengths[a]! || a - b);
    applyStripQuirks(attrs, this.specialTokensLongestFirst, (t) => this.idOf(t), names);
  }

  /** Builds the vocabulary from GGUF metadata keys (tokenizer.ggml.*, tokenizer.chat_template). */
  static fromMetadata(source: MetadataSource): Vocabulary {
    const meta = new MetadataReader(source);
    const key = (k: string) => `tokenizer.ggml.${k}`;
    const model = meta.string(key('model'));
    if (model === undefined) throw new Error('tokenizer: metadata has no tokenizer.ggml.model');
    if (model !== 'llama' && model !== 'gpt2') {
      throw new Error(`tokenizer: unsupported tokenizer model ${JSON.stringify(model)} (tokenizer.ggml.model); supported: "llama" (SentencePiece), "gpt2" (byte-level BPE)`);
    }
    const pre = meta.string(key('pre'));

    const tokens = meta.strings(key('tokens'))?.map((t, i) => (t === '' ? `[EMPTY_${i}]` : t));
    if (!tokens) throw new Error('tokenizer: metadata has no tokenizer.ggml.tokens');
    const n = tokens.length;
    const scoreValues = meta.numbers(key('scores'));
    if (scoreValues && scoreValues.length < n) throw new Error(`tokenizer: tokenizer.ggml.scores has ${scoreValues.length} entries for ${n} tokens`);
    const scores = new Float32Array(n);
    if (scoreValues) for (let i = 0; i < n; i++) scores[i] = scoreValues[i]!;
    const types = meta.numbers(key('token_type'));
    if (types && types.length < n) throw new Error(`tokenizer: tokenizer.ggml.token_type has ${types.length} entries for ${n} tokens`);
    const attrs = new Uint16Array(n).fill(TokenAttr.NORMAL);
    if (types) for (let i = 0; i < n; i++) attrs[i] = attrOfType(types[i]!);

    // Defaults by model type, then the file's settings (llama.cpp's order).
    let merges: string[] = [];
    let preTokenizer: PreTokenizer | undefined;
    const ids: SpecialTokenIds = {};
    let addBos: boolean;
    let addSpacePrefix: boolean;
    if (model === 'gpt2') {
      const m = meta.strings(key('merges'));
      if (!m) throw new Error('tokenizer: a "gpt2" (byte-level BPE) vocabulary needs tokenizer.ggml.merges, and this one has none');
      merges = m;
      preTokenizer = preTokenizerFor(pre);
      Object.assign(ids, { bos: 11, eos: 11 });
      addBos = preTokenizer.addBosDefault;
      addSpacePrefix = false;
    } else {
      Object.assign(ids, { bos: 1, eos: 2, unk: 0 });
      addBos = true;
      addSpacePrefix = true;
    }
    addSpacePrefix = meta.bool(key('add_space_prefix')) ?? addSpacePrefix;
    for (const role of Object.keys(ids) as (keyof SpecialTokenIds)[]) {
      if (ids[role]! >= n) delete ids[role];
    }
    for (const [role, k] of ID_KEYS) {
      const id = meta.number(key(k));
      if (id !== undefined && id >= 0 && id < n) ids[role] = id;
    }
    addBos = meta.bool(key('add_bos_token')) ?? addBos;
    const addEos = meta.bool(key('add_eos_token')) ?? false;

    const canonical = new Map<string, number>();
    tokens.forEach((t, id) => canonical.set(t, id));
    const endOfGeneration = inferSpecialTokens(tokens, attrs, ids, (id) => canonical.get(tokens[id]!) === id);

    return new Vocabulary(model, tokens, scores, attrs, merges, ids, endOfGeneration, addBos, addEos, addSpacePrefix,
      preTokenizer, meta.string('tokenizer.chat_template'),
      { model: meta.string('general.name'), pre, arch: meta.string('general.architecture') });
  }

  idOf(text: string): number | undefined {
    return this.tokenToId.get(text);
  }

  /** Rank of the merge `left right`, lower merges first. */
  mergeRank(left: string, right: string): number | undefined {
    return this.mergeRanks.get(`${left} ${right}`);
  }

  /** SentencePiece byte fallback: the <0xXX> token of a byte (or the byte itself as a one-character token). */
  byteTokenId(byte: number): number | undefined {
    return this.byteTokens[byte];
  }

  hasAttr(id: number, attr: number): boolean {
    return (this.attrs[id]! & attr) !== 0;
  }

  isEndOfGeneration(id: number): boolean {
    return this.endOfGeneration.has(id);
  }
}
