import { typeName } from '../formats/ggml-types';
import { type Binding, type Gpu, check, grid } from '../gpu';
import { EMBEDDING_WORKGROUP, embeddingWgsl } from '../shaders/embedding';
import { type QuantizedWeight, bindingBytes, checkWeight } from './matmul';

export interface EmbeddingArgs {
  /** The embedding table, one row of K values per token id, in any format the kernels read. */
  table: QuantizedWeight;
  /** u32 token ids, `count` of them. */
  ids: Binding;
  /** f32 [count][K]. */
  out: Binding;
  count: number;
}

/**
 * out[i] = table row ids[i], dequantized to f32. An id that is not a row of the table
 * (id >= table.rows) gives a row of zeros: nothing is read out of bounds, and a bad id is
 * visible rather than silently aliased to another token.
 */
export function embedding(gpu: Gpu, pass: GPUComputePassEncoder, args: EmbeddingArgs): void {
  const { table, ids, out, count } = args;
  const bytesPerRow = checkWeight(table, 'embedding table');
  const K = table.cols;
  check(Number.isInteger(count) && count >= 0, () => `embedding: bad count ${count}`);
  check(bindingBytes(ids) >= count * 4, () => `embedding: ids hold ${bindingBytes(ids)} bytes, ${count} ids need ${count * 4}`);
  check(bindingBytes(out) >= count * K * 4, () => `embedding: out holds ${bindingBytes(out)} bytes, [${count}][${K}] f32 needs ${count * K * 4}`);
  if (count === 0) return;
  const pipeline = gpu.pipeline(`embedding-${typeName(table.type)}`, () => embeddingWgsl(table.type));
  const threads = count * Math.ceil(K / 8);
  const workgroups = grid(Math.ceil(threads / EMBEDDING_WORKGROUP), gpu.limits.maxComputeWorkgroupsPerDimension);
  let firstRow = 0;
  table.parts.forEach((part, i) => {
    const params = gpu.uniform(new Uint32Array([count, K, bytesPerRow, firstRow, part.rows, table.rows, i === 0 ? 1 : 0]));
    gpu.dispatch(pass, pipeline, [ids, part.buffer, out, params], workgroups);
    firstRow += part.rows;
  });
}
