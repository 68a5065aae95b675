// Comparing rows of logits: argmax, the logit range that tolerances refer to, and how close a
// flipped choice was to a tie.

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** max - min of a row: the logit range the tolerances refer to. */
export function range(row: ArrayLike<number>): number {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < row.length; i++) (lo = Math.min(lo, row[i])), (hi = Math.max(hi, row[i]));
  return hi - lo;
}

/** max |got - want| over the row, as a fraction of want's range. */
export function relativeDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let diff = 0;
  for (let j = 0; j < want.length; j++) diff = Math.max(diff, Math.abs(got[j] - want[j]));
  return Number.isNaN(diff) ? Infinity : diff / range(want);
}

/**
 * Where two runtimes pick different tokens, the reference's own logits for the two must be close:
 * a near-tie that rounding can flip. Returns their gap over the logit range.
 */
export function tieGap(want: ArrayLike<number>, ours: number): number {
  return (want[argmax(want)] - want[ours]) / range(want);
}
