// Lossless speculative sampling, as exact CPU references (float64): the rules the GPU verify step
// must implement, and what the tests check analytically (the emitted token is distributed exactly
// as the target's p, whatever the drafts).
//
// - acceptSiblings: verification at one tree node whose children were drawn from the drafter's q
//   without replacement, in sampling order (RSD, A4 step 3). With one child it is standard
//   speculative sampling (A1 step 3); with point-mass q (deterministic drafts: prompt lookup,
//   Token Recycling) it is A2 step 9: accept child c with probability p(c), else zero p(c).

export type Distribution = Float64Array;

function normalize(x: Float64Array): Float64Array {
  let sum = 0;
  for (const v of x) sum += v;
  return x.map((v) => v / sum);
}

/** q with the given tokens removed, renormalized: the distribution of the next draw without replacement. */
export function withoutReplacement(q: Distribution, drawn: readonly number[]): Distribution {
  const out = q.slice();
  for (const t of drawn) out[t] = 0;
  return normalize(out);
}

/** The residual after rejecting a draft drawn from q: norm(max(0, p - q)); p itself when nothing is left (A1 step 6). */
export function residual(p: Distribution, q: Distribution): Distribution {
  const out = p.map((v, i) => Math.max(0, v - q[i]));
  let sum = 0;
  for (const v of out) sum += v;
  return sum < 1e-12 ? p.slice() : out.map((v) => v / sum);
}

export function sampleFrom(dist: Distribution, u: number): number {
  let acc = 0;
  for (let i = 0; i < dist.length; i++) {
    acc += dist[i];
    if (u < acc) return i;
  }
  for (let i = dist.length - 1; i >= 0; i--) if (dist[i] > 0) return i;
  return 0;
}

/**
 * Verification at a node: the target's p there, the drafter's q there, and the children drawn
 * from q without replacement, in draw order. `uniform()` gives U(0,1) draws. Returns the index of
 * the accepted child, or -1 with the token to emit instead (drawn from the final residual).
 */
export function acceptSiblings(p: Distribution, q: Distribution, children: readonly number[], uniform: () => number): { accepted: number; token: number } {
  let target = p;
  const drawn: number[] = [];
  for (let j = 0; j < children.length; j++) {
    const qj = withoutReplacement(q, drawn);
    const c = children[j];
    if (uniform() < Math.min(1, target[c] / qj[c])) return { accepted: j, token: c };
    target = residual(target, qj);
    drawn.push(c);
  }
  return { accepted: -1, token: sampleFrom(target, uniform()) };
}

/** A point mass on `token`: the q of a deterministic draft. */
export function pointMass(size: number, token: number): Distribution {
  const q = new Float64Array(size);
  q[token] = 1;
  return q;
}

/**
 * The exact distribution of the token emitted at a node whose `b` children are drawn from q
 * without replacement and verified by acceptSiblings: a sum over every ordered draw. The tests
 * require it to equal p.
 */
export function emittedDistribution(p: Distribution, q: Distribution, b: number): Distribution {
  const out = new Float64Array(p.length);
  const visit = (drawn: number[], probability: number, target: Distribution, qLeft: Distribution) => {
    if (drawn.length === b) {
      for (let t = 0; t < p.length; t++) out[t] += probability * target[t];
      return;
    }
    for (let c = 0; c < p.length; c++) {
      if (qLeft[c] <= 0) continue;
      const pDraw = probability * qLeft[c];
      const accept = Math.min(1, target[c] / qLeft[c]);
      out[c] += pDraw * accept;
      if (accept < 1) visit([...drawn, c], pDraw * (1 - accept), residual(target, qLeft), withoutReplacement(q, [...drawn, c]));
    }
  };
  visit([], 1, p, q);
  return out;
}

/**
 * The whole verify decision over a draft tree, as src/shaders/speculative.ts makes it (float64):
 * from the root, try each node's children in index order (acceptSiblings' rules, with point-mass
 * drafts when `draft` is null), move to an accepted child, and at the first node where none is
 * accepted (or a leaf) draw the emitted token from what is left. `uniform(k)` is the k-th draw.
 */
export function acceptTreeRef(
  probs: ArrayLike<number>, draft: ArrayLike<number> | null, tokens: readonly number[], parents: readonly number[], vocab: number, uniform: (k: number) => number,
): { path: number[]; token: number } {
  const row = (x: ArrayLike<number>, i: number) => Float64Array.from({ length: vocab }, (_, j) => x[i * vocab + j]);
  const path = [0];
  let k = 0;
  for (;;) {
    const current = path.at(-1)!;
    let r = row(probs, current);
    let left = draft ? row(draft, current) : null;
    let next = -1;
    for (let c = current + 1; c < tokens.length; c++) {
      if (parents[c] !== current) continue;
      const x = tokens[c];
      const sumR = r.reduce((a, b) => a + b, 0);
      const u = uniform(k++);
      if (left) {
        const sumQ = left.reduce((a, b) => a + b, 0);
        const px = r[x] / sumR;
        const qx = left[x] / sumQ;
        if (u < (qx > 0 ? Math.min(1, px / qx) : px > 0 ? 1 : 0)) { next = c; break; }
        const q = left;
        r = r.map((v, i) => Math.max(0, v / sumR - q[i] / sumQ));
        left = left.slice();
        left[x] = 0;
      } else {
        if (u < r[x] / sumR) { next = c; break; }
        r = r.slice();
        r[x] = 0;
      }
    }
    if (next < 0) {
      if (!(r.reduce((a, b) => a + b, 0) > 0)) r = row(probs, current);
      const sum = r.reduce((a, b) => a + b, 0);
      return { path, token: sampleFrom(r.map((v) => v / sum), uniform(k)) };
    }
    path.push(next);
  }
}
