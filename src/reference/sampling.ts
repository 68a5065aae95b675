// CPU reference for src/kernels/sampling.ts, written the way llama.cpp's sampler chain reads:
// sort, cut, renormalize, in f64. It shares the GPU's definitions (order, ties kept at each
// threshold, min-p and the penalty in the same f32 arithmetic, NaN as -inf) and its RNG, so the
// same (seed, step, row) picks the same token unless u * total falls within float rounding of a
// boundary between two tokens; `margins` says how close each decision was.

export interface SamplingRefOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
}

export interface SamplingRefResult {
  /** Every logit >= threshold is kept (f32 value; for min-p not necessarily a logit). */
  threshold: number;
  kept: number[];
  /** The distribution sampled from, over the whole vocabulary. */
  probs: Float64Array;
  /**
   * How far (relative to 1) the top-p decision was from flipping: |cumulative mass - topP| at
   * the first tie group reaching topP and at the one before it. Infinity when top-p is off.
   */
  topPMargin: number;
}

const f32 = Math.fround;

/** pcg3d (Jarzynski & Olano 2020), as in src/shaders/sampling.ts. */
export function pcg3d(x: number, y: number, z: number): [number, number, number] {
  x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
  y = (Math.imul(y, 1664525) + 1013904223) >>> 0;
  z = (Math.imul(z, 1664525) + 1013904223) >>> 0;
  x = (x + Math.imul(y, z)) >>> 0;
  y = (y + Math.imul(z, x)) >>> 0;
  z = (z + Math.imul(x, y)) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  y = (y ^ (y >>> 16)) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  x = (x + Math.imul(y, z)) >>> 0;
  y = (y + Math.imul(z, x)) >>> 0;
  z = (z + Math.imul(x, y)) >>> 0;
  return [x, y, z];
}

/** The uniform in [0, 1) (24 bits) that row `row` draws with at (seed, step). */
export function samplingUniform(seed: number, step: number, row: number): number {
  return (pcg3d(seed >>> 0, step >>> 0, row >>> 0)[0] >>> 8) / 2 ** 24;
}

/** The kept set and final distribution for one row of logits. */
export function samplingDistributionRef(logitsRow: ArrayLike<number>, options: SamplingRefOptions): SamplingRefResult {
  const vocab = logitsRow.length;
  const x = Array.from(logitsRow, (v) => (Number.isNaN(v) ? -Infinity : v));
  const order = Array.from({ length: vocab }, (_, i) => i).sort((a, b) => x[b] - x[a] || a - b);
  const max = x[order[0]];
  const temperature = options.temperature ?? 1;
  const probs = new Float64Array(vocab);
  if (temperature === 0 || max === -Infinity) {
    probs[order[0]] = 1;
    return { threshold: max, kept: [order[0]], probs, topPMargin: Infinity };
  }

  // top-k: the k-th largest logit, ties kept.
  const topK = options.topK ?? 0;
  let threshold = topK > 0 && topK < vocab ? x[order[topK - 1]] : x[order[vocab - 1]];

  // top-p over the top-k set at temperature 1: walk tie groups in descending order until the
  // cumulative probability reaches topP.
  const topP = options.topP ?? 1;
  let topPMargin = Infinity;
  if (topP < 1) {
    const candidates = order.filter((i) => x[i] >= threshold);
    const weights = candidates.map((i) => Math.exp(x[i] - max));
    const total = weights.reduce((a, b) => a + b, 0);
    let cumulative = 0;
    for (let g = 0; g < candidates.length; ) {
      let end = g;
      let groupMass = 0;
      while (end < candidates.length && x[candidates[end]] === x[candidates[g]]) groupMass += weights[end++];
      const before = cumulative;
      cumulative += groupMass / total;
      if (cumulative >= topP || end === candidates.length) {
        threshold = x[candidates[g]];
        topPMargin = Math.min(Math.abs(cumulative - topP), g > 0 ? Math.abs(before - topP) : Infinity);
        break;
      }
      g = end;
    }
  }

  // min-p: max + ln(minP), both in f32 as on the GPU.
  const minP = options.minP ?? 0;
  if (minP > 0) threshold = Math.max(threshold, f32(max + f32(Math.log(minP))));

  // Temperature last, over the kept set.
  const invTemperature = f32(1 / temperature);
  const kept: number[] = [];
  let total = 0;
  for (let i = 0; i < vocab; i++) {
    if (x[i] >= threshold) {
      kept.push(i);
      probs[i] = Math.exp((x[i] - max) * invTemperature);
      total += probs[i];
    }
  }
  for (const i of kept) probs[i] /= total;
  return { threshold, kept, probs, topPMargin };
}

/**
 * Inverse CDF in vocabulary order: the first token whose cumulative probability exceeds u.
 * `boundaryDistance(token)` is how far u is from that token's edges of the CDF (0 when u sits
 * exactly on one): a GPU pick that differs from `token` is explained by rounding only if the
 * reference CDF at the GPU token's edge is within the f32 error of u.
 */
export function drawRef(probs: Float64Array, u: number): { token: number; cdfEdges: (token: number) => [number, number] } {
  const cdf = new Float64Array(probs.length);
  let running = 0;
  for (let i = 0; i < probs.length; i++) cdf[i] = running += probs[i];
  let token = -1;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] > 0) {
      token = i;
      if (cdf[i] > u) break;
    }
  }
  return { token, cdfEdges: (t: number) => [cdf[t] - probs[t], cdf[t]] };
}

/** Repetition penalty on a copy of logits [rows][vocab]: each distinct listed id once, as the GPU does it (multiply by f32(1/penalty) for positive logits). */
export function repetitionPenaltyRef(logits: Float32Array, rows: number, vocab: number, ids: ArrayLike<number>, penalty: number): Float32Array {
  const out = Float32Array.from(logits);
  const distinct = new Set(Array.from(ids).filter((id) => id < vocab));
  const inverse = f32(1 / penalty);
  const p = f32(penalty);
  for (let r = 0; r < rows; r++) {
    for (const id of distinct) {
      const v = out[r * vocab + id];
      out[r * vocab + id] = v > 0 ? v * inverse : v * p;
    }
  }
  return out;
}
