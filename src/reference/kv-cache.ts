// CPU reference for moving KV slots: the same in-order semantics as the kvMove kernel, on the raw
// u32 words of one cache buffer.
import { PAGE } from '../kernels/kv-cache';

export function kvMoveRef(words: Uint32Array, rowWords: number, pageTable: Uint32Array, pairs: ArrayLike<number>, heads = 1): Uint32Array {
  const out = words.slice();
  const physical = (slot: number) => pageTable[Math.floor(slot / PAGE)] * PAGE + (slot % PAGE);
  // Per head (heads > 1): head h's words [h * headWords, (h + 1) * headWords) of each slot follow pairs[h].
  const headWords = rowWords / heads;
  const count = pairs.length / 2 / heads;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < count; i++) {
      const [from, to] = [pairs[2 * (h * count + i)], pairs[2 * (h * count + i) + 1]];
      const src = physical(from) * rowWords + h * headWords;
      out.copyWithin(physical(to) * rowWords + h * headWords, src, src + headWords);
    }
  }
  return out;
}
