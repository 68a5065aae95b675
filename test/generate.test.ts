// The generation loop on a seeded llama GGUF: greedy equals the argmax of teacher-forced logits,
// seeds reproduce, stop tokens and strings end the text, abort stops at the next step and the
// model stays usable, and stats are filled in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGGUF } from '../src/formats/gguf-reader';
import { generate } from '../src/engine/generate';
import { MAX_TREE_ROWS, Session } from '../src/engine/session';
import { Decoder } from '../src/models/decoder';
import { Tokenizer } from '../src/tokenizer';
import { llamaFixture } from './oracle/llama-fixture';
import { testGpu } from './util';

describe('generate', () => {
  let decoder: Decoder;
  let tokenizer: Tokenizer;
  const prompt = 'hello world the cat sat on';
  beforeAll(async () => {
    const file = await readGGUF(llamaFixture({ nEmbd: 128, nHead: 4, nHeadKv: 2, nLayer: 2, nFf: 256, contextLength: 256, seed: 3 }));
    decoder = await Decoder.load(await testGpu(), file);
    tokenizer = Tokenizer.fromGGUFMetadata(file);
  });
  afterAll(() => decoder?.destroy());

  const run = async (request: Parameters<typeof generate>[3]) => {
    const gpu = await testGpu();
    const session = new Session(gpu, decoder, { contextLength: 128, prefillChunk: 16 });
    try {
      return await generate(decoder, tokenizer, session, request);
    } finally {
      session.destroy();
    }
  };

  it('greedy decoding follows the argmax of the teacher-forced logits', async () => {
    const result = await run({ prompt, maxTokens: 12, temperature: 0 });
    expect(result.tokens.length).toBeGreaterThan(0);
    const gpu = await testGpu();
    const session = new Session(gpu, decoder, { contextLength: 128 });
    const ids = tokenizer.encode(prompt);
    const logits = await session.evaluate([...ids, ...result.tokens]);
    session.destroy();
    result.tokens.forEach((id, i) => {
      const row = logits[ids.length - 1 + i];
      expect(id).toBe(row.indexOf(Math.max(...row)));
    });
    expect(result.text).toBe(tokenizer.decode(result.tokens));
  });

  it('decode steps after the first create no bind groups (they bind what the step before bound)', async () => {
    const gpu = await testGpu();
    const session = new Session(gpu, decoder, { contextLength: 128, prefillChunk: 16 });
    try {
      await session.prefill(tokenizer.encode(prompt, { addSpecial: true }));
      await session.decode(5);
      const before = gpu.bindGroupsCreated;
      for (const token of [6, 7, 8]) await session.decode(token);
      expect(gpu.bindGroupsCreated).toBe(before);
    } finally {
      session.destroy();
    }
  });

  it('the same seed gives the same text, another seed another', async () => {
    const a = await run({ prompt, maxTokens: 16, temperature: 1, seed: 42 });
    const b = await run({ prompt, maxTokens: 16, temperature: 1, seed: 42 });
    const c = await run({ prompt, maxTokens: 16, temperature: 1, seed: 43 });
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('stops at a stop token and at a stop string, leaving them out', async () => {
    const full = await run({ prompt, maxTokens: 10, temperature: 0 });
    const stopId = full.tokens[4];
    const byToken = await run({ prompt, maxTokens: 10, temperature: 0, stopTokens: [stopId] });
    expect(byToken.finishReason).toBe('stop');
    expect(byToken.tokens).toEqual(full.tokens.slice(0, full.tokens.indexOf(stopId)));
    const stop = full.text.slice(Math.floor(full.text.length / 2), Math.floor(full.text.length / 2) + 2);
    const byString = await run({ prompt, maxTokens: 10, temperature: 0, stop: [stop] });
    expect(byString.finishReason).toBe('stop');
    expect(byString.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
  });

  it('streams text pieces that add up to the result, and reports stats', async () => {
    const pieces: string[] = [];
    const result = await run({ prompt, maxTokens: 8, temperature: 0.7, seed: 1, onToken: (piece) => pieces.push(piece) });
    expect(pieces.join('')).toBe(result.text);
    expect(result.finishReason).toBe('length');
    expect(result.stats.promptTokens).toBe(tokenizer.encode(prompt).length);
    expect(result.stats.generatedTokens).toBe(8);
    expect(result.stats.timeToFirstTokenMs).toBeGreaterThan(0);
    expect(result.stats.prefillTokensPerSecond).toBeGreaterThan(0);
    expect(result.stats.decodeTokensPerSecond).toBeGreaterThan(0);
  });

  it('aborts at the next step and the model serves the next request', async () => {
    const controller = new AbortController();
    let seen = 0;
    const result = await run({ prompt, maxTokens: 50, temperature: 0, signal: controller.signal, onToken: () => ++seen === 3 && controller.abort() });
    expect(result.finishReason).toBe('abort');
    expect(result.tokens.length).toBe(3);
    const after = await run({ prompt, maxTokens: 5, temperature: 0 });
    const fresh = await run({ prompt, maxTokens: 5, temperature: 0 });
    expect(after.tokens).toEqual(fresh.tokens);
    expect(after.tokens.length).toBe(5);
  });

  it('refuses token ids outside the vocabulary and prompts longer than the context', async () => {
    await expect(run({ tokens: [1, 99999], maxTokens: 2 })).rejects.toThrow(/outside the vocabulary/);
    await expect(run({ tokens: Array(200).fill(300), maxTokens: 2 })).rejects.toThrow(/context/);
  });
});

describe('tree verification (decode N tokens at given positions with a tree mask)', () => {
  it('each node of a token tree gets the logits of decoding its path one token at a time', async () => {
    const gpu = await testGpu();
    const file = await readGGUF(llamaFixture({ nEmbd: 128, nHead: 4, nHeadKv: 2, nLayer: 2, nFf: 256, contextLength: 256, seed: 8 }));
    const decoder = await Decoder.load(gpu, file);
    const prefix = [1, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312, 313, 314, 315, 316, 317];
    // Two branches from the last prefix token, one of them branching again; DFS preorder.
    const tokens = [320, 321, 322, 323, 330, 331, 332];
    const parents = [-1, 0, 1, 1, -1, 4, 5];
    const session = new Session(gpu, decoder, { contextLength: 128, prefillChunk: 16 });
    await session.prefill(prefix);
    const tree = await session.evaluateTree(tokens, parents);
    expect(session.length).toBe(prefix.length);
    for (let i = 0; i < tokens.length; i++) {
      const path: number[] = [];
      for (let a = i; a >= 0; a = parents[a]) path.unshift(tokens[a]);
      const plain = new Session(gpu, decoder, { contextLength: 128, prefillChunk: 16 });
      const want = (await plain.evaluate([...prefix, ...path])).at(-1)!;
      plain.destroy();
      let worst = 0, lo = Infinity, hi = -Infinity;
      want.forEach((x, j) => { worst = Math.max(worst, Math.abs(x - tree[i][j])); lo = Math.min(lo, x); hi = Math.max(hi, x); });
      // Same arithmetic, other kernels (tree mask, another summation order): 1e-5 of the range.
      expect(worst / (hi - lo), `node ${i}`).toBeLessThan(1e-5);
    }
    session.destroy();
    decoder.destroy();
  });
  it('a prefill step longer than a tree keeps logits for MAX_TREE_ROWS rows only, and evaluate() still covers every token', async () => {
    const gpu = await testGpu();
    const file = await readGGUF(llamaFixture({ nEmbd: 128, nHead: 4, nHeadKv: 2, nLayer: 2, nFf: 256, contextLength: 256, seed: 8 }));
    const decoder = await Decoder.load(gpu, file);
    const vocab = decoder.config.vocabSize;
    // An mmproj raises the prefill step to an image's tokens + 64; the logits must not follow it.
    const long = new Session(gpu, decoder, { contextLength: 256, prefillChunk: MAX_TREE_ROWS + 40 });
    const short = new Session(gpu, decoder, { contextLength: 256, prefillChunk: 16 });
    try {
      expect(long.stepTokens).toBe(MAX_TREE_ROWS + 40);
      expect(long.treeRows).toBe(MAX_TREE_ROWS);
      expect(long.scratch.logits.size).toBe(MAX_TREE_ROWS * vocab * 4);
      const tokens = Array.from({ length: MAX_TREE_ROWS + 20 }, (_, i) => 1 + ((i * 37) % (vocab - 1)));
      const [got, want] = [await long.evaluate(tokens), await short.evaluate(tokens)];
      expect(got.length).toBe(tokens.length);
      for (const i of [0, MAX_TREE_ROWS - 1, MAX_TREE_ROWS, tokens.length - 1]) {
        const range = Math.max(...want[i]) - Math.min(...want[i]);
        expect(Math.max(...want[i].map((x, j) => Math.abs(x - got[i][j]))) / range, `row ${i}`).toBeLessThan(1e-5);
      }
      const chain = (n: number) => Array.from({ length: n }, (_, i) => i - 1);
      long.truncate(0);
      await long.prefill([1, 2, 3]);
      await expect(long.evaluateTree(new Array(MAX_TREE_ROWS + 1).fill(5), chain(MAX_TREE_ROWS + 1))).rejects.toThrow(/1\.\.128 nodes/);
      expect((await long.evaluateTree(new Array(MAX_TREE_ROWS).fill(5), chain(MAX_TREE_ROWS))).length).toBe(MAX_TREE_ROWS);
    } finally {
      long.destroy();
      short.destroy();
      decoder.destroy();
    }
  });
});
