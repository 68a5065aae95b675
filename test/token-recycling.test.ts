// Token Recycling: its kernels against CPU references, the template as a DFS tree, and the
// strategy end to end: plain greedy's tokens, and more tokens per step once M is warm.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/engine/generate';
import { Session } from '../src/engine/session';
import { generateSpeculative } from '../src/engine/speculative/generate';
import { CANDIDATES, TEMPLATE_2_2_2, TokenRecycling, templateTree } from '../src/engine/speculative/token-recycling';
import { readGGUF } from '../src/formats/gguf-reader';
import { candidatesUpdate, treeFill } from '../src/kernels/token-recycling';
import { Decoder } from '../src/models/decoder';
import { candidatesUpdateRef, treeFillRef } from '../src/reference/token-recycling';
import { Tokenizer } from '../src/tokenizer';
import { llamaFixture } from './oracle/llama-fixture';
import { rng, testGpu } from './util';

describe('Token Recycling kernels', () => {
  const vocab = 300;
  const randomIds = (n: number, seed: number) => {
    const r = rng(seed);
    return Uint32Array.from({ length: n }, () => Math.floor(r() * vocab));
  };

  it('treeFill follows the template through M', async () => {
    const gpu = await testGpu();
    const candidates = randomIds(vocab * CANDIDATES, 1);
    const { parents, ranks } = templateTree(TEMPLATE_2_2_2, 80);
    const nodes = Uint32Array.from([0, 0, ...parents.flatMap((p, i) => [p + 1, ranks[i]])]);
    const ids = gpu.buffer(81 * 4);
    await gpu.run((pass) => treeFill(gpu, pass, { candidates: gpu.upload(candidates), templateNodes: gpu.upload(nodes), ids, count: 81, root: 17, k: CANDIDATES }));
    expect(await gpu.readU32(ids, 81)).toEqual(treeFillRef(candidates, nodes, 81, 17, CANDIDATES));
  });

  it('candidatesUpdate writes each row\'s top-k into M, a later duplicate winning', async () => {
    const gpu = await testGpu();
    const candidates = randomIds(vocab * CANDIDATES, 2);
    const ids = Uint32Array.from([5, 9, 5, 200, 9, 0]);
    const top = randomIds(ids.length * CANDIDATES, 3);
    const m = gpu.upload(candidates);
    await gpu.run((pass) => candidatesUpdate(gpu, pass, { ids: gpu.upload(ids), top: gpu.upload(top), candidates: m, rows: ids.length, k: CANDIDATES }));
    expect(await gpu.readU32(m, candidates.length)).toEqual(candidatesUpdateRef(candidates, ids, top, ids.length, CANDIDATES));
  });

  it('template prefixes are trees in DFS preorder', () => {
    for (const size of [1, 8, 20, 80]) {
      const { parents, ranks } = templateTree(TEMPLATE_2_2_2, size);
      expect(parents.length).toBe(size);
      parents.forEach((p, i) => expect(p).toBeLessThan(i));
      // Preorder: a node's subtree is contiguous, so every node's parent is the nearest earlier node one level up.
      const depth = parents.map(() => 0);
      parents.forEach((p, i) => (depth[i] = p < 0 ? 1 : depth[p] + 1));
      parents.forEach((p, i) => {
        if (i > 0 && depth[i] > depth[i - 1]) expect(p).toBe(i - 1);
      });
      expect(Math.max(...ranks)).toBeLessThan(CANDIDATES);
    }
  });
});

describe('Token Recycling generation', () => {
  let target: Decoder;
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    const file = await readGGUF(llamaFixture({ nEmbd: 128, nHead: 4, nHeadKv: 2, nLayer: 2, nFf: 256, contextLength: 512, seed: 31 }));
    target = await Decoder.load(await testGpu(), file);
    tokenizer = Tokenizer.fromGGUFMetadata(file);
  });
  afterAll(() => target?.destroy());

  it('gives plain greedy decoding\'s tokens, and a warm candidate matrix accepts more', async () => {
    const gpu = await testGpu();
    const prompt = 'hello world the cat sat on the mat';
    const session = () => new Session(gpu, target, { contextLength: 512, prefillChunk: 96 });
    const plainSession = session();
    const want = (await generate(target, tokenizer, plainSession, { prompt, maxTokens: 80, temperature: 0 })).tokens;
    plainSession.destroy();
    const strategy = new TokenRecycling(gpu, target.config.vocabSize);
    try {
      const runs = [];
      for (let i = 0; i < 2; i++) {
        const s = session();
        runs.push(await generateSpeculative(target, tokenizer, s, { prompt, maxTokens: 80, temperature: 0 }, strategy, { maxNodes: 80 }));
        s.destroy();
      }
      for (const r of runs) expect(r.tokens).toEqual(want);
      console.log(`token recycling: cold ${runs[0].speculative.tokensPerStep.toFixed(2)}, hot ${runs[1].speculative.tokensPerStep.toFixed(2)} tokens/step`);
      expect(runs[1].speculative.tokensPerStep).toBeGreaterThan(runs[0].speculative.tokensPerStep);
      expect(runs[1].speculative.tokensPerStep).toBeGreaterThan(1.5);
    } finally {
      strategy.destroy();
    }
  }, 300_000);
});
