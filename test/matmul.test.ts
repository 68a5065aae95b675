// matmul on GGUF weights, every format and every kernel variant, against the CPU reference on
// the same dequantized weights.
//
// Tolerance: |gpu - ref| <= 1e-5 · Σ_k |x_k · w_k| per output. The GPU dequantizes exactly the
// values the reference does (same f32 operations; a fused multiply-add can move a weight by an
// ulp), so the only difference is f32 accumulation order. Its rounding error is bounded by
// (additions in the longest chain) · 2^-24 · Σ|x·w|: gemv adds ~K/512 chunk sums and a 64-way
// tree, rowwise K/8 chunk sums, gemm K products in sequence (576 · 6e-8 = 3.4e-5 worst case,
// ~√576 · 6e-8 = 1.4e-6 typical). Observed: at most ~3e-7. A single wrong weight moves a
// result by about 1/K of Σ|x·w| (1e-3 or more here), far above the tolerance.
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType, type GGMLTypeId, typeName } from '../src/formats/ggml-types';
import { dequantize, quantize } from '../src/formats/quantize';
import { type Gpu, GpuError, requestGpu } from '../src/gpu';
import { GEMV_MAX_ROWS, type MatmulVariant, ROWWISE_MAX_ROWS_ON_CPU, defaultMatmulVariant, matmul, uploadWeight } from '../src/kernels/matmul';
import { matmulMagnitudeRef, matmulRef } from '../src/reference/matmul';
import { randomNormal, testGpu } from './util';

const T = GGMLType;
const TOLERANCE = 1e-5;
const VARIANTS: MatmulVariant[] = ['gemv', 'gemm', 'rowwise'];
/** The formats real GGUF files hold, first the ones every model needs. */
const FORMATS: GGMLTypeId[] = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_K, T.Q6_K, T.Q4_1, T.Q5_0, T.Q5_1, T.Q5_K];
const isKQuant = (type: GGMLTypeId) => type === T.Q4_K || type === T.Q5_K || type === T.Q6_K;
const isFloat = (type: GGMLTypeId) => type === T.F32 || type === T.F16 || type === T.BF16;

interface Case {
  type: GGMLTypeId;
  M: number;
  N: number;
  K: number;
  variant?: MatmulVariant;
  xRows?: number;
  bias?: boolean;
  /** Split the weight into parts of at most this many bytes. */
  maxPartBytes?: number;
  seed?: number;
  /** Weight standard deviation (default 0.05). */
  std?: number;
}

/** Weights ~ N(0, std²) (std 0.05 unless given) quantized to `type`, x ~ N(0, 1), bias ~ N(0, 0.1²). */
async function runCase(gpu: Gpu, c: Case): Promise<void> {
  const { type, M, N, K } = c;
  const seed = c.seed ?? M * 7919 + N * 31 + K;
  const bytes = quantize(type, randomNormal(N * K, seed, c.std ?? 0.05), K);
  const w = dequantize(type, bytes, N * K);
  const x = randomNormal(M * K, seed + 1);
  const bias = c.bias ? randomNormal(N, seed + 2, 0.1) : undefined;
  const weight = uploadWeight(gpu, type, N, K, bytes, { maxPartBytes: c.maxPartBytes });
  const y = gpu.buffer(M * N * 4);
  gpu.write(y, new Float32Array(M * N).fill(NaN)); // every output must be written
  await gpu.run((pass) =>
    matmul(gpu, pass, { x: gpu.upload(x), w: weight, y, M, variant: c.variant, xRows: c.xRows, bias: bias && gpu.upload(bias) }),
  );
  const got = await gpu.readF32(y, M * N);
  const want = matmulRef(x, w, M, N, K, bias);
  const scale = matmulMagnitudeRef(x, w, M, N, K, bias);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= TOLERANCE * scale[i]! + 1e-30)) {
      const what = `${typeName(type)} ${c.variant ?? 'default'} M=${M} N=${N} K=${K}${c.bias ? ' +bias' : ''}${c.maxPartBytes ? ` parts<=${c.maxPartBytes}B` : ''}`;
      expect.fail(`${what}: y[${Math.floor(i / N)}][${i % N}] = ${got[i]}, expected ${want[i]} (error ${err.toExponential(2)}, Σ|x·w| = ${scale[i]!.toExponential(2)})`);
    }
  }
}

/** A valid K near `target` for the format: block types need whole blocks. */
function kFor(type: GGMLTypeId, target: number): number {
  if (isFloat(type)) return target;
  const block = isKQuant(type) ? 256 : 32;
  return Math.max(block, Math.round(target / block) * block);
}

describe('matmul: every format, every variant', () => {
  for (const type of FORMATS) {
    it(`${typeName(type)}`, async () => {
      const gpu = await testGpu();
      // 3 x-rows (a partial gemv row group), N = 65 (one past a gemm tile), K over a few blocks
      // and not a multiple of gemv's 512-value stride.
      const K = isKQuant(type) ? 512 : 288;
      for (const variant of VARIANTS) await runCase(gpu, { type, M: 3, N: 65, K, variant });
    });
  }
});

describe('matmul: edge shapes', () => {
  it('K: one block, several blocks, 256 + 32, 576; float formats with K = 1, 7, 9', async () => {
    const gpu = await testGpu();
    for (const type of [T.Q8_0, T.Q4_0, T.Q5_0]) {
      for (const K of [32, 288, 576]) for (const variant of VARIANTS) await runCase(gpu, { type, M: 2, N: 5, K, variant });
    }
    for (const type of [T.Q4_K, T.Q6_K]) {
      for (const K of [256, 768]) for (const variant of VARIANTS) await runCase(gpu, { type, M: 2, N: 5, K, variant });
    }
    for (const type of [T.F32, T.F16, T.BF16]) {
      // Odd K leaves f16 rows 2-byte aligned, so every other row starts mid-word.
      for (const K of [1, 7, 9, 33]) for (const variant of VARIANTS) await runCase(gpu, { type, M: 3, N: 7, K, variant });
    }
  });

  it('N: 1, 3, 65, 257 (not multiples of any tile)', async () => {
    const gpu = await testGpu();
    for (const N of [1, 3, 65, 257]) {
      for (const variant of VARIANTS) await runCase(gpu, { type: T.Q4_K, M: 5, N, K: 256, variant });
      await runCase(gpu, { type: T.F16, M: 5, N, K: 40, variant: 'gemm' });
    }
  });

  it('M: 1, 2, 3, 7, 8, 9, 33, 128 with the default variant', async () => {
    const gpu = await testGpu();
    for (const M of [1, 2, 3, 7, 8, 9, 33, 128]) {
      for (const type of [T.Q8_0, T.Q4_K]) await runCase(gpu, { type, M, N: 65, K: type === T.Q4_K ? 256 : 96 });
    }
    const onGpu = (M: number) => defaultMatmulVariant(M, false);
    const onCpu = (M: number) => defaultMatmulVariant(M, true);
    expect([1, 2, 8].map(onGpu)).toEqual(['gemv', 'gemv', 'gemv']);
    expect([GEMV_MAX_ROWS + 1, 33, 128, 4096].map(onGpu)).toEqual(['gemm', 'gemm', 'gemm', 'gemm']);
    expect([1, 8, ROWWISE_MAX_ROWS_ON_CPU].map(onCpu)).toEqual(['rowwise', 'rowwise', 'rowwise']);
    expect([ROWWISE_MAX_ROWS_ON_CPU + 1, 128].map(onCpu)).toEqual(['gemm', 'gemm']);
  });

  it('M beyond one row group: gemv and rowwise with each x-rows setting, gemm over several M tiles', async () => {
    const gpu = await testGpu();
    for (const xRows of [1, 2, 4, 8]) {
      await runCase(gpu, { type: T.Q6_K, M: 9, N: 17, K: 256, variant: 'gemv', xRows });
      await runCase(gpu, { type: T.Q6_K, M: 9, N: 17, K: 256, variant: 'rowwise', xRows });
    }
    await runCase(gpu, { type: T.Q6_K, M: 70, N: 130, K: 256, variant: 'gemm' });
  });

  it('tiny weights: subnormal f16 values and block scales are not flushed to zero', async () => {
    const gpu = await testGpu();
    for (const type of [T.F16, T.Q8_0, T.Q4_0, T.Q4_K, T.Q6_K]) {
      for (const variant of VARIANTS) await runCase(gpu, { type, M: 2, N: 5, K: 256, variant, std: 1e-5 });
    }
  });

  it('M = 0 and N = 0 record nothing', async () => {
    const gpu = await testGpu();
    const weight = uploadWeight(gpu, T.Q8_0, 4, 32, quantize(T.Q8_0, randomNormal(128, 1), 32));
    await gpu.run((pass) => matmul(gpu, pass, { x: gpu.buffer(4), w: weight, y: gpu.buffer(4), M: 0 }));
    const empty = uploadWeight(gpu, T.Q8_0, 0, 32, new Uint8Array(0));
    expect(empty.parts).toHaveLength(1);
    await gpu.run((pass) => matmul(gpu, pass, { x: gpu.buffer(128), w: empty, y: gpu.buffer(4), M: 1 }));
  });
});

describe('matmul: bias, parts, bindings', () => {
  it('adds a bias in every variant', async () => {
    const gpu = await testGpu();
    for (const variant of VARIANTS) await runCase(gpu, { type: T.Q8_0, M: 4, N: 33, K: 64, variant, bias: true });
  });

  it('a weight split into parts gives the same result as one buffer', async () => {
    const gpu = await testGpu();
    // Parts of 5 rows (Q6_K: 210-byte rows, so every other part starts 2-byte aligned in the
    // tensor, and part buffers are padded to 4 bytes, which the limit must leave room for) and
    // 3 rows (F16, K = 9: 18-byte rows).
    for (const variant of VARIANTS) {
      await runCase(gpu, { type: T.Q6_K, M: 3, N: 37, K: 256, variant, bias: true, maxPartBytes: 5 * 210 + 2 });
      await runCase(gpu, { type: T.F16, M: 2, N: 10, K: 9, variant, maxPartBytes: 3 * 18 + 2 });
    }
    const split = (maxPartBytes: number) => uploadWeight(gpu, T.Q6_K, 37, 256, new Uint8Array(37 * 210), { maxPartBytes }).parts.map((p) => p.rows);
    expect(split(5 * 210 + 2)).toEqual([5, 5, 5, 5, 5, 5, 5, 2]);
    expect(split(5 * 210)).toEqual([4, 4, 4, 4, 4, 4, 4, 4, 4, 1]); // 5 rows would pad to 1052 bytes
    expect(() => split(200)).toThrow(/one Q6_K row of 256 is 210 bytes, over the 200 bytes one binding may hold/);
  });

  it('reads x and writes y through offset bindings', async () => {
    const gpu = await testGpu();
    const M = 2, N = 9, K = 64;
    const bytes = quantize(T.Q4_0, randomNormal(N * K, 3, 0.05), K);
    const x = randomNormal(M * K, 4);
    const xBuffer = gpu.buffer(256 + M * K * 4);
    gpu.write(xBuffer, x, 256);
    const yBuffer = gpu.buffer(512 + M * N * 4);
    await gpu.run((pass) =>
      matmul(gpu, pass, { x: { buffer: xBuffer, offset: 256 }, w: uploadWeight(gpu, T.Q4_0, N, K, bytes), y: { buffer: yBuffer, offset: 512, size: M * N * 4 }, M }),
    );
    const got = new Float32Array(await gpu.read(yBuffer, 512, M * N * 4));
    const want = matmulRef(x, dequantize(T.Q4_0, bytes, N * K), M, N, K);
    const scale = matmulMagnitudeRef(x, dequantize(T.Q4_0, bytes, N * K), M, N, K);
    got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(TOLERANCE * scale[i]!));
  });

  it('splits a dispatch of more than 65535 workgroups over two grid dimensions', async () => {
    const gpu = await testGpu();
    // gemv at M = 1 takes 4 rows per workgroup: 300,000 rows are 75,000 workgroups.
    await runCase(gpu, { type: T.Q4_0, M: 1, N: 300_000, K: 32, variant: 'gemv' });
  });
});

describe('matmul: refusals', () => {
  it('names an unsupported type, a partial block and a short buffer', async () => {
    const gpu = await testGpu();
    const buffer = gpu.buffer(1024);
    const args = (type: GGMLTypeId, K: number) => ({ x: buffer, y: buffer, M: 1, w: { type, rows: 1, cols: K, parts: [{ buffer, rows: 1 }] } });
    const refusal = (f: () => void) => {
      try {
        f();
      } catch (error) {
        return error as GpuError;
      }
      throw new Error('no error');
    };
    const unsupported = refusal(() => matmul(gpu, {} as GPUComputePassEncoder, args(T.Q2_K, 256)));
    expect(unsupported).toBeInstanceOf(GpuError);
    expect(unsupported.kind).toBe('unsupported');
    expect(unsupported.message).toMatch(/matmul weight: GGML type Q2_K \(10\) is not supported; supported types are F32, F16, BF16, Q8_0, Q4_0/);
    expect(() => uploadWeight(gpu, T.IQ4_XS, 1, 256, new Uint8Array(136))).toThrow(/IQ4_XS \(23\) is not supported/);
    expect(refusal(() => matmul(gpu, {} as GPUComputePassEncoder, args(T.Q4_K, 288))).message).toMatch(/K = 288 is not a multiple of the Q4_K block size 256/);
    expect(refusal(() => matmul(gpu, {} as GPUComputePassEncoder, { ...args(T.F32, 64), M: 8 })).message).toMatch(/x holds 1024 bytes, \[8\]\[64\] f32 needs 2048/);
    expect(refusal(() => matmul(gpu, {} as GPUComputePassEncoder, { ...args(T.F32, 8), variant: 'fast' as MatmulVariant })).message).toMatch(/unknown variant fast/);
    expect(() => uploadWeight(gpu, T.Q8_0, 2, 32, new Uint8Array(60))).toThrow(/Q8_0 \[2\]\[32\] takes 68 bytes, 60 given/);
  });
});

describe('matmul without subgroups', () => {
  let gpu: Gpu | null = null;
  afterAll(() => gpu?.destroy());

  it('gemv reduces through workgroup memory, every format', async () => {
    gpu = await requestGpu({ disable: { subgroups: true } });
    expect(gpu.features.subgroups).toBe(false);
    for (const type of FORMATS) {
      const K = kFor(type, 320);
      await runCase(gpu, { type, M: 1, N: 11, K, variant: 'gemv' });
      await runCase(gpu, { type, M: 3, N: 11, K, variant: 'gemv', bias: type === T.Q8_0 });
    }
  });
});
