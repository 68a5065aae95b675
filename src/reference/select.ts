/**
 * Per row of x [rows][stride]: [0, first) ∪ [n − last, n) ∪ the k largest of the other values
 * (ties to the lower index, NaN below everything), ascending. The twin of kernels/select.
 */
export function selectTopKRef(x: Float32Array, o: { rows: number; n: number; stride?: number; k: number; first?: number; last?: number }): number[][] {
  const { rows, n, k } = o;
  const stride = o.stride ?? n;
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
