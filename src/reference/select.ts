/**
 * Per row of x [rows][stride]: [0, first) ∪ [n − last, n) ∪ the k largest of the other values
 * (ties to the lower index, NaN below everything), ascending. The twin of kernels/select.
 */
export function selectTopKRef(x: Float32Array, o: { rows: number; n: number; stride?: number; k: number; first?: number; last?: number; start?: number }): number[][] {
  const { rows, n, k } = o;
  const stride = o.stride ?? n;
  const start = o.start ?? 0;
  if (start) {
    const shifted = selectTopKRef(Float32Array.from({ length: rows * n }, (_, i) => x[Math.floor(i / n) * stride + start + (i % n)]), { ...o, stride: n, start: 0 });
    return shifted.map((list) => list.map((i) => i + start));
  }
  const first = o.first ?? 0;
  const last = o.last ?? 0;
  const lists: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const value = (i: number) => (Number.isNaN(x[r * stride + i]) ? -Infinity : x[r * stride + i]);
    const forced: number[] = [];
    const others: number[] = [];
    for (let i = 0; i < n; i++) (i < first || i + last >= n ? forced : others).push(i);
    // NaN sorts below -Infinity: compare with a NaN flag first.
    const nan = (i: number) => (Number.isNaN(x[r * stride + i]) ? 1 : 0);
    others.sort((a, b) => nan(a) - nan(b) || value(b) - value(a) || a - b);
    lists.push([...forced, ...others.slice(0, k)].sort((a, b) => a - b));
  }
  return lists;
}

/**
 * TokenSelect's selection cache: reuse the last ranking when the mean of the step's query rows
 * has cosine similarity >= threshold with the fingerprint that ranked (none yet: rank). Returns
 * the decision and the fingerprint to keep. The twin of kernels/select selectionReuse.
 */
export function selectionReuseRef(q: Float32Array, rows: number, fingerprint: Float32Array | null, threshold: number): { reuse: boolean; fingerprint: Float32Array } {
  const width = q.length / rows;
  const now = new Float32Array(width);
  for (let i = 0; i < width; i++) {
    let sum = 0;
    for (let t = 0; t < rows; t++) sum += q[t * width + i];
    now[i] = sum / rows;
  }
  if (!fingerprint) return { reuse: false, fingerprint: now };
  let dot = 0, a = 0, b = 0;
  for (let i = 0; i < width; i++) { dot += now[i] * fingerprint[i]; a += now[i] ** 2; b += fingerprint[i] ** 2; }
  const reuse = dot / Math.sqrt(Math.max(a * b, 1e-30)) >= threshold;
  return { reuse, fingerprint: reuse ? fingerprint : now };
}

/** InfLLM's unit relevance: out[h][u] = Σ_i x[h][rep[h][u * per + i]]. The twin of kernels/select unitScores. */
export function unitScoresRef(x: Float32Array, xStride: number, rep: Uint32Array, repStride: number, heads: number, units: number, per: number): number[][] {
  return Array.from({ length: heads }, (_, h) => Array.from({ length: units }, (_, u) => {
    let sum = 0;
    for (let i = 0; i < per; i++) sum += x[h * xStride + rep[h * repStride + u * per + i]];
    return sum;
  }));
}
