// The Engine in-thread (the worker path runs the same core; e2e tests drive it in Chromium):
// loading from bytes, a Blob, a URL with Range requests, a sharded GGUF and with integrity;
// streaming that equals plain generate(); chat.completions; abort; sessions with prefix reuse;
// and errors with kinds after which the engine still works.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/engine/engine';
import { EngineCore } from '../src/engine/engine-core';
import type { Gpu } from '../src/gpu';
import { EngineError } from '../src/engine/errors';
import { generate } from '../src/engine/generate';
import { Session } from '../src/engine/session';
import { gv } from '../src/formats/gguf';
import { readGGUF } from '../src/formats/gguf-reader';
import { encodeGGUF } from '../src/formats/gguf-writer';
import { Decoder } from '../src/models/decoder';
import { Tokenizer } from '../src/tokenizer';
import { llamaFixture, llamaFixtureSpec } from './oracle/llama-fixture';
import { serveFiles, type TestServer } from './serve';
import { testGpu } from './util';

const shape = { nEmbd: 128, nHead: 4, nHeadKv: 2, nLayer: 2, nFf: 256, contextLength: 256, seed: 5 };
const model = llamaFixture(shape) as Uint8Array<ArrayBuffer>;
const prompt = 'hello world the cat sat on';

/** What plain generate() on a fresh session gives: the reference for the engine's output. */
async function reference(request: { prompt: string; maxTokens: number }): Promise<number[]> {
  const gpu = await testGpu();
  const file = await readGGUF(model);
  const decoder = await Decoder.load(gpu, file);
  const session = new Session(gpu, decoder, { contextLength: 256 });
  try {
    return (await generate(decoder, Tokenizer.fromGGUFMetadata(file), session, { ...request, temperature: 0 })).tokens;
  } finally {
    session.destroy();
    decoder.destroy();
  }
}

async function kindOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(EngineError);
    return (error as EngineError).kind;
  }
  throw new Error('expected an error');
}

/** The same model as two llama.cpp-style shards. */
function shards(): Record<string, Uint8Array> {
  const { spec } = llamaFixtureSpec(shape);
  const tensors = spec.tensors!;
  const half = Math.ceil(tensors.length / 2);
  const split = (no: number) => [['split.no', gv.u16(no)], ['split.count', gv.u16(2)], ['split.tensors.count', gv.i32(tensors.length)]] as const;
  return {
    '/split-00001-of-00002.gguf': encodeGGUF({ metadata: [...(spec.metadata as Iterable<readonly [string, never]>), ...split(0)], tensors: tensors.slice(0, half) }),
    '/split-00002-of-00002.gguf': encodeGGUF({ metadata: [...split(1)], tensors: tensors.slice(half) }),
  };
}

describe('Engine (in-thread)', () => {
  let engine: Engine;
  let server: TestServer;
  let greedy: number[];
  beforeAll(async () => {
    engine = createEngine({ worker: false });
    server = await serveFiles({ '/model.gguf': model, '/not-a-model.gguf': new TextEncoder().encode('<html>nope</html>'), ...shards() });
    greedy = await reference({ prompt, maxTokens: 12 });
  });
  afterAll(async () => {
    await engine?.dispose();
    await server?.close();
  });

  it('loads from bytes with upload and compile progress, and describes the model', async () => {
    const phases = new Map<string, { loaded: number; total: number }>();
    const info = await engine.load(model, { onProgress: (p) => phases.set(p.phase, p) });
    expect(info).toMatchObject({ architecture: 'llama', layers: 2, hidden: 128, heads: 4, kvHeads: 2, files: 1, fileBytes: model.byteLength });
    for (const phase of ['upload', 'compile']) {
      const last = phases.get(phase)!;
      expect(last.total).toBeGreaterThan(0);
      expect(last.loaded).toBe(last.total);
    }
  });

  it('streams pieces that add up to the result, and greedy output equals plain generate()', async () => {
    const stream = engine.generate({ prompt, maxTokens: 12, temperature: 0, session: await engine.createSession() });
    const pieces: string[] = [];
    for await (const piece of stream) pieces.push(piece);
    const result = await stream.result;
    expect(pieces.join('')).toBe(result.text);
    expect(result.tokens).toEqual(greedy);
    expect(result.stats.kvBytes).toBeGreaterThan(0);
    expect(result.stats.timeToFirstTokenMs).toBeGreaterThan(0);
  });

  it('chat.completions.create answers whole and as a stream with the same content', async () => {
    const messages = [{ role: 'user', content: 'hello world' }];
    const whole = await engine.chat.completions.create({ messages, max_tokens: 8, temperature: 0 });
    expect(whole.object).toBe('chat.completion');
    expect(whole.usage.completion_tokens).toBeGreaterThan(0);
    expect(whole.usage.total_tokens).toBe(whole.usage.prompt_tokens + whole.usage.completion_tokens);
    const chunks = [];
    for await (const chunk of await engine.chat.completions.create({ messages, max_tokens: 8, temperature: 0, stream: true })) chunks.push(chunk);
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe(whole.choices[0].message.content);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
    expect(chunks.at(-1)!.usage?.completion_tokens).toBe(whole.usage.completion_tokens);
  });

  it('an abort stops the stream early, and the next request on the session is correct', async () => {
    const session = await engine.createSession();
    const controller = new AbortController();
    const stream = engine.generate({ prompt, maxTokens: 200, temperature: 0.9, seed: 3, session, signal: controller.signal });
    let seen = 0;
    for await (const piece of stream) {
      expect(piece.length).toBeGreaterThan(0);
      if (++seen === 3) controller.abort();
    }
    const aborted = await stream.result;
    expect(aborted.finishReason).toBe('abort');
    expect(aborted.tokens.length).toBeLessThan(200);
    const next = await engine.generate({ prompt, maxTokens: 12, temperature: 0, session }).result;
    expect(next.tokens).toEqual(greedy);
  });

  it('a continued conversation reuses the cached prefix and gives what a fresh session gives', async () => {
    const session = await engine.createSession();
    const first = await engine.generate({ prompt, maxTokens: 6, temperature: 0, session }).result;
    const longer = `${prompt}${first.text} the mat`;
    const continued = await engine.generate({ prompt: longer, maxTokens: 8, temperature: 0, session }).result;
    expect(continued.stats.cachedPromptTokens).toBeGreaterThan(0);
    const fresh = await engine.generate({ prompt: longer, maxTokens: 8, temperature: 0, session: await engine.createSession() }).result;
    expect(fresh.stats.cachedPromptTokens).toBe(0);
    expect(continued.tokens).toEqual(fresh.tokens);
  });

  it('queues requests to one session and runs them one after another', async () => {
    const session = await engine.createSession();
    const results = await Promise.all([1, 2, 3].map(() => engine.generate({ prompt, maxTokens: 12, temperature: 0, session }).result));
    for (const r of results) expect(r.tokens).toEqual(greedy);
    await engine.deleteSession(session);
    expect(await kindOf(engine.generate({ prompt, session }).result)).toBe('bad-request');
  });

  it('loads by URL with Range requests and download progress, from a Blob, and from shards', async () => {
    const progress: number[] = [];
    await engine.load(server.url('/model.gguf'), { cache: 'none', onProgress: (p) => p.phase === 'download' && progress.push(p.loaded / p.total) });
    expect(server.requests.get('/model.gguf')!.ranged).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(1);
    expect((await engine.generate({ prompt, maxTokens: 12, temperature: 0 }).result).tokens).toEqual(greedy);

    await engine.load(new Blob([model]));
    expect((await engine.generate({ prompt, maxTokens: 12, temperature: 0 }).result).tokens).toEqual(greedy);

    const info = await engine.load(server.url('/split-00002-of-00002.gguf'), { cache: 'none' });
    expect(info.files).toBe(2);
    expect((await engine.generate({ prompt, maxTokens: 12, temperature: 0 }).result).tokens).toEqual(greedy);
  });

  it('checks SHA-256 integrity', async () => {
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', model));
    const sri = `sha256-${btoa(String.fromCharCode(...digest))}`;
    await engine.load(server.url('/model.gguf'), { integrity: sri });
    const wrong = `sha256-${btoa(String.fromCharCode(...digest.map((b) => b ^ 1)))}`;
    expect(await kindOf(engine.load(server.url('/model.gguf'), { integrity: wrong }))).toBe('integrity');
  });

  it('bad input fails with a clear kind and the loaded model keeps working', async () => {
    await engine.load(model);
    expect(await kindOf(engine.load(server.url('/missing.gguf'), { cache: 'none' }))).toBe('network');
    expect(await kindOf(engine.load(server.url('/not-a-model.gguf'), { cache: 'none' }))).toBe('bad-model');
    expect(await kindOf(engine.load(model.subarray(0, model.byteLength - 100)))).toBe('bad-model');
    expect(await kindOf(engine.load(model.subarray(0, 5000)))).toBe('bad-model');
    const qwen35 = llamaFixtureSpec(shape).spec;
    const renamed = encodeGGUF({ ...qwen35, metadata: [...(qwen35.metadata as Iterable<readonly [string, never]>)].map(([k, v]) => k === 'general.architecture' ? [k, gv.str('mamba')] : [k, v]) as never });
    expect(await kindOf(engine.load(renamed))).toBe('unsupported');
    expect(await kindOf(engine.generate({ prompt, session: 'nope' }).result)).toBe('bad-request');
    expect(await kindOf(engine.generate({ prompt, tokens: [1] }).result)).toBe('bad-request');
    expect(await kindOf(engine.generate({ tokens: [1, 10 ** 6] }).result)).toBe('bad-request');
    expect((await engine.generate({ prompt, maxTokens: 12, temperature: 0 }).result).tokens).toEqual(greedy);
  });

  it('speculative decoding through the engine: every strategy gives the plain greedy tokens, and samples reproducibly', async () => {
    if (!(await engine.info())) await engine.load(model);
    expect(await kindOf(engine.generate({ prompt, maxTokens: 4, temperature: 0, speculative: { strategy: 'draft-model' } }).result)).toBe('bad-request');
    await engine.loadDraft(llamaFixture({ ...shape, seed: 6 }));
    for (const strategy of ['prompt-lookup', 'token-recycling', 'draft-model', 'layer-skip'] as const) {
      const result = await engine.generate({ prompt, maxTokens: 12, temperature: 0, session: await engine.createSession(), speculative: { strategy } }).result;
      expect(result.tokens, strategy).toEqual(greedy);
      expect(result.stats.speculative?.strategy).toBe(strategy);
      expect(result.stats.speculative!.steps).toBeLessThanOrEqual(12);
    }
    // Sampling: every strategy runs (lossless by test/speculative-sampled.test.ts), a seed reproduces
    // the tokens where the drafts depend only on the text (Token Recycling's candidates keep
    // learning across requests), and a repetition penalty is refused with a clear kind.
    for (const strategy of ['prompt-lookup', 'token-recycling', 'draft-model', 'layer-skip'] as const) {
      const request = { prompt, maxTokens: 6, temperature: 0.8, topK: 20, seed: 9, speculative: { strategy, sizing: 'fixed' as const, maxNodes: 4 } };
      const [first, again] = [await engine.generate(request).result, await engine.generate(request).result];
      expect(first.tokens.length, strategy).toBe(6);
      if (strategy !== 'token-recycling') expect(again.tokens, strategy).toEqual(first.tokens);
      expect(first.stats.speculative!.steps).toBeLessThanOrEqual(6);
    }
    expect(await kindOf(engine.generate({ prompt, maxTokens: 4, temperature: 0.7, repetitionPenalty: 1.2, speculative: { strategy: 'prompt-lookup' } }).result)).toBe('bad-request');
    expect(await kindOf(engine.generate({ prompt, maxTokens: 4, temperature: 0, speculative: { strategy: 'prompt-lookup', minPathValue: 2 } }).result)).toBe('bad-request');
    expect(await kindOf(engine.generate({ prompt, maxTokens: 4, temperature: 0, speculative: { strategy: 'prompt-lookup', minConfidence: -1 } }).result)).toBe('bad-request');
    const otherVocab = llamaFixtureSpec(shape).spec;
    expect(await kindOf(engine.loadDraft(encodeGGUF({ ...otherVocab, metadata: [...(otherVocab.metadata as Iterable<readonly [string, never]>)].map(([k, v]) => k === 'tokenizer.ggml.tokens' ? [k, gv.strings((v as unknown as { value: { items: string[] } }).value.items.map((t, i) => i === 300 ? 'xyz' : t))] : [k, v]) as never })))).toBe('bad-request');
  }, 600_000);

  it('a request over the session\'s context fails as too-large, and the session still works', async () => {
    if (!(await engine.info())) await engine.load(model);
    const session = await engine.createSession({ contextLength: 32 });
    expect(await kindOf(engine.generate({ prompt, maxTokens: 100, session }).result)).toBe('too-large');
    expect((await engine.generate({ prompt, maxTokens: 12, temperature: 0, session }).result).tokens).toEqual(greedy);
  });

  it('a session with a KV policy generates past its cache size at flat memory, continues a conversation, and refuses what it cannot do', async () => {
    if (!(await engine.info())) await engine.load(model);
    const session = await engine.createSession({ kv: { policy: 'streaming-llm', budget: 16, quantization: 'int8' } });
    const ids = [1, 300, 301, 302, 303];
    const first = await engine.generate({ tokens: ids, maxTokens: 100, temperature: 0, session }).result;
    expect(first.stats.kv).toMatchObject({ policy: 'streaming-llm', budget: 16 });
    // The cache holds 16 + one 64-token prefill step, in int8 (a quarter of f32, plus scales).
    const kvBytes = first.stats.kvBytes;
    expect(first.stats.sessionTokens).toBeLessThanOrEqual(80);
    if (first.finishReason === 'length') expect(first.stats.kv!.evictedTokens).toBeGreaterThan(0);
    // Continuing the conversation reuses the whole (compressed) cache; a different prompt starts afresh.
    const continued = await engine.generate({ tokens: [...ids, ...first.tokens, 304], maxTokens: 4, temperature: 0, session }).result;
    expect(continued.stats.cachedPromptTokens).toBe(ids.length + first.tokens.length - 1);
    expect(continued.stats.kvBytes).toBe(kvBytes);
    const other = await engine.generate({ prompt: 'the mat', maxTokens: 4, temperature: 0, session }).result;
    expect(other.stats.cachedPromptTokens).toBe(0);
    expect(other.stats.kv!.evictions).toBe(0);
    expect(await kindOf(engine.generate({ prompt, maxTokens: 4, session, speculative: { strategy: 'prompt-lookup' } }).result)).toBe('unsupported');
    expect(await kindOf(engine.createSession({ kv: { policy: 'h2o', budget: 2 } }))).toBe('bad-request');
    expect(await kindOf(engine.createSession({ kv: { policy: 'nope' as 'h2o' } }))).toBe('bad-request');
    expect((await engine.generate({ prompt, maxTokens: 12, temperature: 0, session }).result).tokens.length).toBeGreaterThan(0);
  });

  it('a session with a selection policy keeps its context, attends to its budget, rolls back to any prefix, and refuses speculation', async () => {
    if (!(await engine.info())) await engine.load(model);
    const session = await engine.createSession({ kv: { policy: 'tokenselect', budget: 16 }, prefillChunk: 8 });
    const ids = [1, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311];
    const first = await engine.generate({ tokens: ids, maxTokens: 30, temperature: 0, session }).result;
    const { kv } = first.stats;
    expect(kv).toMatchObject({ policy: 'tokenselect', budget: 16, evictions: 0, keptTokens: first.stats.sessionTokens });
    expect(kv!.selected!.cache!.hits + kv!.selected!.cache!.misses).toBe(2 * kv!.selected!.sparseSteps); // each layer, each sparse step
    expect(kv!.selected!.sparseSteps).toBeGreaterThan(0);
    expect(kv!.selected!.positions).toHaveLength(16);
    // Rolling back to part of the conversation is allowed (nothing was evicted): the same prefix gives the same reply.
    const again = await engine.generate({ tokens: [...ids.slice(0, 6), 350], maxTokens: 30, temperature: 0, session }).result;
    expect(again.stats.cachedPromptTokens).toBe(6);
    const fresh = await engine.createSession({ kv: { policy: 'tokenselect', budget: 16 }, prefillChunk: 8 });
    const want = await engine.generate({ tokens: [...ids.slice(0, 6), 350], maxTokens: 30, temperature: 0, session: fresh }).result;
    expect(again.tokens).toEqual(want.tokens);
    await engine.deleteSession(fresh);
    expect(await kindOf(engine.generate({ prompt, maxTokens: 4, session, speculative: { strategy: 'prompt-lookup' } }).result)).toBe('unsupported');
    expect(await kindOf(engine.createSession({ kv: { policy: 'tokenselect', budget: 16, sinks: 4, recent: 12 } }))).toBe('bad-request');
  });

  it('after the device is lost, requests say so, and the next load gets a new device', async () => {
    const core = new EngineCore();
    try {
      await core.load(model);
      (core as unknown as { gpu: Gpu }).gpu.device.destroy();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await kindOf(core.generate('r1', { prompt, maxTokens: 4 }))).toBe('device-lost');
      await core.load(model);
      expect((await core.generate('r2', { prompt, maxTokens: 12, temperature: 0 })).tokens).toEqual(greedy);
    } finally {
      await core.dispose();
    }
  });

  it('without a model, requests fail as bad requests; dispose frees everything', async () => {
    const empty = createEngine({ worker: false });
    expect(await kindOf(empty.generate({ prompt }).result)).toBe('bad-request');
    await empty.dispose();
  });
});

describe('Engine in a Node worker thread (the default in Node)', () => {
  let engine: Engine;
  let server: TestServer;
  let greedy: number[];
  beforeAll(async () => {
    engine = createEngine();
    server = await serveFiles({ '/model.gguf': model });
    greedy = await reference({ prompt, maxTokens: 12 });
  });
  afterAll(async () => {
    await engine?.dispose();
    await server?.close();
  });

  it('loads by URL with progress callbacks across the thread, and greedy output equals plain generate()', async () => {
    expect(engine.inWorker).toBe(true);
    const phases = new Set<string>();
    const info = await engine.load(server.url('/model.gguf'), { onProgress: (p) => phases.add(p.phase) });
    expect(info).toMatchObject({ architecture: 'llama', layers: 2 });
    expect([...phases].sort()).toEqual(['compile', 'download', 'upload']);
    const stream = engine.generate({ prompt, maxTokens: 12, temperature: 0 });
    const pieces: string[] = [];
    for await (const piece of stream) pieces.push(piece);
    const result = await stream.result;
    expect(result.tokens).toEqual(greedy);
    expect(pieces.join('')).toBe(result.text);
  });

  it('aborts across the thread, keeps error kinds, and serves the next request', async () => {
    const controller = new AbortController();
    const stream = engine.generate({ prompt, maxTokens: 200, temperature: 0, signal: controller.signal });
    let seen = 0;
    for await (const _ of stream) if (++seen === 2) controller.abort();
    expect((await stream.result).finishReason).toBe('abort');
    expect(await kindOf(engine.load(new Uint8Array([1, 2, 3])))).toBe('bad-model');
    expect((await engine.generate({ prompt, maxTokens: 12, temperature: 0 }).result).tokens).toEqual(greedy);
  });

  it('dispose ends the thread, and later calls fail instead of hanging', async () => {
    const other = createEngine();
    await other.dispose();
    expect(await kindOf(other.info())).toBe('bad-request');
  });
});
