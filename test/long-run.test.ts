// The long run (issue 7): greedy generation far past the cache's size under StreamingLLM, on a
// small synthetic model, with memory measured flat: the KV bytes, the GPU bind groups created
// (none after warm-up: every step binds the same buffers) and the JS heap (which grows only by the
// token history). CI runs 3,000 tokens; TOKENWISE_LONG_RUN=1 runs the full 100,000 (measured
// 2026-12-01 on SwiftShader with 2 cores: 567 s, KV 16 KiB and 60 bind groups throughout, the heap
// 12.8 -> 13.8 MiB from token 10,000 to 100,000, within the history's allowance):
//   TOKENWISE_LONG_RUN=1 npx vitest run test/long-run.test.ts
import { expect, it } from 'vitest';
import { Session } from '../src/engine/session';
import { readGGUF } from '../src/formats/gguf-reader';
import { Decoder } from '../src/models/decoder';
import { llamaFixture } from './oracle/llama-fixture';
import { testGpu } from './util';

const TOKENS = process.env.TOKENWISE_LONG_RUN ? 100_000 : 3_000;

it(`generates ${TOKENS.toLocaleString('en')} tokens under StreamingLLM with flat memory`, async () => {
  const gpu = await testGpu();
  const decoder = await Decoder.load(gpu, await readGGUF(llamaFixture({ nEmbd: 32, nHead: 1, nHeadKv: 1, nLayer: 1, nFf: 64, contextLength: 256, seed: 7 })));
  const session = new Session(gpu, decoder, { prefillChunk: 16, kv: { policy: 'streaming-llm', budget: 48, sinks: 4 } });
  try {
    const kvBytes = session.kvBytes;
    let token = await session.feedGreedy([1, 300, 301, 302]);
    const distinct = new Set<number>();
    const samples: Array<{ tokens: number; heap: number; bindGroups: number }> = [];
    const started = performance.now();
    for (let i = 1; i <= TOKENS; i++) {
      token = await session.feedGreedy([token]);
      distinct.add(token);
      if (i % Math.floor(TOKENS / 10) === 0) {
        globalThis.gc?.();
        samples.push({ tokens: i, heap: process.memoryUsage().heapUsed, bindGroups: gpu.bindGroupsCreated });
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const stats = (await session.kvStats())!;
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    console.log(`${TOKENS} tokens in ${seconds.toFixed(0)} s (${((seconds * 1000) / TOKENS).toFixed(2)} ms/token), ${distinct.size} distinct; KV ${session.kvBytes} bytes throughout; ` +
      `heap ${samples.map((s) => mib(s.heap)).join(' → ')} MiB; bind groups created ${samples.map((s) => s.bindGroups).join(' → ')}; ${stats.evictions} evictions`);
    expect(session.tokens.length).toBe(TOKENS + 4);
    expect(session.kvBytes).toBe(kvBytes);
    expect(session.length).toBeLessThanOrEqual(session.capacity);
    expect(stats.evictedTokens).toBe(TOKENS + 4 - stats.keptTokens);
    // After the first tenth, nothing new is bound, and the heap grows by no more than the token
    // history the session keeps (a number a token: 8 bytes, 16 with the array's spare capacity) and a little slack.
    const [first, last] = [samples[0], samples.at(-1)!];
    expect(last.bindGroups).toBe(first.bindGroups);
    expect(last.heap - first.heap).toBeLessThan(16 * (last.tokens - first.tokens) + 2 ** 18);
    expect(distinct.size).toBeGreaterThan(1); // it generated, not one token forever
  } finally {
    session.destroy();
    decoder.destroy();
  }
}, 3_600_000);
