// A plain float64 forward pass of a llama-architecture GGUF, written to follow llama.cpp's graph
// (build_llama) and nothing else: RMSNorm, Q/K/V projections, RoPE on adjacent pairs (llama.cpp's
// "normal" rope, which GGUF conversion permutes HF weights for), causal GQA attention, SwiGLU FFN,
// final norm, output projection (token_embd when output.weight is absent). Slow and exact: it is
// what tests compare llama.cpp and our GPU models against. Tests only.

import { GGUFError } from '../formats/gguf';
import type { GGUFFile, GGUFTensorInfo } from '../formats/gguf-reader';
import { dequantize } from '../formats/quantize';

export interface LlamaConfig {
  nVocab: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nFf: number;
  rmsEps: number;
  ropeBase: number;
  ropeDim: number;
  contextLength: number;
}

/** A matrix of `rows` rows of `cols` values (GGUF dims [cols, rows]), y = W x. */
export interface Matrix { rows: number; cols: number; data: Float64Array }

export interface LlamaLayer {
  attnNorm: Float64Array;
  wq: Matrix; wk: Matrix; wv: Matrix; wo: Matrix;
  ffnNorm: Float64Array;
  wGate: Matrix; wUp: Matrix; wDown: Matrix;
}

export interface LlamaReferenceModel {
  config: LlamaConfig;
  tokenEmbd: Matrix;
  layers: LlamaLayer[];
  outputNorm: Float64Array;
  output: Matrix;
}

export function llamaConfigFromGGUF(file: GGUFFile): LlamaConfig {
  const arch = file.getString('general.architecture');
  if (arch !== 'llama') throw new GGUFError(`expected general.architecture "llama", got ${JSON.stringify(arch)}`);
  const need = (key: string): number => {
    const v = file.getNumber(key);
    if (v === undefined) throw new GGUFError(`missing metadata ${key}`);
    return v;
  };
  const nEmbd = need('llama.embedding_length');
  const nHead = need('llama.attention.head_count');
  const headDim = file.getNumber('llama.attention.key_length') ?? nEmbd / nHead;
  const tokens = file.getArray('tokenizer.ggml.tokens');
  const embd = file.tensor('token_embd.weight');
  return {
    nVocab: file.getNumber('llama.vocab_size') ?? tokens?.items.length ?? embd?.dims[1] ?? 0,
    nEmbd,
    nLayer: need('llama.block_count'),
    nHead,
    nHeadKv: file.getNumber('llama.attention.head_count_kv') ?? nHead,
    headDim,
    nFf: need('llama.feed_forward_length'),
    rmsEps: need('llama.attention.layer_norm_rms_epsilon'),
    ropeBase: file.getNumber('llama.rope.freq_base') ?? 10000,
    ropeDim: file.getNumber('llama.rope.dimension_count') ?? headDim,
    contextLength: need('llama.context_length'),
  };
}

async function readF64(file: GGUFFile, name: string): Promise<{ info: GGUFTensorInfo; data: Float64Array }> {
  const info = file.tensor(name);
  if (!info) throw new GGUFError(`missing tensor ${name}`);
  const bytes = await file.readTensor(info);
  return { info, data: Float64Array.from(dequantize(info.type, bytes, info.elements)) };
}

async function readMatrix(file: GGUFFile, name: string, cols: number, rows: number): Promise<Matrix> {
  const { info, data } = await readF64(file, name);
  if (info.dims.length !== 2 || info.dims[0] !== cols || info.dims[1] !== rows) {
    throw new GGUFError(`tensor ${name} has dims [${info.dims.join(', ')}], expected [${cols}, ${rows}]`);
  }
  return { rows, cols, data };
}

async function readVector(file: GGUFFile, name: string, n: number): Promise<Float64Array> {
  const { info, data } = await readF64(file, name);
  if (info.elements !== n) throw new GGUFError(`tensor ${name} has ${info.elements} elements, expected ${n}`);
  return data;
}

/** Reads every weight of a llama GGUF into float64 (dequantizing quantized types). */
export async function loadLlamaReference(file: GGUFFile): Promise<LlamaReferenceModel> {
  const c = llamaConfigFromGGUF(file);
  const qDim = c.nHead * c.headDim;
  const kvDim = c.nHeadKv * c.headDim;
  const layers: LlamaLayer[] = [];
  for (let l = 0; l < c.nLayer; l++) {
    const p = `blk.${l}.`;
    layers.push({
      attnNorm: await readVector(file, `${p}attn_norm.weight`, c.nEmbd),
      wq: await readMatrix(file, `${p}attn_q.weight`, c.nEmbd, qDim),
      wk: await readMatrix(file, `${p}attn_k.weight`, c.nEmbd, kvDim),
      wv: await readMatrix(file, `${p}attn_v.weight`, c.nEmbd, kvDim),
      wo: await readMatrix(file, `${p}attn_output.weight`, qDim, c.nEmbd),
      ffnNorm: await readVector(file, `${p}ffn_norm.weight`, c.nEmbd),
      wGate: await readMatrix(file, `${p}ffn_gate.weight`, c.nEmbd, c.nFf),
      wUp: await readMatrix(file, `${p}ffn_up.weight`, c.nEmbd, c.nFf),
      wDown: await readMatrix(file, `${p}ffn_down.weight`, c.nFf, c.nEmbd),
    });
  }
  const tokenEmbd = await readMatrix(file, 'token_embd.weight', c.nEmbd, c.nVocab);
  const output = file.tensor('output.weight') ? await readMatrix(file, 'output.weight', c.nEmbd, c.nVocab) : tokenEmbd;
  return { config: c, tokenEmbd, layers, outputNorm: await readVector(file, 'output_norm.weight', c.nEmbd), output };
}

function matVec(w: Matrix, x: Float64Array): Float64Array {
  const y = new Float64Array(w.rows);
  for (let r = 0; r < w.rows; r++) {
    let s = 0;
    const o = r * w.cols;
    for (let i = 0; i < w.cols; i++) s += w.data[o + i]! * x[i]!;
    y[r] = s;
  }
  return y;
}

function rmsNorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * scale * w[i]!);
}

/** llama.cpp's normal rope: rotates (x[2i], x[2i+1]) of each head by pos * base^(-2i/ropeDim). */
function rope(x: Float64Array, nHeads: number, headDim: number, ropeDim: number, base: number, pos: number): void {
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < ropeDim; i += 2) {
      const theta = pos * Math.pow(base, -i / ropeDim);
      const cos = Math.cos(theta), sin = Math.sin(theta);
      const a = h * headDim + i;
      const x0 = x[a]!, x1 = x[a + 1]!;
      x[a] = x0 * cos - x1 * sin;
      x[a + 1] = x0 * sin + x1 * cos;
    }
  }
}

const silu = (v: number) => v / (1 + Math.exp(-v));

/**
 * Which keys a query attends to, for KV-cache policies: `keys` indexes the sequence's earlier
 * tokens (the query's own included), `positions` gives the RoPE position each key is rotated to.
 */
export interface VisibleKeys { keys: number[]; positions: number[] }

export interface LlamaForwardHooks {
  /** The input row at `pos` instead of the token's embedding (image embeddings); undefined: the token's. */
  input?(pos: number): ArrayLike<number> | undefined;
  /** The keys the token at `pos` sees in layer `layer` (default: every token up to it, at its own position). */
  visible?(layer: number, pos: number): VisibleKeys;
  /** Each query head's attention probabilities over those keys, and the scaled scores they came from. */
  observe?(layer: number, pos: number, keys: number[], probs: Float64Array[], scores: Float64Array[]): void;
  /**
   * Sparse attention (key selection): per kv head, which of the visible keys the query attends to,
   * chosen after seeing the full attention probabilities; null attends to all of them.
   */
  restrict?(layer: number, pos: number, keys: number[], probs: Float64Array[], q: Float64Array): boolean[][] | null;
}

/**
 * Logits after every position of `tokens` (row i predicts token i + 1), in float64. Tokens are at
 * positions 0.. in one sequence with a causal mask, unless `hooks` choose what each query sees.
 */
export function llamaForward(model: LlamaReferenceModel, tokens: readonly number[], hooks: LlamaForwardHooks = {}): Float64Array[] {
  const c = model.config;
  const { headDim } = c;
  const group = c.nHead / c.nHeadKv;
  // Keys are kept unrotated and turned to the position each query sees them at.
  const keys: Float64Array[][] = model.layers.map(() => []);
  const values: Float64Array[][] = model.layers.map(() => []);
  const logits: Float64Array[] = [];

  tokens.forEach((token, pos) => {
    const given = hooks.input?.(pos);
    if (!given && (!Number.isInteger(token) || token < 0 || token >= c.nVocab)) throw new RangeError(`token ${token} is outside the vocabulary (${c.nVocab})`);
    let x = given ? Float64Array.from(given) : model.tokenEmbd.data.slice(token * c.nEmbd, (token + 1) * c.nEmbd);
    model.layers.forEach((layer, l) => {
      const h = rmsNorm(x, layer.attnNorm, c.rmsEps);
      const q = matVec(layer.wq, h);
      rope(q, c.nHead, headDim, c.ropeDim, c.ropeBase, pos);
      keys[l]!.push(matVec(layer.wk, h));
      values[l]!.push(matVec(layer.wv, h));
      const seen = hooks.visible?.(l, pos) ?? { keys: Array.from({ length: pos + 1 }, (_, t) => t), positions: Array.from({ length: pos + 1 }, (_, t) => t) };
      const rotated = seen.keys.map((t, i) => {
        const k = keys[l]![t]!.slice();
        rope(k, c.nHeadKv, headDim, c.ropeDim, c.ropeBase, seen.positions[i]!);
        return k;
      });

      const scale = 1 / Math.sqrt(headDim);
      const probs: Float64Array[] = [];
      const rawScores: Float64Array[] = [];
      for (let head = 0; head < c.nHead; head++) {
        const kvHead = Math.floor(head / group);
        const scores = new Float64Array(seen.keys.length);
        let max = -Infinity;
        rotated.forEach((kt, i) => {
          let s = 0;
          for (let d = 0; d < headDim; d++) s += q[head * headDim + d]! * kt[kvHead * headDim + d]!;
          scores[i] = s * scale;
          max = Math.max(max, scores[i]!);
        });
        rawScores.push(scores.slice());
        let sum = 0;
        for (let i = 0; i < scores.length; i++) { scores[i] = Math.exp(scores[i]! - max); sum += scores[i]!; }
        for (let i = 0; i < scores.length; i++) scores[i]! /= sum;
        probs.push(scores);
      }
      // A softmax over a subset of keys is the full one restricted to them and renormalised.
      const chosen = hooks.restrict?.(l, pos, seen.keys, probs, q) ?? null;
      const attn = new Float64Array(c.nHead * headDim);
      probs.forEach((p, head) => {
        const kvHead = Math.floor(head / group);
        const weights = chosen ? p.map((x, i) => (chosen[kvHead]![i] ? x : 0)) : p;
        const total = weights.reduce((a, x) => a + x, 0);
        seen.keys.forEach((t, i) => {
          const w = weights[i]! / total;
          const vt = values[l]![t]!;
          for (let d = 0; d < headDim; d++) attn[head * headDim + d] += w * vt[kvHead * headDim + d]!;
        });
      });
      hooks.observe?.(l, pos, seen.keys, probs, rawScores);
      const o = matVec(layer.wo, attn);
      x = x.map((xv, i) => xv + o[i]!);

      const f = rmsNorm(x, layer.ffnNorm, c.rmsEps);
      const gate = matVec(layer.wGate, f);
      const up = matVec(layer.wUp, f);
      const act = gate.map((g, i) => silu(g) * up[i]!);
      const down = matVec(layer.wDown, act);
      x = x.map((xv, i) => xv + down[i]!);
    });
    logits.push(matVec(model.output, rmsNorm(x, model.outputNorm, c.rmsEps)));
  });
  return logits;
}
