// What the model benchmark runs (prompt, decode length, file names) and its rooflines, shared by
// Node, the Chromium page and llama.cpp so all three time the same work. Browser-safe: no Node.
import type { GGUFFile } from '../src/formats/gguf-reader';
import { rng } from '../test/random';

/** Bumped when the benchmark file's content changes, so a stale cached file is not reused. */
export const MODEL_FILE_VERSION = 1;
export type BenchWeightType = 'Q8_0' | 'Q4_0';
export const benchWeightTypes: BenchWeightType[] = ['Q8_0', 'Q4_0'];

/** Under bench/results/tmp/ (gitignored); the Chromium page fetches it from there. */
export function modelFileName(type: BenchWeightType): string {
  return `smollm2-135m-shape-${type.toLowerCase()}-v${MODEL_FILE_VERSION}.gguf`;
}

export interface ModelBenchPlan {
  quick: boolean;
  /** BOS, then seeded ids from the whole vocabulary. */
  prompt: number[];
  /** Generated tokens: the first comes from the prefill, the rest are decode steps. */
  decodeTokens: number;
  /** One prefill chunk's worth (64, our session's default chunk) and a short decode compile every kernel first. */
  warmupPrompt: number[];
  /** KV slots for a session: prompt + generated tokens. */
  contextLength: number;
}

export function benchPlan(quick: boolean, nVocab = 49152): ModelBenchPlan {
  const promptTokens = quick ? 128 : 512;
  const decodeTokens = quick ? 16 : 32;
  const ids = (n: number, seed: number) => {
    const r = rng(seed);
    return [1, ...Array.from({ length: n - 1 }, () => 3 + Math.floor(r() * (nVocab - 3)))];
  };
  return { quick, prompt: ids(promptTokens, 7), decodeTokens, warmupPrompt: ids(64, 8), contextLength: promptTokens + decodeTokens + 64 };
}

/** What a forward pass must read and compute, from the file's tensors. */
export interface ModelCost {
  /** Every weight byte a decode step reads: all tensors (the tied embedding once, as the output head). */
  weightBytes: number;
  /** Elements of the per-layer matrices (each used by every token). */
  layerParams: number;
  /** Elements of the output head (used once per prefill: logits of the last row only). */
  headParams: number;
  layers: number;
  heads: number;
  headDim: number;
}

export function modelCost(file: GGUFFile): ModelCost {
  const arch = file.getString('general.architecture') ?? 'llama';
  const num = (key: string) => file.getNumber(`${arch}.${key}`) ?? NaN;
  const heads = num('attention.head_count');
  const head = file.tensors.find((t) => t.name === 'output.weight') ?? file.tensors.find((t) => t.name === 'token_embd.weight');
  return {
    weightBytes: file.tensors.reduce((sum, t) => sum + (t.nbytes ?? 0), 0),
    layerParams: file.tensors.filter((t) => t.name.startsWith('blk.') && t.dims.length === 2).reduce((sum, t) => sum + t.elements, 0),
    headParams: head?.elements ?? 0,
    layers: num('block_count'),
    heads,
    headDim: num('embedding_length') / heads,
  };
}

export interface Rooflines {
  /** Decode: copy bandwidth / weight bytes per token. */
  decodeTokensPerSecond: number;
  /**
   * Prefill of `promptTokens`: the lower of the compute bound (FMA throughput / flops per token:
   * matmuls, causal attention, the head once) and the bandwidth bound (weights read once per
   * `chunk` tokens).
   */
  prefillTokensPerSecond: number;
  prefillBound: 'compute' | 'bandwidth';
  prefillGflopPerToken: number;
}

export function rooflines(cost: ModelCost, copyGBps: number, fmaGflops: number, promptTokens: number, chunk = 64): Rooflines {
  const attentionFlops = cost.layers * 4 * cost.heads * cost.headDim * ((promptTokens + 1) / 2);
  const flopsPerToken = 2 * cost.layerParams + (2 * cost.headParams) / promptTokens + attentionFlops;
  const compute = (fmaGflops * 1e9) / flopsPerToken;
  const bandwidth = (copyGBps * 1e9 * Math.min(chunk, promptTokens)) / cost.weightBytes;
  return {
    decodeTokensPerSecond: (copyGBps * 1e9) / cost.weightBytes,
    prefillTokensPerSecond: Math.min(compute, bandwidth),
    prefillBound: compute <= bandwidth ? 'compute' : 'bandwidth',
    prefillGflopPerToken: flopsPerToken / 1e9,
  };
}
