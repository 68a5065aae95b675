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

/** Per row: the argmax (ties to the lower index, NaN never wins) and its probability under softmax(x / temperature). */
export function top1Ref(x: Float32Array, rows: number, n: number, temperature = 1): Array<{ token: number; probability: number }> {
  return Array.from({ length: rows }, (_, r) => {
    const row = x.subarray(r * n, (r + 1) * n);
    let token = -1;
    for (let i = 0; i < n; i++) if (!Number.isNaN(row[i]) && (token < 0 || row[i] > row[token])) token = i;
    if (token < 0) return { token: 0, probability: 0 };
    let sum = 0;
    for (const v of row) if (!Number.isNaN(v)) sum += v === row[token] ? 1 : Math.exp((v - row[token]) / temperature);
    return { token, probability: 1 / sum };
  });
}
