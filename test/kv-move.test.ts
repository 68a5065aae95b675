// kvMove (speculative commit and compaction): every format's K, V and scales words end up exactly
// as the CPU reference moves them, through identity and shuffled page tables, with pairs that read
// slots earlier pairs wrote.
import { describe, expect, it } from 'vitest';
import { KV_FORMATS, PAGE, createKvCache, identityPageTable, kvMove, kvWrite, wordsPerHead } from '../src/kernels/kv-cache';
import { kvMoveRef } from '../src/reference/kv-cache';
import { randomNormal, rng, testGpu } from './util';

describe('kvMove', () => {
  for (const format of KV_FORMATS) {
    for (const shuffled of [false, true]) {
      it(`${format}, ${shuffled ? 'shuffled' : 'identity'} page table`, async () => {
        const gpu = await testGpu();
        const kvHeads = 2, headDim = 64, capacity = 4 * PAGE;
        let table = identityPageTable(capacity);
        if (shuffled) {
          const r = rng(7);
          table = table.slice().sort(() => r() - 0.5);
        }
        const cache = createKvCache(gpu, { capacity, kvHeads, headDim, format, pageTable: gpu.upload(table) });
        const slots = Uint32Array.from({ length: capacity }, (_, i) => i);
        const row = kvHeads * headDim;
        await gpu.run((pass) => kvWrite(gpu, pass, {
          cache, k: gpu.upload(randomNormal(capacity * row, 1)), v: gpu.upload(randomNormal(capacity * row, 2)), slots: gpu.upload(slots), count: capacity,
        }));
        // An accepted path moved to the front (ascending), then a chain: slot 3 takes slot 40,
        // then slot 2 takes slot 3 (the value just written), as the in-order semantics say.
        const pairs = [33, 30, 36, 31, 45, 32, 40, 3, 3, 2, 63, 0];
        const before = await Promise.all([cache.k, cache.v, cache.kScales, cache.vScales].map((b) => gpu.readU32(b, b.size / 4)));
        await gpu.run((pass) => kvMove(gpu, pass, { cache, pairs: gpu.upload(Uint32Array.from(pairs)), count: pairs.length / 2 }));
        const after = await Promise.all([cache.k, cache.v, cache.kScales, cache.vScales].map((b) => gpu.readU32(b, b.size / 4)));
        const dataWords = kvHeads * wordsPerHead(format, headDim);
        const scaleWords = kvHeads * (headDim / cache.group);
        expect(after[0]).toEqual(kvMoveRef(before[0], dataWords, table, pairs));
        expect(after[1]).toEqual(kvMoveRef(before[1], dataWords, table, pairs));
        if (format === 'int8' || format === 'int4') {
          expect(after[2]).toEqual(kvMoveRef(before[2], scaleWords, table, pairs));
          expect(after[3]).toEqual(kvMoveRef(before[3], scaleWords, table, pairs));
        }
        expect(after[0]).not.toEqual(before[0]);
        // Per head: each kv head compacts its own choice of slots.
        const perHead = [5, 0, 9, 1, 20, 2, /* head 1: */ 7, 0, 8, 1, 63, 2];
        await gpu.run((pass) => kvMove(gpu, pass, { cache, pairs: gpu.upload(Uint32Array.from(perHead)), count: 3, perHead: true }));
        const moved = await Promise.all([cache.k, cache.v, cache.kScales, cache.vScales].map((b) => gpu.readU32(b, b.size / 4)));
        expect(moved[0]).toEqual(kvMoveRef(after[0], dataWords, table, perHead, kvHeads));
        expect(moved[1]).toEqual(kvMoveRef(after[1], dataWords, table, perHead, kvHeads));
        if (format === 'int8' || format === 'int4') expect(moved[3]).toEqual(kvMoveRef(after[3], scaleWords, table, perHead, kvHeads));
      });
    }
  }
});
