// Hugging Face tokenizer.json (+ tokenizer_config.json) to the GGUF tokenizer metadata llama.cpp's
// convert_hf_to_gguf.py would write, so one code path (and one oracle) serves both sources:
//   - byte-level BPE (a ByteLevel pre-tokenizer): tokenizer.ggml.model "gpt2", merges as "a b",
//     the pre-tokenizer named from its split regex;
//   - SentencePiece BPE (byte_fallback, "▁" for spaces: Llama-2, TinyLlama, Mistral): "llama";
//     tokenizer.json has merges but no scores, so each piece scores minus the rank of the first
//     merge that makes it, which orders pieces as SentencePiece's own scores do;
//   - Unigram (SentencePiece): "llama" with the scores the file lists.
// Added tokens become CONTROL when marked special or when they look like control tokens
// ("<|...|>"), USER_DEFINED otherwise, as the converter does.

import { SUPPORTED_PRE_TOKENIZERS } from './pre-tokenizers';
import { TokenType } from './token-types';

export interface TokenizerJsonOptions {
  /** tokenizer.ggml.pre for a byte-level vocabulary whose pre-tokenizer is not recognized. */
  pre?: string;
  /** Pad the vocabulary to this size with unused "[PAD<id>]" tokens (config.json's vocab_size). */
  vocabSize?: number;
  /** config.json's bos_token_id / eos_token_id, which override tokenizer_config.json. */
  bosTokenId?: number;
  eosTokenId?: number;
}

// The split regexes of tokenizer.json files and the tokenizer.ggml.pre llama.cpp uses for them.
const SPLIT_REGEX_PRE: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'llama-bpe',
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'qwen2',
};

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? v as Json : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

interface AddedToken { id: number; content: string; special: boolean }

export function metadataFromTokenizerJson(tokenizerJson: unknown, tokenizerConfig: unknown = {}, options: TokenizerJsonOptions = {}): Record<string, unknown> {
  const json = obj(tokenizerJson);
  const config = obj(tokenizerConfig);
  const model = obj(json['model']);
  const modelType = model['type'];
  if (modelType !== 'BPE' && modelType !== 'Unigram') {
    throw new Error(`tokenizer.json: model type ${JSON.stringify(modelType)} is not supported (BPE or Unigram)`);
  }

  // id -> text, and scores for Unigram.
  const texts: string[] = [];
  const unigramScores: number[] = [];
  if (modelType === 'Unigram') {
    list(model['vocab']).forEach((entry, id) => {
      const [text, score] = entry as [string, number];
      texts[id] = text;
      unigramScores[id] = score;
    });
  } else {
    for (const [text, id] of Object.entries(obj(model['vocab']))) texts[id as number] = text;
  }
  const added: AddedToken[] = list(json['added_tokens']).map((t) => {
    const a = obj(t);
    return { id: a['id'] as number, content: a['content'] as string, special: a['special'] === true };
  });
  for (const a of added) texts[a.id] = a.content;

  const kind = modelType === 'Unigram' ? 'llama' : bpeKind(json, model);
  const n = Math.max(texts.length, options.vocabSize ?? 0);
  const tokens: string[] = [];
  const types: number[] = [];
  const addedById = new Map(added.map((a) => [a.id, a]));
  const unkText = modelType === 'Unigram' ? texts[model['unk_id'] as number] : (model['unk_token'] as string | null | undefined) ?? undefined;
  for (let id = 0; id < n; id++) {
    const text = texts[id];
    const a = addedById.get(id);
    if (text === undefined) {
      tokens.push(`[PAD${id}]`);
      types.push(TokenType.UNUSED);
    } else if (kind === 'llama' && /^<0x[0-9A-Fa-f]{2}>$/.test(text)) {
      tokens.push(text);
      types.push(TokenType.BYTE);
    } else if (kind === 'llama' && text === unkText) {
      tokens.push(text);
      types.push(TokenType.UNKNOWN);
    } else if (a) {
      const control = a.special || looksLikeControl(text);
      tokens.push(control ? text : text.replaceAll('▁', ' '));
      types.push(control ? TokenType.CONTROL : TokenType.USER_DEFINED);
    } else {
      tokens.push(text);
      types.push(TokenType.NORMAL);
    }
  }

  const meta: Record<string, unknown> = {
    'tokenizer.ggml.model': kind,
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': types,
  };
  const merges = list(model['merges']).map((m) => (Array.isArray(m) ? m.join(' ') : String(m)));
  if (kind === 'gpt2') {
    meta['tokenizer.ggml.pre'] = options.pre ?? detectPre(json['pre_tokenizer']);
    meta['tokenizer.ggml.merges'] = merges;
  } else {
    meta['tokenizer.ggml.scores'] = modelType === 'Unigram' ? tokens.map((_, id) => Math.fround(unigramScores[id] ?? 0)) : scoresFromMerges(tokens, merges);
    meta['tokenizer.ggml.add_space_prefix'] = addsSpacePrefix(json);
  }

  // Special token ids: config.json's (options) over tokenizer_config.json's names.
  const idOfText = (v: unknown): number | undefined => {
    const text = typeof v === 'string' ? v : (obj(v)['content'] as string | undefined);
    if (text === undefined) return undefined;
    const a = added.find((t) => t.content === text);
    return a ? a.id : undefined;
  };
  const setId = (key: string, id: number | undefined) => { if (id !== undefined) meta[`tokenizer.ggml.${key}`] = id; };
  setId('bos_token_id', options.bosTokenId ?? idOfText(config['bos_token']));
  setId('eos_token_id', options.eosTokenId ?? idOfText(config['eos_token']));
  const unkId = unkText === undefined ? -1 : tokens.indexOf(unkText);
  setId('unknown_token_id', idOfText(config['unk_token']) ?? (unkId >= 0 ? unkId : undefined));
  setId('padding_token_id', idOfText(config['pad_token']));

  const processor = specialsFromPostProcessor(json['post_processor']);
  if (meta['tokenizer.ggml.bos_token_id'] === undefined && processor.bos !== undefined) setId('bos_token_id', idOfText(processor.bos));
  const addBos = config['add_bos_token'] ?? (processor.bos !== undefined ? true : undefined);
  const addEos = config['add_eos_token'] ?? (processor.eos !== undefined ? true : undefined);
  if (typeof addBos === 'boolean') meta['tokenizer.ggml.add_bos_token'] = addBos;
  if (typeof addEos === 'boolean') meta['tokenizer.ggml.add_eos_token'] = addEos;

  const template = chatTemplateOf(config['chat_template']);
  if (template !== undefined) meta['tokenizer.chat_template'] = template;
  return meta;
}

/** convert_hf_to_gguf.py's does_token_look_special. */
function looksLikeControl(text: string): boolean {
  return ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(text) ||
    (text.startsWith('<|') && text.endsWith('|>')) ||
    (text.startsWith('<｜') && text.endsWith('｜>')) ||
    (text.startsWith('<unused') && text.endsWith('>'));
}

/** The steps of a normalizer, pre-tokenizer or decoder, flattening Sequence. */
function steps(v: unknown): Json[] {
  const o = obj(v);
  if (o['type'] === 'Sequence') return [...list(o['normalizers']), ...list(o['pretokenizers']), ...list(o['decoders'])].flatMap(steps);
  return o['type'] === undefined ? [] : [o];
}

function bpeKind(json: Json, model: Json): 'llama' | 'gpt2' {
  const all = [...steps(json['normalizer']), ...steps(json['pre_tokenizer']), ...steps(json['decoder'])];
  if (model['byte_fallback'] === true) return 'llama';
  if (all.some((s) => s['type'] === 'ByteLevel')) return 'gpt2';
  if (all.some((s) => s['type'] === 'Metaspace' || (s['type'] === 'Replace' && s['content'] === '▁'))) return 'llama';
  throw new Error('tokenizer.json: a BPE model that is neither byte-level (ByteLevel) nor SentencePiece-style (byte_fallback, "▁" for spaces)');
}

function detectPre(preTokenizer: unknown): string {
  const parts = steps(preTokenizer);
  const types = parts.map((p) => p['type']).join(',');
  const byteLevelSplits = (p: Json | undefined) => p?.['type'] === 'ByteLevel' && p['use_regex'] !== false;
  if (types === 'Split,ByteLevel' && !byteLevelSplits(parts[1])) {
    const regex = obj(parts[0]!['pattern'])['Regex'];
    const pre = typeof regex === 'string' ? SPLIT_REGEX_PRE[regex] : undefined;
    if (pre) return pre;
  }
  if (types === 'ByteLevel' && byteLevelSplits(parts[0])) return 'gpt-2';
  if (types === 'Digits,ByteLevel' && parts[0]!['individual_digits'] === true && byteLevelSplits(parts[1])) return 'smollm';
  throw new Error(`tokenizer.json: cannot tell which llama.cpp pre-tokenizer matches this pre_tokenizer (${types || 'none'}); ` +
    `pass options.pre, one of: ${SUPPORTED_PRE_TOKENIZERS.join(', ')}`);
}

/**
 * SentencePiece BPE scores: a merged piece scores minus the rank of the first merge making it, so
 * higher-priority merges win as in SentencePiece. Pieces no merge makes (single characters, bytes,
 * specials) are never looked up as a merge result; they score below every merge.
 */
function scoresFromMerges(tokens: readonly string[], merges: readonly string[]): number[] {
  const firstRank = new Map<string, number>();
  merges.forEach((m, rank) => {
    const space = m.indexOf(' ', 1);
    const merged = space < 0 ? m : m.slice(0, space) + m.slice(space + 1);
    if (!firstRank.has(merged)) firstRank.set(merged, rank);
  });
  return tokens.map((t) => -(firstRank.get(t) ?? merges.length));
}

function addsSpacePrefix(json: Json): boolean {
  for (const s of [...steps(json['normalizer']), ...steps(json['pre_tokenizer'])]) {
    if (s['type'] === 'Prepend' && s['prepend'] === '▁') return true;
    if (s['type'] === 'Metaspace') return s['prepend_scheme'] !== undefined ? s['prepend_scheme'] !== 'never' : s['add_prefix_space'] !== false;
  }
  return false;
}

/** BOS/EOS that a TemplateProcessing post-processor puts around a single sequence. */
function specialsFromPostProcessor(v: unknown): { bos?: string; eos?: string } {
  const p = steps(v).find((s) => s['type'] === 'TemplateProcessing');
  const single = list(p?.['single']).map(obj);
  const special = (item: Json | undefined) => obj(item?.['SpecialToken'])['id'] as string | undefined;
  return { bos: special(single[0]), eos: single.length > 1 ? special(single.at(-1)) : undefined };
}

function chatTemplateOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  const named = list(v).map(obj);
  const pick = named.find((t) => t['name'] === 'default') ?? named[0];
  return typeof pick?.['template'] === 'string' ? pick['template'] : undefined;
}
