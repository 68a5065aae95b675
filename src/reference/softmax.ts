// CPU references for src/kernels/softmax.ts, in f64.

/** softmax(x * scale) per row. */
export function softmaxRef(x: ArrayLike<number>, rows: number, n: number, scale = 1): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, x[r * n + i] * scale);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += Math.exp(x[r * n + i] * scale - max);
    for (let i = 0; i < n; i++) out[r * n + i] = sum > 0 ? Math.exp(x[r * n + i] * scale - max) / sum : 0;
  }
  return out;
}

/** Index of each row's largest value, the lowest index among ties (-0 ties +0), NaNs skipped. */
export function argmaxRef(x: ArrayLike<number>, rows: number, n: number): Uint32Array {
  const out = new Uint32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = -1;
    for (let i = 0; i < n; i++) {
      const v = x[r * n + i];
      if (!Number.isNaN(v) && (best < 0 || v > x[r * n + best])) best = i;
    }
    out[r] = Math.max(best, 0);
  }
  return out;
}
