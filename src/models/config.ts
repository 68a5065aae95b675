// Model hyper-parameters read from GGUF metadata, for the llama family: llama (Llama 2/3,
// TinyLlama, SmolLM2, Mistral-style), qwen2 (QKV bias) and qwen3 (per-head Q/K RMSNorm).
import type { GGUFFile } from '../formats/gguf-reader';
import type { RopeScaling } from '../kernels/rope';

export type DecoderArchitecture = 'llama' | 'qwen2' | 'qwen3';
export const DECODER_ARCHITECTURES: readonly DecoderArchitecture[] = ['llama', 'qwen2', 'qwen3'];

export interface DecoderConfig {
  architecture: DecoderArchitecture;
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  rmsEps: number;
  ropeBase: number;
  ropeDim: number;
  /** llama.cpp's "normal" RoPE (adjacent pairs; GGUF conversion permutes llama's Q/K for it) or NeoX (qwen). */
  ropeLayout: 'normal' | 'neox';
  ropeScaling: RopeScaling;
  contextLength: number;
}

/** The model kind of a file we cannot run, with the reason, for a clear error upstream. */
export class ModelFormatError extends Error {
  constructor(
    readonly kind: 'unsupported-architecture' | 'bad-model',
    message: string,
  ) {
    super(message);
    this.name = 'ModelFormatError';
  }
}

export function decoderConfigFromGGUF(file: GGUFFile): DecoderConfig {
  const architecture = file.getString('general.architecture');
  if (!architecture) throw new ModelFormatError('bad-model', 'GGUF has no general.architecture');
  if (!DECODER_ARCHITECTURES.includes(architecture as DecoderArchitecture)) {
    throw new ModelFormatError('unsupported-architecture', `architecture "${architecture}" is not supported; supported: ${DECODER_ARCHITECTURES.join(', ')}`);
  }
  const arch = architecture as DecoderArchitecture;
  const need = (key: string): number => {
    const value = file.getNumber(`${arch}.${key}`);
    if (value === undefined) throw new ModelFormatError('bad-model', `GGUF metadata ${arch}.${key} is missing`);
    return value;
  };
  const optional = (key: string) => file.getNumber(`${arch}.${key}`);

  const hidden = need('embedding_length');
  const heads = need('attention.head_count');
  const headDim = optional('attention.key_length') ?? hidden / heads;
  const embedding = file.tensor('token_embd.weight');
  const vocabSize = optional('vocab_size') ?? embedding?.dims[1] ?? file.getArray('tokenizer.ggml.tokens')?.items.length;
  if (!vocabSize) throw new ModelFormatError('bad-model', 'cannot tell the vocabulary size (no token_embd.weight)');

  const config: DecoderConfig = {
    architecture: arch,
    vocabSize,
    hidden,
    layers: need('block_count'),
    heads,
    kvHeads: optional('attention.head_count_kv') ?? heads,
    headDim,
    ffn: need('feed_forward_length'),
    rmsEps: optional('attention.layer_norm_rms_epsilon') ?? 1e-5,
    ropeBase: optional('rope.freq_base') ?? 10000,
    ropeDim: optional('rope.dimension_count') ?? headDim,
    ropeLayout: arch === 'llama' ? 'normal' : 'neox',
    ropeScaling: ropeScalingFromGGUF(file, arch),
    contextLength: optional('context_length') ?? 2048,
  };
  validateDecoderConfig(config);
  return config;
}

function ropeScalingFromGGUF(file: GGUFFile, arch: string): RopeScaling {
  const type = file.getString(`${arch}.rope.scaling.type`);
  const factor = file.getNumber(`${arch}.rope.scaling.factor`) ?? file.getNumber(`${arch}.rope.scale_linear`);
  if ((type === 'linear' || (!type && factor && factor !== 1)) && factor) return { type: 'linear', factor };
  if (type && type !== 'none' && type !== 'linear') {
    // llama3-style scaling travels as the rope_freqs.weight tensor (freq factors), read with the weights.
    if (type === 'llama3') return { type: 'none' };
    throw new ModelFormatError('unsupported-architecture', `RoPE scaling "${type}" is not supported (supported: none, linear, llama3 frequency factors)`);
  }
  return { type: 'none' };
}

/** Checks a config from any source (GGUF metadata, config.json) against what the kernels run. */
export function validateDecoderConfig(c: DecoderConfig): void {
  const positive = ['vocabSize', 'hidden', 'layers', 'heads', 'kvHeads', 'headDim', 'ffn', 'ropeDim', 'contextLength'] as const;
  for (const key of positive) {
    if (!Number.isInteger(c[key]) || c[key] <= 0) throw new ModelFormatError('bad-model', `model ${key} must be a positive integer, got ${c[key]}`);
  }
  if (c.heads % c.kvHeads !== 0) throw new ModelFormatError('bad-model', `head_count ${c.heads} is not a multiple of head_count_kv ${c.kvHeads}`);
  if (c.ropeDim > c.headDim || c.ropeDim % 2) throw new ModelFormatError('bad-model', `rope dimension ${c.ropeDim} does not fit head size ${c.headDim}`);
  if (![32, 64, 80, 96, 128].includes(c.headDim)) {
    throw new ModelFormatError('unsupported-architecture', `head size ${c.headDim} is not supported by the attention kernels (32, 64, 80, 96, 128)`);
  }
}
