// CPU embedding gather for tests: row ids[i] of the dequantized table, or zeros when the id is
// not a row of the table (the GPU kernel's documented behaviour).
import type { GGMLTypeId } from '../formats/ggml-types';
import { dequantize } from '../formats/quantize';

/** out[i][k] = table[ids[i]][k] for a [rows][cols] f32 table; zero rows for ids >= rows. */
export function embeddingRef(table: Float32Array, rows: number, cols: number, ids: Uint32Array): Float32Array {
  const out = new Float32Array(ids.length * cols);
  ids.forEach((id, i) => {
    if (id < rows) out.set(table.subarray(id * cols, (id + 1) * cols), i * cols);
  });
  return out;
}

/** embeddingRef on a table given as GGUF bytes of `type`. */
export function quantizedEmbeddingRef(type: GGMLTypeId, bytes: Uint8Array, rows: number, cols: number, ids: Uint32Array): Float32Array {
  return embeddingRef(dequantize(type, bytes, rows * cols), rows, cols, ids);
}
