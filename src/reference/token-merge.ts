// Token merging on the CPU, in float64: the twins of kernels/token-merge mergePlan and mergeTokens.
// See src/shaders/token-merge.ts for the methods and where they depart from the papers' code.

export type MergeMethod = 'tome' | 'pitome';

/** Cosine similarity of every pair of non-protected tokens: S[a][b] for tokens protect + a, protect + b. */
export function cosineMatrix(metric: Float32Array, N: number, D: number, protect: number): Float64Array[] {
  // F.normalize: x / max(|x|, 1e-12), so a zero row is similar to nothing (0).
  const unit = Array.from({ length: N - protect }, (_, a) => {
    const row = Float64Array.from(metric.subarray((protect + a) * D, (protect + a + 1) * D));
    let squares = 0;
    for (const v of row) squares += v * v;
    const norm = Math.max(Math.sqrt(squares), 1e-12);
    return row.map((v) => v / norm);
  });
  return unit.map((u) => Float64Array.from(unit, (v) => {
    let dot = 0;
    for (let d = 0; d < D; d++) dot += u[d] * v[d];
    return dot;
  }));
}

/** PiToMe's energy of each non-protected token: mean_b ELU(S[a][b] − margin), b over all of them (a too). */
export function pitomeEnergies(S: Float64Array[], margin = 0.5): Float64Array {
  const elu = (x: number) => (x > 0 ? x : Math.exp(x) - 1);
  return Float64Array.from(S, (row) => row.reduce((sum, s) => sum + elu(s - margin), 0) / row.length);
}

/** Indices sorted by value, descending, ties to the lower index. */
const byValueDescending = (values: ArrayLike<number>, indices: number[]) => [...indices].sort((a, b) => values[b] - values[a] || a - b);

/** The most similar of `candidates` to a, ties to the lowest index. */
const bestOf = (S: Float64Array[], a: number, candidates: number[]) =>
  candidates.reduce((best, b) => (S[a][b] > S[a][best] || (S[a][b] === S[a][best] && b < best) ? b : best));

/**
 * The merge plan: plan[i] = the output token that input token i goes into, survivors numbered in
 * their original order, a merged token sharing its partner's number. Throws on a bad r.
 */
export function mergePlanReference(metric: Float32Array, N: number, D: number, r: number, protect: number, method: MergeMethod, margin = 0.5): Uint32Array {
  const M = N - protect;
  const S = cosineMatrix(metric, N, D, protect);
  const into = new Map<number, number>(); // merged token (index among the non-protected) -> its partner
  const all = Array.from({ length: M }, (_, a) => a);
  if (method === 'tome') {
    const A = all.filter((a) => a % 2 === 0);
    const B = all.filter((a) => a % 2 === 1);
    if (r > (B.length ? A.length : 0)) throw new Error(`tome: r ${r} is over the ${A.length} tokens of set A`);
    if (r > 0) {
      const best = new Map(A.map((a) => [a, bestOf(S, a, B)]));
      const score = new Float64Array(M);
      for (const a of A) score[a] = S[a][best.get(a)!];
      for (const a of byValueDescending(score, A).slice(0, r)) into.set(a, best.get(a)!);
    }
  } else {
    if (2 * r > M) throw new Error(`pitome: r ${r} is over half the ${M} mergeable tokens`);
    const ranked = byValueDescending(pitomeEnergies(S, margin), all).slice(0, 2 * r);
    const A = ranked.filter((_, rank) => rank % 2 === 0);
    const B = ranked.filter((_, rank) => rank % 2 === 1);
    for (const a of A) into.set(a, bestOf(S, a, B));
  }
  const plan = new Uint32Array(N);
  let next = 0;
  for (let i = 0; i < N; i++) if (!into.has(i - protect)) plan[i] = next++;
  for (const [a, b] of into) plan[protect + a] = plan[protect + b];
  return plan;
}

/**
 * Size-weighted means of x's rows (width floats each) per output token of the plan:
 * out[j] = Σ_{plan[i]=j} sizes[i]·x[i] / Σ sizes[i], sizes[j] = Σ sizes[i], logSizes = log(sizes).
 */
export function mergeTokensReference(x: Float32Array, sizes: Float32Array, plan: Uint32Array, N: number, width: number, merged: number): { out: Float64Array; sizes: Float64Array; logSizes: Float64Array } {
  const out = new Float64Array(merged * width);
  const outSizes = new Float64Array(merged);
  for (let i = 0; i < N; i++) {
    const j = plan[i];
    outSizes[j] += sizes[i];
    for (let c = 0; c < width; c++) out[j * width + c] += sizes[i] * x[i * width + c];
  }
  for (let j = 0; j < merged; j++) for (let c = 0; c < width; c++) out[j * width + c] /= outSizes[j];
  return { out, sizes: outSizes, logSizes: outSizes.map(Math.log) };
}
