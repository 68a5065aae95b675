// Shared test helpers: one GPU device per test file, seeded random data, and comparisons that
// report the worst element rather than just "not equal".
import { afterAll, expect } from 'vitest';
import { type Gpu, requestGpu } from '../src/gpu';

let shared: Promise<Gpu> | null = null;

/** The test file's device (Dawn + SwiftShader in CI). Destroyed after the file's tests. */
export function testGpu(): Promise<Gpu> {
  if (!shared) {
    shared = requestGpu();
    afterAll(async () => (await shared)?.destroy());
  }
  return shared;
}

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

export interface Closeness {
  maxAbs: number;
  maxRel: number;
  worst: number;
}

/** Max absolute error, and max error relative to the largest reference magnitude. */
export function closeness(actual: ArrayLike<number>, expected: ArrayLike<number>): Closeness {
  expect(actual.length).toBe(expected.length);
  let maxAbs = 0;
  let worst = -1;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= maxAbs)) {
      maxAbs = Number.isNaN(d) ? Infinity : d;
      worst = i;
    }
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return { maxAbs, maxRel: maxAbs / Math.max(scale, 1e-30), worst };
}

/** Every |actual - expected| <= atol + rtol * |expected|; the message names the worst element. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol = 0, what = 'values'): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (!(excess <= worstExcess)) {
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    expect.fail(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}
