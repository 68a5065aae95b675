import { type Binding, type Gpu, check, grid } from '../gpu';
import { ROPE_WORKGROUP, ropeWgsl } from '../shaders/rope';

/**
 * How the base frequencies are stretched for contexts longer than the model was trained on.
 * - linear (HF `rope_scaling.type = "linear"`, GGUF `rope.scaling.type = linear`,
 *   `rope.scaling.factor`): every frequency divided by `factor`.
 * - llama3 (HF `rope_type = "llama3"`): long wavelengths divided by `factor`, short ones kept,
 *   a smooth blend between. GGUF files of Llama 3.1+ carry the result as the `rope_freqs.weight`
 *   tensor instead (pass it as `freqFactors` with no scaling, as llama.cpp does).
 */
export type RopeScaling =
  | { type: 'none' }
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

export interface RopeFrequencyOptions {
  /** Rotated dims (GGUF `rope.dimension_count`, HF head_dim * partial_rotary_factor); even. */
  ropeDim: number;
  /** GGUF `rope.freq_base`, HF `rope_theta` (10000 llama2, 500000 llama3, 1000000 qwen2.5/3). */
  base: number;
  scaling?: RopeScaling;
  /** GGUF `rope_freqs.weight` (ropeDim/2 values): frequency i is divided by freqFactors[i]. */
  freqFactors?: ArrayLike<number>;
}

/**
 * The ropeDim/2 rotation frequencies (radians per position), in f64:
 * theta_i = base^(-2i/ropeDim), then scaled. Same formulas as HF transformers'
 * `_compute_default_rope_parameters` / `_compute_linear_scaling_rope_parameters` /
 * `_compute_llama3_parameters` and llama.cpp's `theta_scale`, `freq_scale` and `rope_freqs`.
 */
export function ropeFrequencies({ ropeDim, base, scaling = { type: 'none' }, freqFactors }: RopeFrequencyOptions): Float64Array {
  check(Number.isInteger(ropeDim) && ropeDim >= 2 && ropeDim % 2 === 0, `ropeFrequencies: ropeDim must be a positive even integer, got ${ropeDim}`);
  check(base > 1, `ropeFrequencies: bad base ${base}`);
  const half = ropeDim / 2;
  check(!freqFactors || freqFactors.length >= half, `ropeFrequencies: freqFactors has ${freqFactors?.length} values, need ${half}`);
  const freqs = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    let freq = Math.pow(base, (-2 * i) / ropeDim);
    if (scaling.type === 'linear') {
      check(scaling.factor > 0, `ropeFrequencies: bad linear factor ${scaling.factor}`);
      freq /= scaling.factor;
    } else if (scaling.type === 'llama3') {
      const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldContext } = scaling;
      check(factor > 0 && highFreqFactor > lowFreqFactor, 'ropeFrequencies: bad llama3 scaling parameters');
      const wavelength = (2 * Math.PI) / freq;
      const lowFreqWavelength = oldContext / lowFreqFactor;
      const highFreqWavelength = oldContext / highFreqFactor;
      if (wavelength > lowFreqWavelength) {
        freq /= factor;
      } else if (wavelength >= highFreqWavelength) {
        const smooth = (oldContext / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        freq = (1 - smooth) * (freq / factor) + smooth * freq;
      }
    }
    if (freqFactors) freq /= freqFactors[i];
    freqs[i] = freq;
  }
  return freqs;
}

/**
 * Pack frequencies for the GPU: per frequency 4 u32 words, (f32 bits of freq, then freq / 2π as a
 * 64-bit fixed-point fraction of a turn, hi word and lo word, then 0). Integer multiples of a full
 * turn drop out (positions are integers), so only the fraction is kept. Upload once per model.
 */
export function ropeTable(freqs: ArrayLike<number>): Uint32Array {
  const table = new Uint32Array(freqs.length * 4);
  const asF32 = new Float32Array(1);
  const asU32 = new Uint32Array(asF32.buffer);
  for (let i = 0; i < freqs.length; i++) {
    const turns = freqs[i] / (2 * Math.PI);
    const fraction = turns - Math.floor(turns);
    // fraction * 2^32 and its remainder are exact in f64 (power-of-two scaling, Sterbenz).
    const scaled = fraction * 2 ** 32;
    let hi = Math.floor(scaled);
    let lo = Math.round((scaled - hi) * 2 ** 32);
    if (lo >= 2 ** 32) {
      lo -= 2 ** 32;
      hi += 1;
    }
    asF32[0] = freqs[i];
    table[i * 4] = asU32[0];
    table[i * 4 + 1] = hi >>> 0; // hi = 2^32 only if fraction rounds up to a whole turn: wraps to 0, correct mod 1
    table[i * 4 + 2] = lo;
  }
  return table;
}

export type RopeLayout = 'normal' | 'neox';

/** Element strides of a [tokens][heads][headDim] view into a buffer. */
export interface RopeStrides {
  /** Elements between consecutive tokens (default heads * headDim; e.g. the fused QKV row width). */
  token?: number;
  /** Elements between consecutive heads (default headDim; maxTokens * headDim for a head-major cache). */
  head?: number;
  /** Element offset of token 0, head 0 (e.g. where K starts in a fused QKV row). */
  offset?: number;
}

export interface RopeArgs {
  /** f32 tensor to rotate, laid out per `strides`. */
  x: Binding;
  /** Output (laid out per `outStrides`); omit to rotate `x` in place. Dims past ropeDim are copied. */
  out?: Binding;
  /** ropeTable(ropeFrequencies(...)), uploaded; at least ropeDim/2 entries. */
  table: Binding;
  /**
   * i32 per token (a Uint32Array of positions below 2^31 has the same bits). Any values: tree
   * positions, gaps, or Δ shifts (negative ones too) to re-rotate cached keys; rotating by a then
   * by b equals rotating by a + b.
   */
  positions?: Binding;
  /** Instead of `positions`: rotate every token by this (e.g. a Δ for a range of cached keys). */
  shift?: number;
  tokens: number;
  heads: number;
  headDim: number;
  /** Rotated dims from the start of each head (partial rotary); default headDim. */
  ropeDim?: number;
  layout: RopeLayout;
  strides?: RopeStrides;
  /** Default: the input's strides. */
  outStrides?: RopeStrides;
  /** 'exact' (default): position-independent accuracy; 'f32': f32(pos) * freq as HF computes it. */
  angles?: 'exact' | 'f32';
}

/** Rotate query or key heads by their positions (see src/shaders/rope.ts). */
export function rope(gpu: Gpu, pass: GPUComputePassEncoder, args: RopeArgs): void {
  const { tokens, heads, headDim, layout } = args;
  const ropeDim = args.ropeDim ?? headDim;
  check(Number.isInteger(tokens) && tokens >= 0 && Number.isInteger(heads) && heads >= 1, `rope: bad shape ${tokens} tokens x ${heads} heads`);
  check(Number.isInteger(headDim) && headDim >= 2 && headDim % 2 === 0, `rope: headDim must be even, got ${headDim}`);
  check(Number.isInteger(ropeDim) && ropeDim >= 2 && ropeDim % 2 === 0 && ropeDim <= headDim, `rope: ropeDim must be even and at most headDim (${headDim}), got ${ropeDim}`);
  check(layout === 'normal' || layout === 'neox', `rope: unknown layout ${layout}`);
  check((args.positions === undefined) !== (args.shift === undefined), 'rope: give exactly one of positions (a buffer) and shift (a number)');
  check(args.shift === undefined || (Number.isInteger(args.shift) && Math.abs(args.shift) < 2 ** 31), `rope: shift must be an i32, got ${args.shift}`);
  check(args.out !== args.x, 'rope: for in-place rotation leave out `out`');
  const inStrides = { token: args.strides?.token ?? heads * headDim, head: args.strides?.head ?? headDim, offset: args.strides?.offset ?? 0 };
  const outStrides = { token: args.outStrides?.token ?? inStrides.token, head: args.outStrides?.head ?? inStrides.head, offset: args.outStrides?.offset ?? inStrides.offset };
  const lastElement = (s: typeof inStrides) => s.offset + Math.max(tokens - 1, 0) * s.token + (heads - 1) * s.head + headDim;
  checkFits('rope: x', args.x, lastElement(inStrides) * 4);
  if (args.out) checkFits('rope: out', args.out, lastElement(outStrides) * 4);
  checkFits('rope: table', args.table, (ropeDim / 2) * 16);
  if (args.positions) checkFits('rope: positions', args.positions, tokens * 4);

  const variant = {
    neox: layout === 'neox',
    exactAngles: (args.angles ?? 'exact') === 'exact',
    inPlace: !args.out,
    positionBuffer: !!args.positions,
  };
  const key = `rope-${layout}-${variant.exactAngles ? 'exact' : 'f32'}${variant.inPlace ? '-in-place' : ''}${variant.positionBuffer ? '' : '-shift'}`;
  const pipeline = gpu.pipeline(key, () => ropeWgsl(variant));
  // In place the pass-through dims need no thread; out of place one thread copies each pair of them.
  const pairsPerHead = variant.inPlace ? ropeDim / 2 : headDim / 2;
  const params = new Uint32Array([
    tokens, heads, pairsPerHead, ropeDim / 2,
    inStrides.token, inStrides.head, inStrides.offset, (args.shift ?? 0) >>> 0,
    outStrides.token, outStrides.head, outStrides.offset, 0,
  ]);
  const bindings: Binding[] = [args.x, ...(args.out ? [args.out] : []), args.table, ...(args.positions ? [args.positions] : []), gpu.uniform(params)];
  gpu.dispatch(pass, pipeline, bindings, grid(Math.ceil((tokens * heads * pairsPerHead) / ROPE_WORKGROUP)));
}

/** Fail early with a named error when a binding is smaller than what the shape reads or writes. */
function checkFits(what: string, binding: Binding, bytes: number): void {
  const size = 'usage' in binding ? binding.size : (binding.size ?? binding.buffer.size - (binding.offset ?? 0));
  check(size >= bytes, () => `${what} holds ${size} bytes, the shape needs ${bytes}`);
}
