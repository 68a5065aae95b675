// The acceptance rules of lossless speculative sampling reproduce the target's distribution
// exactly (analytically, to 1e-12) on random small distributions, for one draft (standard
// speculative sampling), for siblings drawn without replacement (RSD, b = 1..4), and for
// deterministic drafts (point-mass q); and by Monte Carlo through the rule itself.
import { describe, expect, it } from 'vitest';
import { acceptSiblings, emittedDistribution, pointMass, residual, sampleFrom, withoutReplacement } from '../src/reference/speculative-sampling';
import { rng } from './util';

function randomDistribution(size: number, r: () => number, sparsity = 0.3): Float64Array {
  const x = Float64Array.from({ length: size }, () => (r() < sparsity ? 0 : -Math.log(r())));
  if (x.every((v) => v === 0)) x[0] = 1;
  const sum = x.reduce((a, b) => a + b, 0);
  return x.map((v) => v / sum);
}

function maxDiff(a: Float64Array, b: Float64Array): number {
  return Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
}

describe('speculative sampling acceptance', () => {
  it('RSD over b = 1..4 siblings drawn without replacement emits exactly p', () => {
    const r = rng(5);
    for (let trial = 0; trial < 40; trial++) {
      const size = 4 + Math.floor(r() * 5);
      const p = randomDistribution(size, r);
      const q = randomDistribution(size, r, 0.1);
      for (let b = 1; b <= Math.min(4, q.filter((v) => v > 0).length); b++) {
        expect(maxDiff(emittedDistribution(p, q, b), p)).toBeLessThan(1e-12);
      }
    }
  });

  it('deterministic drafts (point-mass q, A2 step 9) emit exactly p', () => {
    const r = rng(6);
    for (let trial = 0; trial < 40; trial++) {
      const p = randomDistribution(6, r);
      const draft = Math.floor(r() * 6);
      expect(maxDiff(emittedDistribution(p, pointMass(6, draft), 1), p)).toBeLessThan(1e-12);
    }
  });

  it('Monte Carlo through acceptSiblings matches p (total variation under 3e-3 at 10^6 draws)', () => {
    const r = rng(7);
    const p = randomDistribution(8, r);
    const q = randomDistribution(8, r, 0);
    const counts = new Float64Array(8);
    const draws = 1_000_000;
    for (let i = 0; i < draws; i++) {
      // Two siblings without replacement from q, by sequential draws.
      const first = sampleFrom(q, r());
      const second = sampleFrom(withoutReplacement(q, [first]), r());
      counts[acceptSiblings(p, q, [first, second], r).token]++;
    }
    const tv = 0.5 * Array.from(counts, (c, i) => Math.abs(c / draws - p[i])).reduce((a, b) => a + b, 0);
    expect(tv).toBeLessThan(3e-3);
  });

  it('the residual falls back to p when q covers p (nothing left to reject into)', () => {
    const p = Float64Array.from([0.5, 0.5, 0]);
    expect(Array.from(residual(p, Float64Array.from([0.6, 0.6, 0])))).toEqual([0.5, 0.5, 0]);
  });
});

