// CPU reference for moving KV slots: the same in-order semantics as the kvMove kernel, on the raw
// u32 words of one cache buffer.
import { PAGE } from '../kernels/kv-cache';

export function kvMoveRef(words: Uint32Array, rowWords: number, pageTable: Uint32Array, pairs: ArrayLike<number>): Uint32Array {
  const out = words.slice();
  const physical = (slot: number) => pageTable[Math.floor(slot / PAGE)] * PAGE + (slot % PAGE);
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const from = physical(pairs[i]) * rowWords;
    out.copyWithin(physical(pairs[i + 1]) * rowWords, from, from + rowWords);
  }
  return out;
}
