import { type Binding, type Gpu, check, grid } from '../gpu';
import { SAMPLER_GREEDY, SAMPLER_MIN_P, repetitionPenaltyWgsl, samplerWgsl } from '../shaders/sampling';
import { argmax } from './softmax';

/**
 * What to sample from, applied in this order (llama.cpp's default chain): top-k, top-p (over the
 * top-k set, at temperature 1), min-p, then temperature. Repetition penalty goes before all of
 * them: see applyRepetitionPenalty() / `penalty` in sample(). Semantics in src/shaders/sampling.ts.
 */
export interface SamplingOptions {
  /** 0: greedy (argmax, ties to the lowest id). Default 1. */
  temperature?: number;
  /** Keep the k largest logits (ties at the k-th all kept). 0 or >= vocab: off. Default 0. */
  topK?: number;
  /** Keep the smallest top set whose probability reaches topP. >= 1: off. Default 1. */
  topP?: number;
  /** Keep tokens with p >= minP * p_max. 0: off. Default 0. */
  minP?: number;
  /** RNG seed (u32). The uniform of row r is a hash of (seed, step, r): same inputs, same tokens. */
  seed: number;
  /** Advance every generation step (u32), or the same u repeats. */
  step: number;
}

export interface RepetitionPenalty {
  /** u32 ids of previous tokens (duplicates and ids past the vocabulary are fine), shared by every row. */
  tokens: Binding;
  count: number;
  /** > 0; 1 is off. llama.cpp's --repeat-penalty, usually 1.0-1.3. */
  penalty: number;
}

export interface SampleArgs extends SamplingOptions {
  /** f32 [rows][vocab]. Changed in place only when `penalty` is given. */
  logits: Binding;
  /** u32 [rows]: the sampled ids. */
  tokens: Binding;
  rows: number;
  vocab: number;
  penalty?: RepetitionPenalty;
  /** Optional f32 [rows][vocab]: the distribution actually sampled (zero outside the kept set). For speculative acceptance tests. */
  probs?: Binding;
  /** Optional f32 [rows]: each row's threshold; the kept set is the logits >= it. */
  thresholds?: Binding;
}

/** Sample one token per row of logits on the GPU. One workgroup per row; see src/shaders/sampling.ts for the method. */
export function sample(gpu: Gpu, pass: GPUComputePassEncoder, args: SampleArgs): void {
  const { rows, vocab } = args;
  check(Number.isInteger(rows) && rows >= 0 && Number.isInteger(vocab) && vocab >= 1, `sample: bad shape ${rows}x${vocab}`);
  check(vocab < 2 ** 24, `sample: vocabulary of ${vocab} is over 2^24 (counts are kept in f32)`);
  const temperature = args.temperature ?? 1;
  const topK = args.topK ?? 0;
  const topP = args.topP ?? 1;
  const minP = args.minP ?? 0;
  check(Number.isFinite(temperature) && temperature >= 0, `sample: bad temperature ${temperature}`);
  check(Number.isInteger(topK) && topK >= 0, `sample: topK must be a non-negative integer, got ${topK}`);
  check(topP >= 0 && topP <= 1, `sample: topP must be in [0, 1], got ${topP}`);
  check(minP >= 0 && minP <= 1, `sample: minP must be in [0, 1], got ${minP}`);
  check(isU32(args.seed) && isU32(args.step), `sample: seed and step must be u32, got ${args.seed}, ${args.step}`);
  const outputs = [args.tokens, args.probs, args.thresholds].filter((b): b is Binding => !!b);
  check(!outputs.includes(args.logits), 'sample: outputs must not alias the logits');

  if (args.penalty) applyRepetitionPenalty(gpu, pass, { logits: args.logits, rows, vocab, ...args.penalty });
  if (temperature === 0 && !args.probs && !args.thresholds) {
    // Greedy needs only the argmax; its kernel is a fraction of the sampler's size.
    argmax(gpu, pass, { x: args.logits, out: args.tokens, rows, n: vocab });
    return;
  }

  const variant = { subgroups: gpu.features.subgroups, writeProbs: !!args.probs, writeThreshold: !!args.thresholds };
  const key = `sample${variant.subgroups ? '-subgroups' : ''}${variant.writeProbs ? '-probs' : ''}${variant.writeThreshold ? '-thresholds' : ''}`;
  const pipeline = gpu.pipeline(key, () => samplerWgsl(variant));
  const params = new ArrayBuffer(48);
  const words = new Uint32Array(params);
  const floats = new Float32Array(params);
  words[0] = rows;
  words[1] = vocab;
  words[2] = topK >= vocab ? 0 : topK;
  words[3] = (temperature === 0 ? SAMPLER_GREEDY : 0) | (minP > 0 ? SAMPLER_MIN_P : 0);
  floats[4] = topP;
  floats[5] = minP > 0 ? Math.log(minP) : 0; // ln in f64 here, one rounding to f32: the reference matches it bit for bit
  floats[6] = temperature > 0 ? 1 / temperature : 0;
  floats[7] = -Infinity;
  words[8] = args.seed;
  words[9] = args.step;
  const bindings = [args.logits, args.tokens, ...(args.probs ? [args.probs] : []), ...(args.thresholds ? [args.thresholds] : []), gpu.uniform(words)];
  gpu.dispatch(pass, pipeline, bindings, grid(rows));
}

/**
 * Repetition penalty in place on logits [rows][vocab] (llama.cpp style): each distinct listed id
 * has a positive logit divided by `penalty` (as a multiply by the f32 of 1/penalty) and a
 * non-positive one multiplied by it.
 */
export function applyRepetitionPenalty(gpu: Gpu, pass: GPUComputePassEncoder, args: { logits: Binding; rows: number; vocab: number } & RepetitionPenalty): void {
  check(Number.isInteger(args.count) && args.count >= 0, `applyRepetitionPenalty: bad count ${args.count}`);
  check(Number.isFinite(args.penalty) && args.penalty > 0, `applyRepetitionPenalty: penalty must be positive, got ${args.penalty}`);
  check(args.tokens !== args.logits, 'applyRepetitionPenalty: the id list must be a separate buffer');
  if (args.count === 0 || args.penalty === 1 || args.rows === 0) return;
  const pipeline = gpu.pipeline('repetition-penalty', repetitionPenaltyWgsl);
  const params = new ArrayBuffer(24);
  new Uint32Array(params, 0, 4).set([args.rows, args.vocab, args.count, 0]);
  new Float32Array(params, 16, 2).set([args.penalty, 1 / args.penalty]);
  gpu.dispatch(pass, pipeline, [args.logits, args.tokens, gpu.uniform(new Uint32Array(params))], grid(args.rows));
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n < 2 ** 32;
}
