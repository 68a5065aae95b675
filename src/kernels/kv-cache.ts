// The KV cache one layer's attention reads, and the kernel that writes new tokens into it.
//
// Layout, per layer: K and V are each `capacity` physical slots laid out [slot][kvHead][headDim],
// token-major, so a projection's output rows for new tokens are written contiguously. A u32 page
// table maps logical slot j to physical slot pageTable[j / PAGE] * PAGE + j % PAGE; all layers
// of a session share it. With the identity table the cache is contiguous; with another, pages can
// be freed and reused by KV eviction without moving data.
//
// Formats (element = one value of one head of one slot):
// - 'f32': array<f32>.
// - 'f16': two per u32 (rounded to nearest even in integer ops, src/shaders/half.ts; core WGSL, no shader-f16 needed).
// - 'int8': symmetric, four per u32 (two's complement bytes, lowest byte first), x = q * scale.
// - 'int4': asymmetric, eight per u32 (lowest nibble first), x = q * scale + min, q in 0..15.
// For int8/int4 each group of G elements along headDim (G = 32 when headDim % 32 == 0, else 16)
// has its own pack2x16float(scale, min) u32 in a separate scales buffer [slot][kvHead][headDim/G]
// (int8 stores min = 0). K is quantized after RoPE.
import { type Binding, type Gpu, check, grid } from '../gpu';
import { KV_MOVE_WORKGROUP, KV_WRITE_WORKGROUP, kvHasScales, kvMoveWgsl, kvWriteWgsl } from '../shaders/kv-cache';
import { bindingBytes } from './matmul';

export const PAGE = 16;
export type KvFormat = 'f32' | 'f16' | 'int8' | 'int4';
export const KV_FORMATS: readonly KvFormat[] = ['f32', 'f16', 'int8', 'int4'];

export interface KvCache {
  format: KvFormat;
  /** Physical slots. */
  capacity: number;
  kvHeads: number;
  headDim: number;
  /** Elements per quantization group (int8/int4). */
  group: number;
  k: GPUBuffer;
  v: GPUBuffer;
  /** (scale, min) as two halves per group; a 4-byte placeholder for f32/f16. */
  kScales: GPUBuffer;
  vScales: GPUBuffer;
  /** u32 page table, shared with the session's other layers. */
  pageTable: GPUBuffer;
  /** GPU bytes of K, V and scales. */
  bytes: number;
}

export function quantGroup(headDim: number): number {
  return headDim % 32 === 0 ? 32 : 16;
}

/** u32 words one slot of one head takes in K (or V). */
export function wordsPerHead(format: KvFormat, headDim: number): number {
  return format === 'f32' ? headDim : format === 'f16' ? headDim / 2 : format === 'int8' ? headDim / 4 : headDim / 8;
}

export function identityPageTable(capacity: number): Uint32Array {
  return Uint32Array.from({ length: Math.ceil(capacity / PAGE) }, (_, i) => i);
}

export function createKvCache(gpu: Gpu, options: { capacity: number; kvHeads: number; headDim: number; format: KvFormat; pageTable: GPUBuffer }): KvCache {
  const { capacity, kvHeads, headDim, format, pageTable } = options;
  check(KV_FORMATS.includes(format), `KV cache: unknown format ${format}; supported: ${KV_FORMATS.join(', ')}`);
  check(Number.isInteger(capacity) && capacity >= 1 && capacity % PAGE === 0, `KV cache: capacity must be a positive multiple of ${PAGE}, got ${capacity}`);
  check(Number.isInteger(kvHeads) && kvHeads >= 1, `KV cache: bad kvHeads ${kvHeads}`);
  check(Number.isInteger(headDim) && headDim % 16 === 0 && headDim >= 16, `KV cache: headDim must be a multiple of 16, got ${headDim}`);
  const group = quantGroup(headDim);
  const quantized = format === 'int8' || format === 'int4';
  const dataBytes = capacity * kvHeads * wordsPerHead(format, headDim) * 4;
  const scaleBytes = quantized ? capacity * kvHeads * (headDim / group) * 4 : 4;
  check(dataBytes <= gpu.limits.maxStorageBufferBindingSize, () => `KV cache: ${capacity} slots x ${kvHeads} heads x ${headDim} (${format}) is ${dataBytes} bytes, over this device's maxStorageBufferBindingSize (${gpu.limits.maxStorageBufferBindingSize})`);
  return {
    format, capacity, kvHeads, headDim, group,
    k: gpu.buffer(dataBytes, 'kv k'),
    v: gpu.buffer(dataBytes, 'kv v'),
    kScales: gpu.buffer(scaleBytes, 'kv k scales'),
    vScales: gpu.buffer(scaleBytes, 'kv v scales'),
    pageTable,
    bytes: 2 * (dataBytes + (quantized ? scaleBytes : 0)),
  };
}

export function destroyKvCache(cache: KvCache): void {
  for (const b of [cache.k, cache.v, cache.kScales, cache.vScales]) b.destroy();
}

/**
 * Writes `count` new tokens' K and V (f32 [count][kvHeads][headDim] each, already rotated) into
 * the logical slots given (u32 [count]), quantizing on the way for int8/int4. One workgroup-row
 * of threads per (token, head, group).
 */
export function kvWrite(gpu: Gpu, pass: GPUComputePassEncoder, args: { cache: KvCache; k: Binding; v: Binding; slots: Binding; count: number }): void {
  const { cache, count } = args;
  check(Number.isInteger(count) && count >= 0, `kvWrite: bad count ${count}`);
  if (count === 0) return;
  const groupsPerHead = cache.headDim / cache.group;
  const pipeline = gpu.pipeline(`kv-write-${cache.format}-g${cache.group}`, () => kvWriteWgsl(cache.format, cache.group));
  const params = gpu.uniform(new Uint32Array([count, cache.kvHeads, cache.headDim, groupsPerHead, cache.capacity]));
  const threads = count * cache.kvHeads * groupsPerHead;
  for (const [src, dst, scales] of [[args.k, cache.k, cache.kScales], [args.v, cache.v, cache.vScales]] as const) {
    const bindings = [src, args.slots, cache.pageTable, dst, params, ...(kvHasScales(cache.format) ? [scales] : [])];
    gpu.dispatch(pass, pipeline, bindings, grid(Math.ceil(threads / KV_WRITE_WORKGROUP)));
  }
}

/** K, V and (int8/int4 only) their scales, in the order the attention kernels declare them. */
export function kvBindings(cache: KvCache): GPUBuffer[] {
  return kvHasScales(cache.format) ? [cache.k, cache.v, cache.kScales, cache.vScales] : [cache.k, cache.v];
}

/**
 * Moves whole slots within the cache, all heads, K and V (and scales): for each pair in order,
 * slot `to` gets what slot `from` holds. `pairs` is u32 [count][from, to]. The pairs run in order,
 * so moving accepted speculative nodes forward (to <= from, ascending) is safe in place. With
 * `perHead`, pairs is u32 [kvHeads][count][from, to] and each kv head moves by its own pairs.
 */
export function kvMove(gpu: Gpu, pass: GPUComputePassEncoder, args: { cache: KvCache; pairs: Binding; count: number; perHead?: boolean }): void {
  const { cache, count } = args;
  check(Number.isInteger(count) && count >= 0, `kvMove: bad count ${count}`);
  const heads = args.perHead ? cache.kvHeads : 1;
  check(bindingBytes(args.pairs) >= heads * count * 8, () => `kvMove: pairs must be u32 [${heads}][${count}][2]`);
  if (count === 0) return;
  const pipeline = gpu.pipeline('kv-move', () => kvMoveWgsl);
  const dataWords = cache.kvHeads * wordsPerHead(cache.format, cache.headDim);
  const scaleWords = cache.kvHeads * (cache.headDim / cache.group);
  const buffers: Array<[GPUBuffer, number]> = [[cache.k, dataWords], [cache.v, dataWords]];
  if (kvHasScales(cache.format)) buffers.push([cache.kScales, scaleWords], [cache.vScales, scaleWords]);
  for (const [data, rowWords] of buffers) {
    const params = gpu.uniform(new Uint32Array([count, rowWords, heads]));
    gpu.dispatch(pass, pipeline, [args.pairs, cache.pageTable, data, params], grid(Math.ceil(rowWords / KV_MOVE_WORKGROUP)));
  }
}
