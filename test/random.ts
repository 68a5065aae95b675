// Seeded random data for tests, free of vitest so the browser checks (e2e/pages) can use it too.

/** mulberry32: small, fast, seeded. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform in [lo, hi). */
export function randomF32(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** Standard normal (Box-Muller), scaled. */
export function randomNormal(n: number, seed: number, std = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    const m = std * Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** Random parents of an n-node tree in DFS preorder: node i's parent is on the path from the root to node i-1. */
export function randomTree(n: number, seed: number): number[] {
  const r = rng(seed);
  const parents: number[] = [];
  const path: number[] = [];
  for (let i = 0; i < n; i++) {
    const keep = i === 0 ? 0 : Math.floor(r() * (path.length + 1));
    path.length = keep;
    parents.push(keep === 0 ? -1 : path[keep - 1]);
    path.push(i);
  }
  return parents;
}
