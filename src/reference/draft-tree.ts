// CPU references for src/kernels/draft-tree.ts.
import { pcg3d } from './sampling';

/** The Gumbel key of token i in row r (float64; the GPU's is f32). */
export function gumbelKeyRef(q: number, seed: number, step: number, row: number, i: number): number {
  if (!(q > 0)) return Math.fround(-3.4e38);
  const u = ((pcg3d(seed >>> 0, step >>> 0, ((row << 18) | i) >>> 0)[0] >>> 8) + 0.5) / 2 ** 24;
  return Math.log(q) - Math.log(-Math.log(u));
}

/** The m tokens of row r with the largest Gumbel keys: m draws from q without replacement, in draw order. */
export function gumbelTopRef(q: ArrayLike<number>, m: number, seed: number, step: number, row = 0): number[] {
  const keys = Array.from({ length: q.length }, (_, i) => ({ i, key: gumbelKeyRef(q[i]!, seed, step, row, i) }));
  keys.sort((a, b) => b.key - a.key || a.i - b.i);
  return keys.slice(0, m).map((k) => k.i);
}

/** What chainIds writes: the root, then the first u32 of each of `count` chain regions. */
export function chainIdsRef(chain: Uint32Array, root: number, count: number, stride: number): Uint32Array {
  return Uint32Array.from({ length: count + 1 }, (_, i) => (i === 0 ? root : chain[(i - 1) * stride]));
}
