// Embedding gather from tables in every GGUF format, against the CPU reference on the same
// dequantized table. The gather computes each value with the same f32 operations as ggml's
// dequantize_row_*, so the result is exact; only formats with a min term (w = d·q + m) allow
// one rounding of difference, in case the shader compiler fuses the multiply-add.
import { describe, expect, it } from 'vitest';
import { GGMLType, type GGMLTypeId, typeName } from '../src/formats/ggml-types';
import { dequantize, quantize } from '../src/formats/quantize';
import { type Gpu, GpuError } from '../src/gpu';
import { embedding } from '../src/kernels/embedding';
import { uploadWeight } from '../src/kernels/matmul';
import { embeddingRef } from '../src/reference/embedding';
import { randomNormal, rng, testGpu } from './util';

const T = GGMLType;
const FORMATS: GGMLTypeId[] = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_K, T.Q6_K, T.Q4_1, T.Q5_0, T.Q5_1, T.Q5_K];
const WITH_MIN = new Set<GGMLTypeId>([T.Q4_1, T.Q5_1, T.Q4_K, T.Q5_K]);

async function gather(gpu: Gpu, type: GGMLTypeId, rows: number, cols: number, ids: Uint32Array, maxPartBytes?: number, std = 0.05): Promise<void> {
  const bytes = quantize(type, randomNormal(rows * cols, rows * 131 + cols, std), cols);
  const table = uploadWeight(gpu, type, rows, cols, bytes, { maxPartBytes });
  const out = gpu.buffer(ids.length * cols * 4);
  gpu.write(out, new Float32Array(ids.length * cols).fill(NaN)); // every value must be written
  await gpu.run((pass) => embedding(gpu, pass, { table, ids: gpu.upload(ids), out, count: ids.length }));
  const got = await gpu.readF32(out, ids.length * cols);
  const want = embeddingRef(dequantize(type, bytes, rows * cols), rows, cols, ids);
  for (let i = 0; i < want.length; i++) {
    const allowed = WITH_MIN.has(type) ? Math.abs(want[i]!) * 2 ** -22 + 2 ** -30 : 0;
    if (!(Math.abs(got[i]! - want[i]!) <= allowed)) {
      const token = Math.floor(i / cols);
      expect.fail(`${typeName(type)} [${rows}][${cols}]: token ${token} (id ${ids[token]}) value ${i % cols} is ${got[i]}, expected ${want[i]}`);
    }
  }
}

/** `count` ids in [0, rows), with the first and last row and a repeat among them. */
function someIds(count: number, rows: number, seed: number): Uint32Array {
  const r = rng(seed);
  const ids = new Uint32Array(count).map(() => Math.floor(r() * rows));
  ids[0] = 0;
  ids[1] = rows - 1;
  ids[2] = ids[3]!;
  return ids;
}

describe('embedding', () => {
  for (const type of FORMATS) {
    it(`gathers ${typeName(type)} rows`, async () => {
      const gpu = await testGpu();
      const cols = type === T.Q4_K || type === T.Q5_K || type === T.Q6_K ? 512 : 96;
      await gather(gpu, type, 37, cols, someIds(9, 37, type));
    });
  }

  it('reproduces tiny weights, whose f16 values and block scales are subnormal halves', async () => {
    const gpu = await testGpu();
    // std 1e-5: f16 values under 6.1e-5 are subnormal, and so is every Q8_0 d (amax / 127),
    // Q4_0 d (amax / 8) and K-quant super-block scale here.
    for (const type of FORMATS) {
      const cols = type === T.Q4_K || type === T.Q5_K || type === T.Q6_K ? 256 : 64;
      await gather(gpu, type, 6, cols, someIds(6, 6, 1), undefined, 1e-5);
    }
  });

  it('handles float rows of any length (K = 1, 7, 9, 13)', async () => {
    const gpu = await testGpu();
    for (const type of [T.F32, T.F16, T.BF16]) for (const cols of [1, 7, 9, 13]) await gather(gpu, type, 5, cols, someIds(6, 5, cols));
  });

  it('writes zero rows for ids past the end of the table, without reading out of bounds', async () => {
    const gpu = await testGpu();
    const ids = new Uint32Array([3, 37, 0xffffffff, 36, 1000]);
    await gather(gpu, T.Q6_K, 37, 256, ids);
    await gather(gpu, T.F16, 37, 7, ids);
    // The same with the table in parts: only the first part's dispatch writes the zero rows.
    await gather(gpu, T.Q8_0, 37, 64, ids, 10 * 68);
  });

  it('gathers from a table split into parts', async () => {
    const gpu = await testGpu();
    await gather(gpu, T.Q6_K, 41, 256, someIds(20, 41, 5), 4 * 210);
    await gather(gpu, T.BF16, 41, 9, someIds(20, 41, 6), 3 * 18);
  });

  it('gathers many tokens (one thread per 8 values of a row)', async () => {
    const gpu = await testGpu();
    await gather(gpu, T.Q4_0, 300, 160, someIds(700, 300, 7));
  });

  it('records nothing for no tokens, and refuses bad arguments clearly', async () => {
    const gpu = await testGpu();
    const table = uploadWeight(gpu, T.Q8_0, 4, 32, new Uint8Array(4 * 34));
    await gpu.run((pass) => embedding(gpu, pass, { table, ids: gpu.buffer(4), out: gpu.buffer(4), count: 0 }));
    expect(() => embedding(gpu, {} as GPUComputePassEncoder, { table, ids: gpu.buffer(8), out: gpu.buffer(4096), count: 3 })).toThrow(/ids hold 8 bytes, 3 ids need 12/);
    expect(() => embedding(gpu, {} as GPUComputePassEncoder, { table, ids: gpu.buffer(12), out: gpu.buffer(256), count: 3 })).toThrow(/out holds 256 bytes, \[3\]\[32\] f32 needs 384/);
    const buffer = gpu.buffer(1024);
    const q3 = { type: T.Q3_K, rows: 1, cols: 256, parts: [{ buffer, rows: 1 }] };
    expect(() => embedding(gpu, {} as GPUComputePassEncoder, { table: q3, ids: buffer, out: buffer, count: 1 })).toThrow(GpuError);
    expect(() => embedding(gpu, {} as GPUComputePassEncoder, { table: q3, ids: buffer, out: buffer, count: 1 })).toThrow(/embedding table: GGML type Q3_K \(11\) is not supported/);
  });
});
