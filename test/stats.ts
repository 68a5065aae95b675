// Goodness-of-fit helpers for the statistical tests of sampling.

/** Chi-square goodness of fit of counts against expected probabilities; cells expected below 5 are pooled. */
export function chiSquare(counts: Map<string, number>, expected: Map<string, number>, draws: number): { statistic: number; df: number } {
  const cells: Array<[observed: number, expected: number]> = [];
  let pooled: [number, number] = [0, 0];
  for (const key of new Set([...counts.keys(), ...expected.keys()])) {
    const cell: [number, number] = [counts.get(key) ?? 0, (expected.get(key) ?? 0) * draws];
    if (cell[1] < 5) pooled = [pooled[0] + cell[0], pooled[1] + cell[1]];
    else cells.push(cell);
  }
  if (pooled[0] > 0 || pooled[1] >= 1) cells.push(pooled);
  let statistic = 0;
  for (const [o, e] of cells) statistic += (o - e) ** 2 / Math.max(e, 1e-9);
  return { statistic, df: cells.length - 1 };
}

/** The chi-square quantile at 1 - 1e-3 (Wilson-Hilferty). */
export function critical(df: number): number {
  return df * (1 - 2 / (9 * df) + 3.09 * Math.sqrt(2 / (9 * df))) ** 3;
}
