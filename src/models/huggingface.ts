// Hugging Face checkpoints (config.json + safetensors) for the llama family: config.json to a
// DecoderConfig, and the checkpoint's tensor names to the GGUF names the weight loader plans with.
//
// RoPE: HF llama rotates halves (rotate_half, NeoX-style) with Q/K weights as trained, which is why
// convert_hf_to_gguf.py permutes llama's Q/K rows for llama.cpp's adjacent-pair ("normal") RoPE.
// Loading the HF weights as they are therefore takes ropeLayout 'neox' for every architecture
// here; nothing is permuted.
import type { SafetensorsTensors } from '../formats/safetensors';
import type { RopeScaling } from '../kernels/rope';
import { DECODER_ARCHITECTURES, type DecoderArchitecture, type DecoderConfig, ModelFormatError, validateDecoderConfig } from './config';
import type { SourceTensor, TensorSource } from './weights';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A Hugging Face checkpoint: config.json (parsed) and its weights (readSafetensors / readShardedSafetensors). */
export interface HFCheckpoint {
  config: unknown;
  weights: SafetensorsTensors;
}

function configObject(config: unknown): Json {
  if (!isObject(config)) throw new ModelFormatError('bad-model', 'config.json is not a JSON object');
  return config;
}

export function decoderConfigFromHF(json: unknown): DecoderConfig {
  const c = configObject(json);
  const modelType = c['model_type'];
  if (typeof modelType !== 'string') throw new ModelFormatError('bad-model', 'config.json has no model_type');
  if (!DECODER_ARCHITECTURES.includes(modelType as DecoderArchitecture)) {
    throw new ModelFormatError('unsupported-architecture', `model_type "${modelType}" is not supported; supported: ${DECODER_ARCHITECTURES.join(', ')}`);
  }
  const arch = modelType as DecoderArchitecture;
  const optional = (key: string): number | undefined => {
    const v = c[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelFormatError('bad-model', `config.json ${key} is ${JSON.stringify(v)}, not a number`);
    return v;
  };
  const need = (key: string): number => {
    const v = optional(key);
    if (v === undefined) throw new ModelFormatError('bad-model', `config.json ${key} is missing`);
    return v;
  };

  const act = c['hidden_act'] ?? 'silu';
  if (act !== 'silu') throw new ModelFormatError('unsupported-architecture', `hidden_act "${String(act)}" is not supported (silu)`);
  if (arch === 'llama' && (c['attention_bias'] === true || c['mlp_bias'] === true)) {
    throw new ModelFormatError('unsupported-architecture', 'llama with attention_bias or mlp_bias is not supported');
  }

  const hidden = need('hidden_size');
  const heads = need('num_attention_heads');
  const headDim = optional('head_dim') ?? hidden / heads;
  // transformers 5 moves rope_theta and rope_scaling into rope_parameters.
  const ropeParameters = isObject(c['rope_parameters']) ? c['rope_parameters'] : undefined;
  const ropeBase = optional('rope_theta') ?? (typeof ropeParameters?.['rope_theta'] === 'number' ? ropeParameters['rope_theta'] : 10000);
  const config: DecoderConfig = {
    architecture: arch,
    vocabSize: need('vocab_size'),
    hidden,
    layers: need('num_hidden_layers'),
    heads,
    kvHeads: optional('num_key_value_heads') ?? heads,
    headDim,
    ffn: need('intermediate_size'),
    rmsEps: optional('rms_norm_eps') ?? 1e-6,
    ropeBase,
    ropeDim: Math.round(headDim * (optional('partial_rotary_factor') ?? 1)),
    ropeLayout: 'neox',
    ropeScaling: ropeScalingFromHF(c['rope_scaling'] ?? ropeParameters),
    contextLength: optional('max_position_embeddings') ?? 2048,
  };
  if (!(config.rmsEps > 0)) throw new ModelFormatError('bad-model', `config.json rms_norm_eps ${config.rmsEps} must be positive`);
  if (!(config.ropeBase > 1)) throw new ModelFormatError('bad-model', `config.json rope_theta ${config.ropeBase} must be over 1`);
  validateDecoderConfig(config);
  return config;
}

function ropeScalingFromHF(v: unknown): RopeScaling {
  if (v === undefined || v === null) return { type: 'none' };
  if (!isObject(v)) throw new ModelFormatError('bad-model', `config.json rope_scaling is ${JSON.stringify(v)}, not an object`);
  const type = v['rope_type'] ?? v['type'] ?? 'default';
  const num = (key: string): number => {
    const x = v[key];
    if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) throw new ModelFormatError('bad-model', `config.json rope_scaling.${key} is ${JSON.stringify(x)}, not a positive number`);
    return x;
  };
  if (type === 'default') return { type: 'none' };
  if (type === 'linear') return { type: 'linear', factor: num('factor') };
  if (type === 'llama3') {
    const scaling: RopeScaling = {
      type: 'llama3', factor: num('factor'), lowFreqFactor: num('low_freq_factor'), highFreqFactor: num('high_freq_factor'),
      originalMaxPositionEmbeddings: num('original_max_position_embeddings'),
    };
    if (scaling.highFreqFactor <= scaling.lowFreqFactor) throw new ModelFormatError('bad-model', 'config.json rope_scaling: high_freq_factor must be over low_freq_factor');
    return scaling;
  }
  throw new ModelFormatError('unsupported-architecture', `RoPE scaling "${String(type)}" is not supported (supported: default, linear, llama3)`);
}

/** The checkpoint's name for a GGUF tensor name the decoder plans with, or undefined. */
export function hfTensorName(ggufName: string): string | undefined {
  const global: Record<string, string> = { 'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight' };
  if (global[ggufName]) return global[ggufName];
  const m = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(ggufName);
  const layer: Record<string, string> = {
    attn_norm: 'input_layernorm', attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj',
    attn_output: 'self_attn.o_proj', attn_q_norm: 'self_attn.q_norm', attn_k_norm: 'self_attn.k_norm',
    ffn_norm: 'post_attention_layernorm', ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
  };
  const part = m && Object.hasOwn(layer, m[2]!) ? layer[m[2]!] : undefined;
  return m && part ? `model.layers.${m[1]}.${part}.${m[3]}` : undefined;
}

/**
 * The checkpoint's tensors under GGUF names, for the weight loader. With tie_word_embeddings the
 * output head is the embedding table (an lm_head.weight in the file is ignored, as transformers
 * ignores it); without, lm_head.weight must be there.
 */
export function hfTensorSource(weights: SafetensorsTensors, config: unknown): TensorSource {
  const tied = configObject(config)['tie_word_embeddings'] === true;
  if (!tied && !weights.tensor('lm_head.weight')) {
    throw new ModelFormatError('bad-model', 'cannot load this model: missing tensor lm_head.weight (config.json has no tie_word_embeddings: true)');
  }
  return {
    tensor(name): SourceTensor | undefined {
      if (tied && name === 'output.weight') return undefined;
      const hfName = hfTensorName(name);
      const info = hfName === undefined ? undefined : weights.tensor(hfName);
      if (!info) return undefined;
      return {
        type: info.ggmlType,
        typeLabel: info.ggmlType === undefined ? `dtype ${info.dtype} (supported: F32, F16, BF16)` : `dtype ${info.dtype}`,
        dims: [...info.shape].reverse(),
        elements: info.elements,
        nbytes: info.nbytes,
        read: () => weights.readTensor(info),
      };
    },
    nameInFile: (name) => hfTensorName(name) ?? name,
  };
}

/** Options for Tokenizer.fromTokenizerJson from config.json: vocabulary padding and BOS/EOS ids. */
export function tokenizerOptionsFromHFConfig(config: unknown): { vocabSize?: number; bosTokenId?: number; eosTokenId?: number } {
  const c = configObject(config);
  const id = (v: unknown) => (Array.isArray(v) ? v[0] : v);
  const int = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined);
  return { vocabSize: int(c['vocab_size']), bosTokenId: int(id(c['bos_token_id'])), eosTokenId: int(id(c['eos_token_id'])) };
}
