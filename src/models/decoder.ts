// The llama-family decoder's forward pass, top to bottom like llama2.c's forward(): embed, then
// per layer norm, QKV, RoPE, KV write, attention, output projection, residual, norm, SwiGLU FFN,
// residual; then the final norm and the logits of the rows asked for. One call records every
// dispatch of one step into a compute pass; nothing is read back.
import type { GGUFFile } from '../formats/gguf-reader';
import { type Binding, type Gpu, check } from '../gpu';
import { swiGlu } from '../kernels/activation';
import { type AttentionArgs, type AttentionMask, attention, attentionMass } from '../kernels/attention';
import { addInPlace, copy } from '../kernels/elementwise';
import { embedding } from '../kernels/embedding';
import { type KvCache, kvWrite } from '../kernels/kv-cache';
import { type QuantizedWeight, matmul } from '../kernels/matmul';
import { llamaCppActivationRounding, quantizeActivations } from '../kernels/quantize-activations';
import { rmsNorm } from '../kernels/norm';
import { rope } from '../kernels/rope';
import { packRows } from '../kernels/vision-prune';
import { type DecoderConfig, decoderConfigFromGGUF } from './config';
import { type HFCheckpoint, decoderConfigFromHF, hfTensorSource } from './huggingface';
import { type DecoderWeights, type LoadProgress, type TensorSource, destroyDecoderWeights, ggufTensorSource, loadDecoderWeights } from './weights';

/** Activations for up to `maxTokens` tokens per step, allocated once and reused. */
export interface DecoderScratch {
  maxTokens: number;
  x: GPUBuffer; // residual stream [T][hidden]
  h: GPUBuffer; // normed [T][hidden]
  q: GPUBuffer; // [T][heads][headDim]
  k: GPUBuffer; // [T][kvHeads][headDim]
  v: GPUBuffer;
  attn: GPUBuffer; // [T][heads][headDim]
  lse: GPUBuffer; // [T][heads]: each attention row's log-sum-exp (for attention mass)
  gate: GPUBuffer; // [T][ffn]
  up: GPUBuffer;
  act: GPUBuffer;
  /** [rows][vocab] logits of the rows asked for: the last row, or all of at most logitRows rows. */
  logits: GPUBuffer;
  /** Rows a step asking for every row's logits may have (≤ maxTokens: a long prefill step needs only its last row's). */
  logitRows: number;
  /** Activations rounded as llama.cpp rounds them (only with `roundActivationsLikeLlamaCpp`). */
  rounded: GPUBuffer | null;
}

export interface DecoderOptions {
  /**
   * Round each matmul's input the way llama.cpp's CPU backend does for that weight type (8-bit
   * blocks for quantized weights, f16 for F16). Off by default (exact f32 inputs are more
   * accurate); on, logits can be compared with llama.cpp's value for value.
   */
  roundActivationsLikeLlamaCpp?: boolean;
}

/** One forward step over `count` new tokens. */
export interface DecoderStep {
  count: number;
  /** u32 token ids [count]. */
  ids: Binding;
  /** u32 RoPE positions [count] (prefix + depth for tree tokens). */
  positions: Binding;
  /** u32 logical KV slots [count] the new tokens' K/V go to. */
  slots: Binding;
  /** Logical slot of the first new token; the new tokens take queryStart..queryStart+count-1. */
  queryStart: number;
  /** Valid KV slots after this step's write (usually queryStart + count). */
  kvLen: number;
  mask: AttentionMask;
  /** Which rows get logits: the last one (prefill, decode) or all (speculative verification). */
  logits: 'last' | 'all';
  /** Layers to leave out (self-speculative drafting, A9): their K/V at these slots are not written. */
  skipLayers?: ReadonlySet<number>;
  /**
   * Attention mass each key receives (KV-cache policies): per layer, mass[l] f32 [kvHeads][stride]
   * gets the sum over query rows [from, to) and the query heads of each kv head of their attention
   * probabilities (added to what is there with `accumulate`, else replacing it).
   */
  mass?: { buffers: Binding[]; stride: number; rows: [number, number]; accumulate: boolean; noise?: { seed: number; temperature: number } };
  /**
   * Copies the first `rows` new tokens' rotated K and their V to row `dstRow` on of k[l] and v[l]
   * (f32 [rows][kvHeads][headDim]), per layer: a policy's sink tokens, placed again later.
   */
  capture?: { k: GPUBuffer[]; v: GPUBuffer[]; rows: number; dstRow: number };
  /**
   * Input rows f32 [count][hidden] used instead of looking `ids` up in the embedding table: image
   * embeddings from a vision projector, spliced into the sequence (VLMs).
   */
  embeddings?: Binding;
  /** Rows of `embeddings` when fewer than `count`: the first rows come from it, the rest are looked up from `ids`. */
  embeddingRows?: number;
  /** Per-layer attention masks chosen on the GPU (TokenSelect, TidalDecode); `mask` when absent. */
  layerAttention?: LayerAttention;
  /**
   * Layers from each level's `fromLayer` on hold fewer tokens than the ones below (FastV or ToDRE
   * pruned image tokens from them): their K/V go to the level's `slots` and they attend causally
   * over `kvLen` slots from `queryStart`, their own slot numbering. Levels in ascending fromLayer.
   */
  deep?: DeepLayers[];
}

/** Layers from `fromLayer` on, with their own slots; `prune`: only some of this step's rows reach them. */
export interface DeepLayers {
  fromLayer: number;
  slots: Binding;
  queryStart: number;
  kvLen: number;
  /**
   * Before layer fromLayer, only rows `rows` (u32 [count], ascending, indices into the rows that
   * reached the layer below) go on, their positions gathered into `positions` (u32 [count]).
   * `choose`, when given, records them on the GPU after layer fromLayer − 1's attention (FastV's
   * scores); otherwise they were written before the step.
   */
  prune?: { count: number; rows: Binding; positions: Binding; choose?(pass: GPUComputePassEncoder, args: LayerAttentionArgs & { lse: Binding }): void };
}

/** A layer's attention inputs, as a sparse attention policy sees them. */
export type LayerAttentionArgs = Omit<AttentionArgs, 'out' | 'lse' | 'mask' | 'path' | 'splits' | 'keyBias'>;

export interface LayerAttention {
  /** The mask layer `layer` attends with; may first record a pass that picks the keys. */
  mask(pass: GPUComputePassEncoder, layer: number, args: LayerAttentionArgs): AttentionMask;
  /** After the layer's attention, with each query row's log-sum-exp. */
  after?(pass: GPUComputePassEncoder, layer: number, args: LayerAttentionArgs & { lse: Binding }): void;
}

export class Decoder {
  private constructor(
    readonly gpu: Gpu,
    readonly config: DecoderConfig,
    readonly weights: DecoderWeights,
    readonly options: DecoderOptions,
  ) {}

  static async load(gpu: Gpu, file: GGUFFile, onProgress?: (p: LoadProgress) => void, options: DecoderOptions = {}): Promise<Decoder> {
    return Decoder.fromTensors(gpu, decoderConfigFromGGUF(file), ggufTensorSource(file), onProgress, options);
  }

  /** From a Hugging Face checkpoint: config.json and safetensors weights (one file or shards). */
  static async loadSafetensors(gpu: Gpu, checkpoint: HFCheckpoint, onProgress?: (p: LoadProgress) => void, options: DecoderOptions = {}): Promise<Decoder> {
    const config = decoderConfigFromHF(checkpoint.config);
    return Decoder.fromTensors(gpu, config, hfTensorSource(checkpoint.weights, checkpoint.config), onProgress, options);
  }

  /** From tensors under GGUF names (see models/weights TensorSource) and a config. */
  static async fromTensors(gpu: Gpu, config: DecoderConfig, tensors: TensorSource, onProgress?: (p: LoadProgress) => void, options: DecoderOptions = {}): Promise<Decoder> {
    return new Decoder(gpu, config, await loadDecoderWeights(gpu, tensors, config, onProgress), options);
  }

  createScratch(maxTokens: number, logitRows = maxTokens): DecoderScratch {
    const c = this.config;
    const f32 = (elements: number, label: string) => this.gpu.buffer(elements * 4, label);
    const rows = Math.max(1, Math.min(logitRows, maxTokens));
    return {
      maxTokens,
      x: f32(maxTokens * c.hidden, 'x'),
      h: f32(maxTokens * c.hidden, 'h'),
      q: f32(maxTokens * c.heads * c.headDim, 'q'),
      k: f32(maxTokens * c.kvHeads * c.headDim, 'k'),
      v: f32(maxTokens * c.kvHeads * c.headDim, 'v'),
      attn: f32(maxTokens * c.heads * c.headDim, 'attn'),
      lse: f32(maxTokens * c.heads, 'attention lse'),
      gate: f32(maxTokens * c.ffn, 'gate'),
      up: f32(maxTokens * c.ffn, 'up'),
      act: f32(maxTokens * c.ffn, 'act'),
      logits: f32(rows * c.vocabSize, 'logits'),
      logitRows: rows,
      rounded: this.options.roundActivationsLikeLlamaCpp ? f32(maxTokens * Math.max(c.hidden, c.heads * c.headDim, c.ffn), 'rounded activations') : null,
    };
  }

  /** Records one forward step into `pass`: K/V of the new tokens into `cache`, logits into scratch.logits. */
  forward(pass: GPUComputePassEncoder, s: DecoderScratch, cache: KvCache[], step: DecoderStep): void {
    const { gpu, config: c, weights: w } = this;
    let T = step.count;
    check(T >= 1 && T <= s.maxTokens, () => `decoder: ${T} tokens in one step, scratch holds ${s.maxTokens}`);
    check(step.logits === 'last' || T <= s.logitRows, () => `decoder: logits of ${T} rows asked for, scratch holds ${s.logitRows}`);
    check(cache.length === c.layers, () => `decoder: ${cache.length} KV caches for ${c.layers} layers`);
    const levels = step.deep ?? [];
    check(levels.every((d, i) => d.fromLayer >= 1 && d.fromLayer < c.layers && (i === 0 || d.fromLayer > levels[i - 1].fromLayer)), 'decoder: deep levels need ascending 1 <= fromLayer < layers');
    check(!levels.length || (step.mask.kind === 'causal' && !step.layerAttention && !step.skipLayers && !step.mass && !step.capture), 'decoder: deep layers need a plain causal step');
    check(levels.every((d) => !d.prune || (d.prune.count >= 1 && d.prune.count <= T && step.logits === 'last')), 'decoder: pruning keeps 1..count rows, with last-row logits');

    const embeddingRows = step.embeddings ? step.embeddingRows ?? T : 0;
    if (embeddingRows < T) embedding(gpu, pass, { table: w.embedding, ids: step.ids, out: s.x, count: T });
    if (embeddingRows > 0) copy(gpu, pass, { src: step.embeddings!, dst: s.x, n: embeddingRows * c.hidden });

    let { positions, slots, queryStart, kvLen } = step;
    w.layers.forEach((layer, l) => {
      if (step.skipLayers?.has(l)) return;
      const level = levels.find((d) => d.fromLayer === l);
      if (level) {
        const { prune } = level;
        if (prune) {
          // FastV / ToDRE: only the chosen rows go on, with their own positions.
          packRows(gpu, pass, { x: s.x, ids: prune.rows, count: prune.count, width: c.hidden, out: s.h });
          copy(gpu, pass, { src: s.h, dst: s.x, n: prune.count * c.hidden });
          packRows(gpu, pass, { x: positions, ids: prune.rows, count: prune.count, width: 1, out: prune.positions, type: 'u32' });
          positions = prune.positions;
          T = prune.count;
        }
        ({ slots, queryStart, kvLen } = level);
      }
      // Attention block.
      rmsNorm(gpu, pass, { x: s.x, weight: layer.attnNorm, out: s.h, rows: T, n: c.hidden, eps: c.rmsEps });
      this.project(pass, s, { x: s.h, w: layer.wq, y: s.q, M: T, bias: layer.bq });
      this.project(pass, s, { x: s.h, w: layer.wk, y: s.k, M: T, bias: layer.bk });
      this.project(pass, s, { x: s.h, w: layer.wv, y: s.v, M: T, bias: layer.bv });
      if (layer.qNorm && layer.kNorm) {
        rmsNorm(gpu, pass, { x: s.q, weight: layer.qNorm, rows: T * c.heads, n: c.headDim, eps: c.rmsEps });
        rmsNorm(gpu, pass, { x: s.k, weight: layer.kNorm, rows: T * c.kvHeads, n: c.headDim, eps: c.rmsEps });
      }
      const ropeArgs = { table: w.ropeTable, positions, tokens: T, headDim: c.headDim, ropeDim: c.ropeDim, layout: c.ropeLayout } as const;
      rope(gpu, pass, { ...ropeArgs, x: s.q, heads: c.heads });
      rope(gpu, pass, { ...ropeArgs, x: s.k, heads: c.kvHeads });
      kvWrite(gpu, pass, { cache: cache[l], k: s.k, v: s.v, slots, count: T });
      if (step.capture) {
        const row = c.kvHeads * c.headDim;
        const at = { n: step.capture.rows * row, dstOffset: step.capture.dstRow * row };
        copy(gpu, pass, { src: s.k, dst: step.capture.k[l], ...at });
        copy(gpu, pass, { src: s.v, dst: step.capture.v[l], ...at });
      }
      const layerArgs: LayerAttentionArgs = {
        q: s.q, cache: cache[l], T, numHeads: c.heads, kvLen, queryStart, scale: 1 / Math.sqrt(c.headDim),
      };
      const attentionArgs = { ...layerArgs, mask: step.layerAttention?.mask(pass, l, layerArgs) ?? step.mask };
      attention(gpu, pass, { ...attentionArgs, out: s.attn, lse: s.lse });
      step.layerAttention?.after?.(pass, l, { ...layerArgs, lse: s.lse });
      levels.find((d) => d.fromLayer === l + 1)?.prune?.choose?.(pass, { ...layerArgs, lse: s.lse });
      if (step.mass) {
        const { buffers, stride, rows, accumulate, noise } = step.mass;
        attentionMass(gpu, pass, { ...attentionArgs, lse: s.lse, mass: buffers[l], massStride: stride, queryRange: rows, accumulate, noise });
      }
      this.project(pass, s, { x: s.attn, w: layer.wo, y: s.h, M: T });
      addInPlace(gpu, pass, { x: s.x, y: s.h, n: T * c.hidden });

      // Feed-forward block.
      rmsNorm(gpu, pass, { x: s.x, weight: layer.ffnNorm, out: s.h, rows: T, n: c.hidden, eps: c.rmsEps });
      this.project(pass, s, { x: s.h, w: layer.gate, y: s.gate, M: T });
      this.project(pass, s, { x: s.h, w: layer.up, y: s.up, M: T });
      swiGlu(gpu, pass, { gate: s.gate, up: s.up, out: s.act, rows: T, n: c.ffn });
      this.project(pass, s, { x: s.act, w: layer.down, y: s.h, M: T });
      addInPlace(gpu, pass, { x: s.x, y: s.h, n: T * c.hidden });
    });

    // Logits, only for the rows asked for.
    if (step.logits === 'all') {
      rmsNorm(gpu, pass, { x: s.x, weight: w.outputNorm, out: s.h, rows: T, n: c.hidden, eps: c.rmsEps });
    } else {
      copy(gpu, pass, { src: s.x, dst: s.h, n: c.hidden, srcOffset: (T - 1) * c.hidden });
      rmsNorm(gpu, pass, { x: s.h, weight: w.outputNorm, rows: 1, n: c.hidden, eps: c.rmsEps });
    }
    this.project(pass, s, { x: s.h, w: w.output, y: s.logits, M: step.logits === 'all' ? T : 1 });
  }

  /** y = x · Wᵀ (+ bias), with x rounded first when emulating llama.cpp. */
  private project(pass: GPUComputePassEncoder, s: DecoderScratch, args: { x: Binding; w: QuantizedWeight; y: Binding; M: number; bias?: Binding }): void {
    const rule = s.rounded ? llamaCppActivationRounding(args.w.type) : null;
    if (rule && s.rounded) {
      quantizeActivations(this.gpu, pass, { x: args.x, out: s.rounded, count: args.M * args.w.cols, rule });
      matmul(this.gpu, pass, { ...args, x: s.rounded });
    } else {
      matmul(this.gpu, pass, args);
    }
  }

  destroy(): void {
    destroyDecoderWeights(this.weights);
  }
}
