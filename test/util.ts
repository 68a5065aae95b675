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

export { randomF32, randomNormal, rng } from './random';

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
