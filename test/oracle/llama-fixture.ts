// A tiny seeded llama-architecture GGUF: the metadata and tensor names/shapes llama.cpp expects,
// weights with scales like a trained model's (so logits are far from flat), and a SentencePiece
// ("llama") vocabulary with <unk>, <s>, </s>, all 256 byte tokens for byte fallback, and a few
// merges. The same fixture feeds llama.cpp (the oracle), the f64 reference and our GPU model.

import { GGMLType } from '../../src/formats/ggml-types';
import { GGUFType, type GGUFValue, gv } from '../../src/formats/gguf';
import { type GGUFTensorSpec, type GGUFWriteSpec, encodeGGUF } from '../../src/formats/gguf-writer';

export interface LlamaFixtureConfig {
  seed: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  nLayer: number;
  nFf: number;
  contextLength: number;
  rmsEps: number;
  ropeBase: number;
  /**
   * GGML type of the 2-D weight matrices (F32 by default), or a function of the tensor name for
   * mixed files like llama.cpp's Q4_K_M; norms stay F32.
   */
  matrixType: number | ((tensorName: string) => number);
  /** GGML type for token_embd.weight (default: matrixType). */
  embeddingType?: number;
  /** llama (default); qwen2 adds Q/K/V biases; qwen3 adds per-head Q/K RMSNorm. Both use NeoX RoPE in llama.cpp. */
  architecture?: 'llama' | 'qwen2' | 'qwen3';
  /** No output.weight: the output head is token_embd.weight. */
  tiedOutput?: boolean;
}

export const defaultLlamaFixture: LlamaFixtureConfig = {
  seed: 1234, nEmbd: 64, nHead: 4, nHeadKv: 2, nLayer: 2, nFf: 128, contextLength: 256,
  rmsEps: 1e-5, ropeBase: 10000, matrixType: GGMLType.F32,
};

/** SentencePiece token types (llama.cpp's llama_token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

const WORDS = ['▁the', '▁a', '▁is', '▁of', '▁and', '▁to', '▁in', '▁hello', '▁world', '▁cat', '▁sat', '▁on', '▁mat', '▁it'];
const PIECES = ['▁t', '▁h', '▁w', '▁c', '▁s', '▁m', '▁o', '▁i', 'th', 'he', 'in', 'er', 'an', 'on', 'at', 'll', 'lo', 'el', 'or', 'ld', 'nd', 'is', 'it', 'hel', 'ell', 'llo', 'wor', 'orl'];
const CHARS = ['▁', ...'abcdefghijklmnopqrstuvwxyz', ...'.,!?\'', ...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'];

/** The fixture's vocabulary: tokens, SentencePiece scores (higher merges first) and token types. */
export function llamaFixtureVocab(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.BYTE);
    scores.push(0);
  }
  // Longer pieces score higher so that whole words win; single characters score lowest.
  const normal = [...WORDS, ...PIECES, ...CHARS];
  normal.forEach((t, i) => {
    tokens.push(t);
    types.push(TokenType.NORMAL);
    scores.push(-i);
  });
  return { tokens, scores, types };
}

/** mulberry32 + Box-Muller: seeded normals. */
function normals(seed: number) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (n: number, std: number, mean = 0): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const m = std * Math.sqrt(-2 * Math.log(Math.max(uniform(), 1e-12)));
      const th = 2 * Math.PI * uniform();
      out[i] = mean + m * Math.cos(th);
      if (i + 1 < n) out[i + 1] = mean + m * Math.sin(th);
    }
    return out;
  };
}

/** The write spec (metadata + tensors as f32 data with their target types). */
export function llamaFixtureSpec(overrides: Partial<LlamaFixtureConfig> = {}): { spec: GGUFWriteSpec; config: LlamaFixtureConfig } {
  const c = { ...defaultLlamaFixture, ...overrides };
  const headDim = c.nEmbd / c.nHead;
  const kvDim = c.nHeadKv * headDim;
  const vocab = llamaFixtureVocab();
  const nVocab = vocab.tokens.length;
  const randn = normals(c.seed);
  const typeOf = (name: string) => (typeof c.matrixType === 'function' ? c.matrixType(name) : c.matrixType);

  const arch = c.architecture ?? 'llama';
  const metadata: [string, GGUFValue][] = [
    ['general.architecture', gv.str(arch)],
    ['general.name', gv.str(`tokenwise-fixture-${arch}-${c.seed}`)],
    [`${arch}.context_length`, gv.u32(c.contextLength)],
    [`${arch}.embedding_length`, gv.u32(c.nEmbd)],
    [`${arch}.block_count`, gv.u32(c.nLayer)],
    [`${arch}.feed_forward_length`, gv.u32(c.nFf)],
    [`${arch}.attention.head_count`, gv.u32(c.nHead)],
    [`${arch}.attention.head_count_kv`, gv.u32(c.nHeadKv)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gv.f32(c.rmsEps)],
    [`${arch}.rope.freq_base`, gv.f32(c.ropeBase)],
    [`${arch}.rope.dimension_count`, gv.u32(headDim)],
    [`${arch}.vocab_size`, gv.u32(nVocab)],
    ['tokenizer.ggml.model', gv.str('llama')],
    ['tokenizer.ggml.tokens', gv.strings(vocab.tokens)],
    ['tokenizer.ggml.scores', gv.f32s(vocab.scores)],
    ['tokenizer.ggml.token_type', gv.array(GGUFType.INT32, Int32Array.from(vocab.types))],
    ['tokenizer.ggml.unknown_token_id', gv.u32(0)],
    ['tokenizer.ggml.bos_token_id', gv.u32(1)],
    ['tokenizer.ggml.eos_token_id', gv.u32(2)],
    ['tokenizer.ggml.add_bos_token', gv.bool(true)],
    ['tokenizer.ggml.add_eos_token', gv.bool(false)],
  ];

  // Scales: unit-variance embeddings, 1/sqrt(fan_in) projections (a bit hotter for the output so
  // logits spread over several units), norms near 1.
  const matrix = (name: string, cols: number, rows: number, gain = 1): GGUFTensorSpec =>
    ({ name, dims: [cols, rows], type: typeOf(name), f32: randn(cols * rows, gain / Math.sqrt(cols)) });
  const norm = (name: string, n: number): GGUFTensorSpec => ({ name, dims: [n], type: GGMLType.F32, f32: randn(n, 0.1, 1) });

  const tensors: GGUFTensorSpec[] = [
    { name: 'token_embd.weight', dims: [c.nEmbd, nVocab], type: c.embeddingType ?? typeOf('token_embd.weight'), f32: randn(c.nEmbd * nVocab, 1) },
  ];
  for (let l = 0; l < c.nLayer; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      norm(`${p}attn_norm.weight`, c.nEmbd),
      matrix(`${p}attn_q.weight`, c.nEmbd, c.nEmbd, 2),
      matrix(`${p}attn_k.weight`, c.nEmbd, kvDim, 2),
      matrix(`${p}attn_v.weight`, c.nEmbd, kvDim),
      matrix(`${p}attn_output.weight`, c.nEmbd, c.nEmbd),
      norm(`${p}ffn_norm.weight`, c.nEmbd),
      matrix(`${p}ffn_gate.weight`, c.nEmbd, c.nFf),
      matrix(`${p}ffn_up.weight`, c.nEmbd, c.nFf),
      matrix(`${p}ffn_down.weight`, c.nFf, c.nEmbd),
    );
    const bias = (name: string, n: number): GGUFTensorSpec => ({ name, dims: [n], type: GGMLType.F32, f32: randn(n, 0.5) });
    if (arch === 'qwen2') tensors.push(bias(`${p}attn_q.bias`, c.nEmbd), bias(`${p}attn_k.bias`, kvDim), bias(`${p}attn_v.bias`, kvDim));
    if (arch === 'qwen3') tensors.push(norm(`${p}attn_q_norm.weight`, headDim), norm(`${p}attn_k_norm.weight`, headDim));
  }
  tensors.push(norm('output_norm.weight', c.nEmbd));
  if (!c.tiedOutput) tensors.push(matrix('output.weight', c.nEmbd, nVocab, 4));
  return { spec: { metadata, tensors }, config: c };
}

/** The fixture as GGUF bytes. */
export function llamaFixture(overrides: Partial<LlamaFixtureConfig> = {}): Uint8Array {
  return encodeGGUF(llamaFixtureSpec(overrides).spec);
}
