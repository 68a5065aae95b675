// Hardware-aware tree sizing (A7) and switching speculation off when it cannot pay: measure what
// a verify pass of n rows costs on this device at the current context, relative to one row, and
// pick the draft size that maximises expected tokens per unit of time. On a GPU that is
// bandwidth-bound at batch 1, extra rows are nearly free and trees grow; on a software adapter
// every row costs about as much as the first, and the choice falls back to plain decoding.
import type { Session } from '../session';

/** Verify-pass sizes (rows, the root included) that are measured. */
export const SIZES = [1, 2, 4, 8, 16, 32, 48, 64, 80] as const;

/**
 * Wall time of a verify pass of n rows relative to 1 row, at the session's current context.
 * The rows are written past the cache and never committed, so the session is unchanged.
 */
export async function measureVerifyCost(session: Session, maxRows: number, repeats = 2): Promise<{ cost: Map<number, number>; oneRowMs: number }> {
  const sizes = SIZES.filter((n) => n <= Math.min(maxRows, session.scratch.maxTokens, session.capacity - session.length));
  const root = session.tokens.at(-1) ?? 0;
  const time = async (n: number) => {
    const tokens = Array.from({ length: n }, () => root);
    const parents = tokens.map((_, i) => i - 1);
    let best = Infinity;
    for (let r = 0; r < repeats; r++) {
      const start = performance.now();
      await session.verifyTreeGreedy(tokens, parents);
      best = Math.min(best, performance.now() - start);
    }
    return best;
  };
  await time(1); // warm-up: pipelines, caches
  const one = await time(1);
  const cost = new Map<number, number>();
  for (const n of sizes) cost.set(n, n === 1 ? 1 : (await time(n)) / one);
  return { cost, oneRowMs: one };
}

/**
 * The number of draft nodes (0: plain decoding) that maximises expected tokens per step over the
 * cost of the step: E(n) / (c(n + 1) + draftCost(n)), with c interpolated between measured sizes.
 * `expected(n)` is the strategy's estimate of tokens emitted per step with n draft nodes, bonus
 * included (1 for n = 0).
 */
export function chooseDraftSize(cost: Map<number, number>, expected: (n: number) => number, maxNodes: number, draftCost: (n: number) => number = () => 0): number {
  const sizes = [...cost.keys()].sort((a, b) => a - b);
  const costOf = (rows: number) => {
    const upper = sizes.find((s) => s >= rows) ?? sizes.at(-1)!;
    const lower = [...sizes].reverse().find((s) => s <= rows) ?? sizes[0];
    if (upper === lower) return cost.get(upper)! * (rows / upper); // beyond the last measured size: linear
    const t = (rows - lower) / (upper - lower);
    return cost.get(lower)! * (1 - t) + cost.get(upper)! * t;
  };
  let best = 0;
  let bestRate = 1 / (1 + draftCost(0)); // plain decoding: one token per one-row step
  for (let n = 1; n <= maxNodes; n++) {
    const rate = expected(n) / (costOf(n + 1) + draftCost(n));
    if (rate > bestRate * 1.02) { // prefer the smaller tree unless the larger one is clearly faster
      best = n;
      bestRate = rate;
    }
  }
  return best;
}

/**
 * Acceptance statistics for sizing: how often each draft node (by index in the strategy's own
 * order, best first) was on the accepted path. Starts from a prior so that early choices are sane.
 */
export class AcceptanceStats {
  private readonly hits: number[];
  private steps: number;

  constructor(nodes: number, prior: (index: number) => number, priorWeight = 4) {
    this.hits = Array.from({ length: nodes }, (_, i) => prior(i) * priorWeight);
    this.steps = priorWeight;
  }

  record(acceptedIndices: readonly number[]): void {
    this.steps++;
    for (const i of acceptedIndices) if (i < this.hits.length) this.hits[i]++;
  }

  /** E(n): 1 (the bonus) + the acceptance probabilities of the first n nodes. */
  expected(n: number): number {
    let sum = 1;
    for (let i = 0; i < Math.min(n, this.hits.length); i++) sum += this.hits[i] / this.steps;
    return sum;
  }
}
