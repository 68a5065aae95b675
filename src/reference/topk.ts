/** Indices of the k largest values of each row, largest first, ties to the lower index; NaN never wins. */
export function topkRef(x: Float32Array, rows: number, n: number, k: number): Uint32Array {
  const out = new Uint32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * n, (r + 1) * n);
    const order = Array.from({ length: n }, (_, i) => i).filter((i) => !Number.isNaN(row[i]));
    order.sort((a, b) => (row[b] - row[a]) || (a - b));
    for (let j = 0; j < k; j++) out[r * k + j] = order[j] ?? 0;
  }
  return out;
}
