// CPU references for src/kernels/norm.ts, in f64.

/** RMSNorm of each row of length n: x / sqrt(mean(x^2) + eps) * weight. */
export function rmsNormRef(x: ArrayLike<number>, weight: ArrayLike<number>, rows: number, n: number, eps: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let sumSq = 0;
    for (let i = 0; i < n; i++) sumSq += x[r * n + i] ** 2;
    const inv = 1 / Math.sqrt(sumSq / n + eps);
    for (let i = 0; i < n; i++) out[r * n + i] = x[r * n + i] * inv * weight[i];
  }
  return out;
}

/** LayerNorm of each row: (x - mean) / sqrt(var + eps) * weight + bias, biased variance. */
export function layerNormRef(x: ArrayLike<number>, weight: ArrayLike<number>, bias: ArrayLike<number> | null, rows: number, n: number, eps: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += x[r * n + i];
    const mean = sum / n;
    let sumSq = 0;
    for (let i = 0; i < n; i++) sumSq += (x[r * n + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(sumSq / n + eps);
    for (let i = 0; i < n; i++) out[r * n + i] = (x[r * n + i] - mean) * inv * weight[i] + (bias ? bias[i] : 0);
  }
  return out;
}
