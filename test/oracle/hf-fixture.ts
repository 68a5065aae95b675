// One seeded llama-family model written two ways: as a Hugging Face checkpoint (config.json,
// safetensors with HF names and HF's un-permuted Q/K, tokenizer.json) and as the GGUF that
// llama.cpp's convert_hf_to_gguf.py would make of it (llama's Q/K rows permuted for adjacent-pair
// RoPE, llama3 scaling as a rope_freqs.weight tensor, 1-D tensors as F32). The weights are
// llamaFixtureSpec's, taken as the HF weights. The name mapping here is written out independently
// of src/models/huggingface.ts so that a mistake there shows up as a mismatch.

import { GGMLType } from '../../src/formats/ggml-types';
import { type GGUFTensorSpec, encodeGGUF } from '../../src/formats/gguf-writer';
import { dequantize, quantize } from '../../src/formats/quantize';
import { type SafetensorsTensorSpec, encodeSafetensors } from '../../src/formats/safetensors';
import { type LlamaFixtureConfig, llamaFixtureSpec, llamaFixtureVocab } from './llama-fixture';

export type HfDtype = 'F32' | 'F16' | 'BF16';

export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface HfFixtureOptions extends Partial<Omit<LlamaFixtureConfig, 'matrixType' | 'embeddingType'>> {
  /** dtype of every safetensors tensor; the GGUF gets the same values (matrices in this type, 1-D in F32). */
  dtype?: HfDtype;
  ropeScaling?: Llama3RopeScaling;
}

export interface HfFixture {
  /** The GGUF convert_hf_to_gguf.py would write. */
  gguf: Uint8Array;
  /** config.json */
  config: Record<string, unknown>;
  /** Tensors under HF names, in HF layout, in file order. */
  tensors: SafetensorsTensorSpec[];
  /** model.safetensors */
  safetensors: Uint8Array;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

const GGML_OF: Record<HfDtype, number> = { F32: GGMLType.F32, F16: GGMLType.F16, BF16: GGMLType.BF16 };

/** HF name of each GGUF name the llama fixture writes. */
function hfName(gguf: string): string {
  const global: Record<string, string> = {
    'token_embd.weight': 'model.embed_tokens.weight',
    'output_norm.weight': 'model.norm.weight',
    'output.weight': 'lm_head.weight',
  };
  if (global[gguf]) return global[gguf];
  const [, layer, rest] = /^blk\.(\d+)\.(.+)$/.exec(gguf)!;
  const perLayer: Record<string, string> = {
    'attn_norm.weight': 'input_layernorm.weight',
    'attn_q.weight': 'self_attn.q_proj.weight',
    'attn_k.weight': 'self_attn.k_proj.weight',
    'attn_v.weight': 'self_attn.v_proj.weight',
    'attn_q.bias': 'self_attn.q_proj.bias',
    'attn_k.bias': 'self_attn.k_proj.bias',
    'attn_v.bias': 'self_attn.v_proj.bias',
    'attn_q_norm.weight': 'self_attn.q_norm.weight',
    'attn_k_norm.weight': 'self_attn.k_norm.weight',
    'attn_output.weight': 'self_attn.o_proj.weight',
    'ffn_norm.weight': 'post_attention_layernorm.weight',
    'ffn_gate.weight': 'mlp.gate_proj.weight',
    'ffn_up.weight': 'mlp.up_proj.weight',
    'ffn_down.weight': 'mlp.down_proj.weight',
  };
  return `model.layers.${layer}.${perLayer[rest!]!}`;
}

/**
 * convert_hf_to_gguf.py's LlamaModel.permute for a [rows][cols] matrix of `heads` heads:
 * w.reshape(heads, 2, headDim/2, cols).swapaxes(1, 2), so GGUF row 2j+s of a head is HF row
 * s*headDim/2 + j: NeoX's pairs (j, j + headDim/2) become adjacent pairs.
 */
export function permuteForGGUF(w: Float32Array, heads: number, cols: number): Float32Array {
  const rows = w.length / cols;
  const headDim = rows / heads;
  const half = headDim / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let s = 0; s < 2; s++) {
        const from = h * headDim + s * half + j;
        const to = h * headDim + 2 * j + s;
        out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/** convert_hf_to_gguf.py's llama3 rope_freqs.weight: the factor each frequency is divided by. */
function llama3RopeFactors(s: Llama3RopeScaling, base: number, dim: number): Float32Array {
  const out = new Float32Array(dim / 2);
  const lowWavelength = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelength = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let i = 0; i < dim / 2; i++) {
    const wavelength = (2 * Math.PI) / Math.pow(base, (-2 * i) / dim);
    if (wavelength < highWavelength) out[i] = 1;
    else if (wavelength > lowWavelength) out[i] = s.factor;
    else {
      const smooth = (s.originalMaxPositionEmbeddings / wavelength - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

export function hfFixture(options: HfFixtureOptions = {}): HfFixture {
  const { dtype = 'F32', ropeScaling, ...overrides } = options;
  const { spec, config: c } = llamaFixtureSpec({ ...overrides, matrixType: GGMLType.F32 });
  const arch = c.architecture ?? 'llama';
  const headDim = c.nEmbd / c.nHead;
  const type = GGML_OF[dtype];
  // The checkpoint's values: f32 data rounded to its dtype.
  const stored = (x: Float32Array) => (dtype === 'F32' ? x : dequantize(type, quantize(type, x), x.length));

  const ggufTensors: GGUFTensorSpec[] = [];
  const tensors: SafetensorsTensorSpec[] = [];
  for (const t of spec.tensors!) {
    if (!('f32' in t)) throw new Error('llama fixture tensors are f32');
    const values = stored(t.f32);
    const [cols, rows] = t.dims as [number, number | undefined];
    tensors.push({ name: hfName(t.name), dtype, shape: rows === undefined ? [cols] : [rows, cols], f32: values });
    let gguf = values;
    if (arch === 'llama' && /attn_q\.weight$/.test(t.name)) gguf = permuteForGGUF(values, c.nHead, cols);
    if (arch === 'llama' && /attn_k\.weight$/.test(t.name)) gguf = permuteForGGUF(values, c.nHeadKv, cols);
    ggufTensors.push({ name: t.name, dims: t.dims, type: rows === undefined ? GGMLType.F32 : type, f32: gguf });
  }
  if (ropeScaling) {
    if (arch !== 'llama') throw new Error('llama3 RoPE scaling is a llama option');
    ggufTensors.push({ name: 'rope_freqs.weight', dims: [headDim / 2], type: GGMLType.F32, f32: llama3RopeFactors(ropeScaling, c.ropeBase, headDim) });
  }

  const config: Record<string, unknown> = {
    architectures: [{ llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' }[arch]],
    model_type: arch,
    hidden_size: c.nEmbd,
    num_hidden_layers: c.nLayer,
    num_attention_heads: c.nHead,
    num_key_value_heads: c.nHeadKv,
    head_dim: headDim,
    intermediate_size: c.nFf,
    hidden_act: 'silu',
    rms_norm_eps: c.rmsEps,
    rope_theta: c.ropeBase,
    rope_scaling: ropeScaling ? {
      rope_type: 'llama3', factor: ropeScaling.factor, low_freq_factor: ropeScaling.lowFreqFactor,
      high_freq_factor: ropeScaling.highFreqFactor, original_max_position_embeddings: ropeScaling.originalMaxPositionEmbeddings,
    } : null,
    max_position_embeddings: c.contextLength,
    vocab_size: llamaFixtureVocab().tokens.length,
    tie_word_embeddings: c.tiedOutput === true,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype],
  };
  return {
    gguf: encodeGGUF({ metadata: spec.metadata, tensors: ggufTensors }),
    config,
    tensors,
    safetensors: encodeSafetensors(tensors, { format: 'pt' }),
    ...fixtureTokenizerJson(),
  };
}

/** The fixture's SentencePiece vocabulary as a Unigram tokenizer.json + tokenizer_config.json. */
export function fixtureTokenizerJson(): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> } {
  const vocab = llamaFixtureVocab();
  const special = (id: number) => ({ id, content: vocab.tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    tokenizerJson: {
      version: '1.0',
      added_tokens: [special(0), special(1), special(2)],
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: false },
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
      },
      decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: false },
      model: { type: 'Unigram', unk_id: 0, byte_fallback: true, vocab: vocab.tokens.map((t, i) => [t, vocab.scores[i]]) },
    },
    tokenizerConfig: { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, add_eos_token: false },
  };
}
