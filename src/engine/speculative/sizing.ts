// Hardware-aware tree sizing (A7) and switching speculation off when it cannot pay: measure what
// a verify pass of n rows costs on this device at the current context, relative to one row, and
// pick the draft size that maximises expected tokens per unit of time. On a GPU that is
// latency-bound at batch 1, extra rows are nearly free and trees grow; on a software adapter
// every row costs about as much as the first, and the choice falls back to plain decoding.
// The choice is a prediction, so the loop also times what speculation really delivers and turns
// it off (for longer each time) whenever it is slower than plain decoding.
import type { Session } from '../session';

/** Verify-pass sizes (rows, the root included) that are measured. */
export const SIZES = [1, 2, 4, 8, 16, 32, 48, 64, 80] as const;

export interface VerifyCost {
  /** Wall time of n rows over one row's, for each measured n. */
  cost: Map<number, number>;
  oneRowMs: number;
  /** Largest row count the measurement would have covered. */
  upTo: number;
  /** Stopped early because rows had become as dear as separate steps: larger trees cannot pay. */
  linear: boolean;
}

/**
 * Wall time of a verify pass of n rows relative to 1 row, at the session's current context.
 * The rows are written past the cache and never committed, so the session is unchanged. Stops
 * once n rows cost at least 3/4 of n steps: beyond that no acceptance rate makes a tree pay.
 */
export async function measureVerifyCost(session: Session, maxRows: number, repeats = 2): Promise<VerifyCost> {
  const upTo = Math.min(maxRows, session.treeRows, session.capacity - session.length);
  const root = session.tokens.filter((id) => id >= 0).at(-1) ?? 0; // a token, not an image row
  const time = async (n: number) => {
    const tokens = Array.from({ length: n }, () => root);
    const parents = tokens.map((_, i) => i - 1);
    let best = Infinity;
    for (let r = 0; r < repeats; r++) {
      const start = performance.now();
      await session.verifyTree(tokens, parents);
      best = Math.min(best, performance.now() - start);
    }
    return best;
  };
  await time(1); // warm-up: pipelines, caches
  let one = await time(1);
  const cost = new Map<number, number>([[1, 1]]);
  let linear = false;
  for (const n of SIZES.filter((s) => s > 1 && s <= upTo)) {
    // One row is timed again right before each size, so that the adapter's drift cancels in the ratio.
    const single = await time(1);
    one = Math.min(one, single);
    const c = (await time(n)) / single;
    cost.set(n, c);
    if (c >= 0.75 * n) {
      linear = true;
      break;
    }
  }
  return { cost, oneRowMs: one, upTo, linear };
}

// Costs depend on the device and the context length, not on the request: measured once per model
// and context bucket (under 1024 tokens, then each doubling), shared by its sessions.
const measured = new WeakMap<object, Map<number, VerifyCost>>();

export async function verifyCost(model: object, session: Session, maxRows: number): Promise<VerifyCost> {
  const bucket = Math.max(0, Math.ceil(Math.log2((session.length + 1) / 1024)));
  const byBucket = measured.get(model) ?? new Map<number, VerifyCost>();
  measured.set(model, byBucket);
  const known = byBucket.get(bucket);
  if (known && (known.linear || known.upTo >= Math.min(maxRows, session.treeRows))) return known;
  const fresh = await measureVerifyCost(session, maxRows);
  byBucket.set(bucket, fresh);
  return fresh;
}

/** Verify cost of `rows` rows relative to one, interpolated between measured sizes and linear beyond the last. */
export function costOf(cost: Map<number, number>, rows: number): number {
  const sizes = [...cost.keys()].sort((a, b) => a - b);
  const upper = sizes.find((s) => s >= rows) ?? sizes.at(-1)!;
  const lower = [...sizes].reverse().find((s) => s <= rows) ?? sizes[0];
  if (upper === lower) return cost.get(upper)! * (rows / upper);
  const t = (rows - lower) / (upper - lower);
  return cost.get(lower)! * (1 - t) + cost.get(upper)! * t;
}

/**
 * The number of draft nodes (0: plain decoding) that maximises expected tokens per step over the
 * cost of the step: E(n) / (c(n + 1) + draftCost(n)), with c interpolated between measured sizes.
 * `expected(n)` is the strategy's estimate of tokens emitted per step with n draft nodes, bonus
 * included (1 for n = 0). A draft must beat `minRatio` times plain decoding's rate (below 1: the
 * best draft predicted at least that fast, for a trial).
 */
export function chooseDraftSize(cost: Map<number, number>, expected: (n: number) => number, maxNodes: number, draftCost: (n: number) => number = () => 0, minRatio = 1): number {
  let best = 0;
  let bestRate = minRatio / (1 + draftCost(0)); // plain decoding: one token per one-row step
  for (let n = 1; n <= maxNodes; n++) {
    const rate = expected(n) / (costOf(cost, n + 1) + draftCost(n));
    if (rate > bestRate * 1.02) { // prefer the smaller tree unless the larger one is clearly faster
      best = n;
      bestRate = rate;
    }
  }
  return best;
}

/** Speculative steps timed before their tokens per millisecond are compared with plain decoding's. */
export const JUDGE_AFTER = 4;
/**
 * A draft predicted at least this fast against plain decoding, though not faster, is tried: the
 * prediction's verify costs are measured in a few passes, noisy on a loaded or software adapter
 * (c(2) read anywhere from 1.3 to 2.0 over six measurements on SwiftShader), so close calls are
 * settled by the timing guard instead.
 */
export const TRIAL_RATIO = 0.9;
/** Plain steps after the first time speculation lost; doubled each time it loses again, up to MAX_BACKOFF. */
export const FIRST_BACKOFF = 16;
const MAX_BACKOFF = 512;

/**
 * Per-step draft sizes for one generation. `choose()` is the cost model's choice (re-asked every
 * 8 steps, as acceptance statistics change, and after the first speculative step, which tells
 * the strategy what its drafts cost); on top of it, what speculation really delivers is
 * timed: after JUDGE_AFTER speculative steps their tokens per millisecond are compared with plain
 * decoding's, and if they lose, speculation is off for FIRST_BACKOFF steps, then twice as long
 * after each further loss. So a choice that the model got wrong costs a few steps, not the run.
 * Where the model says no to a close call (`closeCall()`: a size predicted within TRIAL_RATIO of
 * plain decoding), that size is tried under the same guard, which keeps it while it wins.
 */
export class DraftSizer {
  private chosen = 0;
  /** A close call under trial (0: none). */
  private trial = 0;
  private offUntil = 0;
  private backoff = FIRST_BACKOFF;
  private window = { steps: 0, tokens: 0, ms: 0 };
  /** Whether a speculative step has run: the first one tells the strategy its drafting cost. */
  private drafted = false;
  private rechoose = false;

  /**
   * @param plainMs one plain decoding step's wall time (updated from the plain steps taken)
   * @param probe whether to draft a little now and then while the model says no, asked at each
   *   probe (only where a small draft is cheap: then acceptance statistics can show when drafts
   *   would pay; where it is dear, the probes alone make speculation slower than plain decoding)
   * @param closeCall the size to try when `choose()` says 0 (0: none), asked until a trial starts
   */
  constructor(
    private readonly choose: () => number, private plainMs: number, private readonly probe: () => boolean, private readonly maxNodes: number,
    private readonly closeCall: () => number = () => 0,
  ) {}

  next(step: number): number {
    if (step < this.offUntil) return 0;
    if (step % 8 === 0 || step === this.offUntil || this.rechoose) this.chosen = this.choose();
    this.rechoose = false;
    if (this.chosen > 0) return this.chosen;
    this.trial ||= this.closeCall();
    if (this.trial > 0) return this.trial;
    return step % 16 === 15 && this.probe() ? Math.min(2, this.maxNodes) : 0;
  }

  /** One step's outcome: the draft size it used, the tokens it emitted and its wall time. */
  record(step: number, size: number, tokens: number, ms: number): void {
    if (size === 0) {
      this.plainMs = 0.8 * this.plainMs + 0.2 * ms;
      return;
    }
    // The first draft's cost is now known (a draft model's forwards, say): choose again at once
    // rather than after 8 steps priced at nothing.
    if (!this.drafted) this.drafted = this.rechoose = true;
    this.window.steps++;
    this.window.tokens += tokens;
    this.window.ms += ms;
    if (this.window.steps < JUDGE_AFTER) return;
    if (this.window.tokens / this.window.ms < 1 / this.plainMs) {
      this.offUntil = step + 1 + this.backoff;
      this.backoff = Math.min(2 * this.backoff, MAX_BACKOFF);
      this.trial = 0;
    } else {
      this.backoff = FIRST_BACKOFF;
    }
    this.window = { steps: 0, tokens: 0, ms: 0 };
  }

}

/**
 * Acceptance statistics for sizing: for each draft node (by index in the strategy's own order,
 * best first), the share of the steps that drafted it on which it was on the accepted path (A7's
 * P̂(v)). Steps that did not draft a node (plain steps, smaller trees) say nothing about it: counting
 * them as misses would wear its estimate down while speculation is off, and keep it off. Starts
 * from a prior so that early choices are sane.
 */
export class AcceptanceStats {
  private readonly hits: number[];
  private readonly drafted: number[];

  constructor(nodes: number, prior: (index: number) => number, priorWeight = 4) {
    this.hits = Array.from({ length: nodes }, (_, i) => prior(i) * priorWeight);
    this.drafted = this.hits.map(() => priorWeight);
  }

  /** One verified step: the indices of the nodes it drafted, and of those it accepted. */
  record(draftedIndices: readonly number[], acceptedIndices: readonly number[]): void {
    for (const i of draftedIndices) if (i < this.drafted.length) this.drafted[i]++;
    for (const i of acceptedIndices) if (i < this.hits.length) this.hits[i]++;
  }

  /** E(n): 1 (the bonus) + the acceptance probabilities of the first n nodes. */
  expected(n: number): number {
    let sum = 1;
    for (let i = 0; i < Math.min(n, this.hits.length); i++) sum += this.hits[i] / this.drafted[i];
    return sum;
  }
}
