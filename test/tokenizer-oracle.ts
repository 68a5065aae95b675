// llama.cpp as the tokenizer oracle: a GGUF that holds only a vocabulary (written by our GGUF
// writer from tokenizer metadata), loaded with vocab_only so that no tensors are needed, through
// the llama.cpp build that test/oracle/llama.ts and tools/llama-oracle set up.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type GGUFValue, gv } from '../src/formats/gguf';
import { encodeGGUF } from '../src/formats/gguf-writer';
import { oracleUnavailable } from './oracle/llama';

export { oracleUnavailable };

/** Typed GGUF values for tokenizer metadata given as plain values. */
function typed(key: string, value: unknown): GGUFValue {
  if (key === 'tokenizer.ggml.scores') return gv.f32s(value as number[]);
  if (key === 'tokenizer.ggml.token_type') return gv.i32s(value as number[]);
  if (typeof value === 'string') return gv.str(value);
  if (typeof value === 'boolean') return gv.bool(value);
  if (typeof value === 'number' && key.endsWith('_token_id')) return gv.u32(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return gv.strings(value);
  throw new Error(`no GGUF type chosen for metadata ${key}`);
}

/**
 * GGUF bytes with the tokenizer keys of `metadata` and the llama hyperparameters llama.cpp reads
 * even with vocab_only (their values do not matter), and no tensors.
 */
export function vocabOnlyGGUF(metadata: Record<string, unknown>): Uint8Array {
  const nVocab = (metadata['tokenizer.ggml.tokens'] as string[]).length;
  const entries: [string, GGUFValue][] = [
    ['general.architecture', gv.str('llama')],
    ['general.name', gv.str('tokenwise-vocab-only')],
    ['llama.context_length', gv.u32(256)],
    ['llama.embedding_length', gv.u32(64)],
    ['llama.block_count', gv.u32(1)],
    ['llama.feed_forward_length', gv.u32(128)],
    ['llama.attention.head_count', gv.u32(4)],
    ['llama.attention.head_count_kv', gv.u32(4)],
    ['llama.attention.layer_norm_rms_epsilon', gv.f32(1e-5)],
    ['llama.rope.dimension_count', gv.u32(16)],
    ['llama.vocab_size', gv.u32(nVocab)],
  ];
  for (const [key, value] of Object.entries(metadata)) entries.push([key, typed(key, value)]);
  return encodeGGUF({ metadata: entries });
}

export interface TokenizerOracle {
  /** llama_tokenize with add_special = false. */
  tokenize(text: string, options?: { special?: boolean }): number[];
  /** llama_detokenize with remove_special = false. */
  detokenize(tokens: readonly number[], options?: { special?: boolean }): string;
  /** What llama.cpp made of the vocabulary's special tokens. */
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly addsBos: boolean;
  isEndOfGeneration(id: number): boolean;
  close(): Promise<void>;
}

interface NodeLlamaModel {
  tokenize(text: string, special: boolean): ArrayLike<number>;
  detokenize(tokens: readonly number[], special: boolean): string;
  isEogToken(token: number): boolean;
  readonly tokens: { bos: number | null; eos: number | null; shouldPrependBosToken: boolean };
  dispose(): Promise<void>;
}

const oracleIndex = fileURLToPath(new URL('../tools/llama-oracle/index.mjs', import.meta.url));

/** Loads a vocabulary-only GGUF in llama.cpp. */
export async function openTokenizerOracle(gguf: Uint8Array): Promise<TokenizerOracle> {
  const why = oracleUnavailable();
  if (why) throw new Error(why);
  const { llama } = await import(/* @vite-ignore */ pathToFileURL(oracleIndex).href) as {
    llama(): Promise<{ loadModel(options: { modelPath: string; vocabOnly: boolean }): Promise<NodeLlamaModel> }>;
  };
  const dir = mkdtempSync(join(tmpdir(), 'tokenwise-vocab-'));
  const path = join(dir, 'vocab.gguf');
  writeFileSync(path, gguf);
  let model: NodeLlamaModel;
  try {
    model = await (await llama()).loadModel({ modelPath: path, vocabOnly: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    // node-llama-cpp returns [] for "" without asking llama.cpp, which also gives [] there.
    tokenize: (text, { special = false } = {}) => Array.from(model.tokenize(text, special), Number),
    detokenize: (tokens, { special = false } = {}) => model.detokenize(tokens, special),
    bos: model.tokens.bos ?? undefined,
    eos: model.tokens.eos ?? undefined,
    addsBos: model.tokens.shouldPrependBosToken,
    isEndOfGeneration: (id) => model.isEogToken(id),
    close: () => model.dispose(),
  };
}
