// The GPU's speculative-sampling decision (src/shaders/speculative.ts) against its float64
// reference on random trees, and by counting: over many independent walks the first emitted token
// is distributed as the target's p, for point-mass drafts and for siblings drawn from q without
// replacement (every ordered draw enumerated and weighted). Greedy verification's walk and the
// path commit against their references on random trees.
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu';
import { acceptedPath, greedyAccept, speculativeAccept } from '../src/kernels/speculative';
import { acceptGreedyRef, acceptedPathRef } from '../src/reference/speculative-greedy';
import { samplingUniform } from '../src/reference/sampling';
import { acceptTreeRef, withoutReplacement } from '../src/reference/speculative-sampling';
import { rng, testGpu } from './util';

/** Random normalised rows: Zipf-shaped over a random order of the vocabulary (peaked, as a trained
 * model's are), with some exact zeros (as top-k/top-p leave them). */
function distributions(rows: number, vocab: number, random: () => number, zeros = 0.3, exponent = 1.5): Float32Array {
  const out = new Float32Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    const order = Array.from({ length: vocab }, (_, i) => [random(), i]).sort((a, b) => a[0] - b[0]).map(([, i]) => i);
    let sum = 0;
    order.forEach((token, rank) => {
      const w = rank > 0 && random() < zeros ? 0 : (rank + 1) ** -exponent;
      out[r * vocab + token] = w;
      sum += w;
    });
    for (let i = 0; i < vocab; i++) out[r * vocab + i] /= sum;
  }
  return out;
}

/** A random tree in DFS preorder: parents[0] = -1, every other parent earlier. */
function randomTree(nodes: number, random: () => number): number[] {
  const parents = [-1];
  const stack = [0];
  for (let i = 1; i < nodes; i++) {
    while (stack.length > 1 && random() < 0.4) stack.pop();
    parents.push(stack.at(-1)!);
    stack.push(i);
  }
  return parents;
}

/** Each node's children drawn from its q row without replacement, in order (what a draft model does). */
function drawChildren(parents: number[], q: Float32Array, vocab: number, random: () => number): number[] {
  const tokens = parents.map(() => 0);
  parents.forEach((_, node) => {
    const children = parents.flatMap((p, c) => (p === node ? [c] : []));
    const drawn: number[] = [];
    for (const c of children) {
      const left = withoutReplacement(Float64Array.from(q.subarray(node * vocab, (node + 1) * vocab)), drawn);
      let u = random();
      let token = left.findIndex((v) => (u -= v) < 0);
      if (token < 0) token = vocab - 1 - Array.from(left).reverse().findIndex((v) => v > 0); // rounding: the last possible token
      tokens[c] = token;
      drawn.push(token);
    }
  });
  tokens[0] = Math.floor(random() * vocab);
  return tokens;
}

async function runAccept(gpu: Gpu, probs: Float32Array, draft: Float32Array | null, tokens: number[], parents: number[], vocab: number, trials: number, seed: number) {
  const nodes = tokens.length;
  const result = gpu.buffer(trials * (nodes + 2) * 4);
  const buffers = [gpu.upload(probs), gpu.upload(Uint32Array.from(tokens)), gpu.upload(Int32Array.from(parents)), gpu.buffer(trials * vocab * 4), result];
  const draftBuffers = draft ? [gpu.upload(draft), gpu.buffer(trials * vocab * 4)] : [];
  await gpu.run((pass) => speculativeAccept(gpu, pass, {
    probs: buffers[0], tokens: buffers[1], parents: buffers[2], residual: buffers[3], result,
    draft: draftBuffers[0], left: draftBuffers[1], nodes, vocab, seed, step: 7, trials,
  }), 'speculative accept');
  const words = await gpu.readU32(result);
  [...buffers, ...draftBuffers].forEach((b) => b.destroy());
  return Array.from({ length: trials }, (_, t) => {
    const row = words.subarray(t * (nodes + 2), (t + 1) * (nodes + 2));
    return { path: Array.from(row.subarray(2, 2 + row[0])), token: row[1] };
  });
}

/** The first token a walk emits: the first accepted draft, or the drawn token. */
const firstToken = (walk: { path: number[]; token: number }, tokens: number[]) => (walk.path.length > 1 ? tokens[walk.path[1]] : walk.token);

describe('speculativeAccept', () => {
  const cases: Array<[nodes: number, vocab: number, withDraft: boolean]> = [
    [1, 50, false], [6, 7, false], [12, 300, false], [9, 4096, false], [5, 7, true], [12, 300, true], [8, 4096, true], [16, 1000, true],
  ];
  for (const [nodes, vocab, withDraft] of cases) {
    it(`equals the reference: ${nodes} nodes, vocabulary ${vocab}, ${withDraft ? 'drafts drawn from q' : 'point-mass drafts'}`, async () => {
      const gpu = await testGpu();
      const random = rng(nodes * 1000 + vocab + (withDraft ? 1 : 0));
      const trials = 24;
      let deep = 0;
      for (let tree = 0; tree < 3; tree++) {
        const parents = randomTree(nodes, random);
        const probs = distributions(nodes, vocab, random);
        // A drafter that approximates the target: mostly p, partly another distribution.
        const other = distributions(nodes, vocab, random);
        const draft = withDraft ? probs.map((v, i) => 0.7 * v + 0.3 * other[i]) : null;
        // Point-mass drafts: often the target's likely tokens, so that walks go deep.
        const tokens = draft ? drawChildren(parents, draft, vocab, random) : drawChildren(parents, probs, vocab, random);
        const seed = 1000 + tree;
        const walks = await runAccept(gpu, probs, draft, tokens, parents, vocab, trials, seed);
        walks.forEach((walk, t) => {
          const expected = acceptTreeRef(probs, draft, tokens, parents, vocab, (k) => samplingUniform(seed, 7, (t << 16) | k));
          expect(walk, `tree ${tree} trial ${t}`).toEqual(expected);
        });
        deep += walks.filter((w) => w.path.length > 2).length;
      }
      // The walks went past the first level somewhere (the test exercises acceptance, not only rejection).
      if (nodes > 2) expect(deep).toBeGreaterThan(0);
    });
  }

  /** Chi-square statistic of counts against probabilities (cells with expected count >= 5). */
  function chiSquare(counts: number[], p: ArrayLike<number>, draws: number): { statistic: number; cells: number } {
    let statistic = 0;
    let cells = 0;
    for (let i = 0; i < counts.length; i++) {
      const expected = p[i] * draws;
      if (expected >= 5) {
        statistic += (counts[i] - expected) ** 2 / expected;
        cells++;
      } else {
        expect(counts[i]).toBeLessThan(5 + 6 * Math.sqrt(5)); // rare cells stay rare
      }
    }
    return { statistic, cells };
  }

  it('point-mass drafts: the first emitted token is distributed as p (2048 walks, chi-square)', async () => {
    const gpu = await testGpu();
    const vocab = 10;
    const random = rng(77);
    const probs = distributions(4, vocab, random, 0.2, 0.7);
    // Root with three sibling drafts (the likeliest, a likely one, an impossible one) and a grandchild.
    const p0 = Array.from(probs.subarray(0, vocab));
    const order = p0.map((_, i) => i).sort((a, b) => p0[b] - p0[a]);
    const impossible = p0.findIndex((v) => v === 0);
    const tokens = [0, order[0], order[0], order[1], impossible >= 0 ? impossible : order[9]];
    const parents = [-1, 0, 1, 0, 0];
    const trials = 2048;
    const walks = await runAccept(gpu, probs, null, tokens, parents, vocab, trials, 5);
    const counts = new Array(vocab).fill(0);
    for (const w of walks) counts[firstToken(w, tokens)]++;
    const { statistic, cells } = chiSquare(counts, p0, trials);
    // p = 0.001 critical value of chi-square with up to 9 degrees of freedom is 27.9.
    expect(cells).toBeGreaterThanOrEqual(5);
    expect(statistic).toBeLessThan(27.9);
  });

  it('siblings drawn from q without replacement: averaged over every ordered draw, the first token is distributed as p', async () => {
    const gpu = await testGpu();
    const vocab = 4;
    const random = rng(91);
    const probs = distributions(3, vocab, random, 0);
    const draft = distributions(3, vocab, random, 0);
    const q = Array.from(draft.subarray(0, vocab));
    const trials = 512;
    const emitted = new Array(vocab).fill(0);
    let draws = 0;
    for (let a = 0; a < vocab; a++) {
      for (let b = 0; b < vocab; b++) {
        if (a === b) continue;
        const weight = q[a] * (q[b] / (1 - q[a])); // probability of drawing a then b
        const tokens = [0, a, b];
        const walks = await runAccept(gpu, probs, draft, tokens, [-1, 0, 0], vocab, trials, 100 + a * vocab + b);
        for (const w of walks) emitted[firstToken(w, tokens)] += weight / trials;
        draws += trials;
      }
    }
    // Each of the 12 draws' estimates has a standard error below 0.5 / sqrt(512) = 0.022; their
    // weighted sum, about 0.01.
    expect(draws).toBe(12 * trials);
    for (let i = 0; i < vocab; i++) expect(Math.abs(emitted[i] - probs[i])).toBeLessThan(0.035);
  });
});

async function runGreedyAccept(gpu: Gpu, tokens: number[], parents: number[], targetNext: number[], first: number, pairs: number) {
  const nodes = tokens.length;
  const tokenOffset = nodes + 2; // past anything the walk writes
  const result = gpu.buffer((tokenOffset + nodes) * 4);
  const moves = gpu.buffer(Math.max(1, pairs) * 8);
  const inputs = [gpu.upload(Uint32Array.from(targetNext)), gpu.upload(Uint32Array.from(tokens)), gpu.upload(Int32Array.from(parents))];
  await gpu.run((pass) => {
    greedyAccept(gpu, pass, { targetNext: inputs[0], tokens: inputs[1], parents: inputs[2], nodes, result });
    acceptedPath(gpu, pass, { result, tokenOffset, tokens: inputs[1], moves, pairs, first });
  }, 'greedy accept');
  const words = await gpu.readU32(result);
  const pairWords = pairs ? Array.from(await gpu.readU32(moves, 2 * pairs)) : [];
  [...inputs, result, moves].forEach((b) => b.destroy());
  const length = words[0];
  return { path: Array.from(words.subarray(2, 2 + length)), bonus: words[1], tokens: Array.from(words.subarray(tokenOffset, tokenOffset + length)), moves: pairWords };
}

describe('greedyAccept and acceptedPath', () => {
  it('the reference walks the longest agreeing path and returns the bonus', () => {
    // root 0 -> {1 (tok 5) -> {2 (tok 7), 3 (tok 8)}, 4 (tok 6)}
    const tokens = [9, 5, 7, 8, 6];
    const parents = [-1, 0, 1, 1, 0];
    expect(acceptGreedyRef(tokens, parents, [5, 8, 0, 4, 0])).toEqual({ path: [0, 1, 3], bonus: 4 });
    expect(acceptGreedyRef(tokens, parents, [6, 0, 0, 0, 11])).toEqual({ path: [0, 4], bonus: 11 });
    expect(acceptGreedyRef(tokens, parents, [1, 0, 0, 0, 0])).toEqual({ path: [0], bonus: 1 });
    // Two children with the target's token: the first in index order wins.
    expect(acceptGreedyRef([0, 3, 3], [-1, 0, 0], [3, 4, 5])).toEqual({ path: [0, 1], bonus: 4 });
    expect(acceptedPathRef(tokens, [0, 1, 3], 3, 10)).toEqual({ tokens: [9, 5, 8], moves: [11, 11, 13, 12, 13, 13] });
  });

  for (const [nodes, shape] of [[1, 'root only'], [2, 'chain'], [9, 'chain'], [17, 'tree'], [64, 'tree'], [128, 'tree']] as const) {
    it(`equals the reference: ${nodes} nodes, ${shape}`, async () => {
      const gpu = await testGpu();
      const random = rng(300 + nodes);
      const vocab = 6; // few token values: siblings share tokens and walks run deep
      let longest = 0;
      for (let trial = 0; trial < 8; trial++) {
        const parents = shape === 'tree' ? randomTree(nodes, random) : Array.from({ length: nodes }, (_, i) => i - 1);
        const tokens = parents.map(() => Math.floor(random() * vocab));
        // The target agrees with a random child 3 times in 4, so paths run several nodes deep.
        const targetNext = parents.map((_, node) => {
          const children = parents.flatMap((p, c) => (p === node ? [c] : []));
          return children.length && random() < 0.75 ? tokens[children[Math.floor(random() * children.length)]] : Math.floor(random() * vocab);
        });
        const depth = Math.max(...parents.map(function depthOf(p): number { return p < 0 ? 0 : 1 + depthOf(parents[p]); }));
        const want = acceptGreedyRef(tokens, parents, targetNext);
        const got = await runGreedyAccept(gpu, tokens, parents, targetNext, 37, depth);
        expect({ path: got.path, bonus: got.bonus }).toEqual(want);
        expect({ tokens: got.tokens, moves: got.moves }).toEqual(acceptedPathRef(tokens, want.path, depth, 37));
        longest = Math.max(longest, want.path.length);
      }
      expect(longest).toBeGreaterThanOrEqual(Math.min(nodes, 3)); // the walks went past the root
    });
  }
});
