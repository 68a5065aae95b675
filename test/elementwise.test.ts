import { describe, expect, it } from 'vitest';
import { add, addBias, addInPlace, copy, mul, mulColumns, scale } from '../src/kernels/elementwise';
import { addRef, broadcastRowsRef, mulRef, scaleRef } from '../src/reference/elementwise';
import { expectClose, randomF32, testGpu } from './util';

describe('add', () => {
  for (const n of [1, 255, 256, 257, 100_003]) {
    it(`matches the reference for n=${n}`, async () => {
      const gpu = await testGpu();
      const a = randomF32(n, 1), b = randomF32(n, 2);
      const out = gpu.buffer(n * 4);
      await gpu.run((pass) => add(gpu, pass, { a: gpu.upload(a), b: gpu.upload(b), out, n }));
      // Exact: one f32 addition, same rounding on both sides.
      expectClose(await gpu.readF32(out, n), addRef(a, b), 0);
    });
  }

  it('raises invalid WGSL and bad bindings as errors instead of silently doing nothing', async () => {
    const gpu = await testGpu();
    const broken = gpu.pipeline('broken-test-kernel', () => '@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }');
    await expect(gpu.run((pass) => gpu.dispatch(pass, broken, [], [1]))).rejects.toThrow(/broken-test-kernel/);
    // The device stays usable after a validation error.
    const out = gpu.buffer(16);
    const ones = new Float32Array([1, 2, 3, 4]);
    await gpu.run((pass) => add(gpu, pass, { a: gpu.upload(ones), b: gpu.upload(ones), out, n: 4 }));
    expect([...(await gpu.readF32(out, 4))]).toEqual([2, 4, 6, 8]);
  });
});

describe('addInPlace, mul, scale, addBias, mulColumns', () => {
  // All exact: one f32 operation per element, correctly rounded on both sides (WGSL + and * on f32 are).
  for (const n of [1, 257, 70_001]) {
    it(`match the reference for n=${n}`, async () => {
      const gpu = await testGpu();
      const a = randomF32(n, 3), b = randomF32(n, 4);
      const x = gpu.upload(a);
      const product = gpu.buffer(n * 4), scaled = gpu.buffer(n * 4);
      const inPlaceScaled = gpu.upload(a);
      await gpu.run((pass) => {
        addInPlace(gpu, pass, { x, y: gpu.upload(b), n });
        mul(gpu, pass, { a: gpu.upload(a), b: gpu.upload(b), out: product, n });
        scale(gpu, pass, { x: gpu.upload(a), out: scaled, factor: 0.125 / 3, n });
        scale(gpu, pass, { x: inPlaceScaled, factor: -1.7, n });
      });
      expectClose(await gpu.readF32(x, n), addRef(a, b), 0, 0, 'addInPlace');
      expectClose(await gpu.readF32(product, n), mulRef(a, b), 0, 0, 'mul');
      expectClose(await gpu.readF32(scaled, n), scaleRef(a, 0.125 / 3), 0, 0, 'scale');
      expectClose(await gpu.readF32(inPlaceScaled, n), scaleRef(a, -1.7), 0, 0, 'scale in place');
    });
  }

  for (const [rows, n] of [[1, 1], [3, 7], [300, 257]]) {
    it(`broadcast a vector over ${rows}x${n} rows`, async () => {
      const gpu = await testGpu();
      const x = randomF32(rows * n, 5), vector = randomF32(n, 6);
      const biased = gpu.upload(x), scaledColumns = gpu.upload(x);
      const v = gpu.upload(vector);
      await gpu.run((pass) => {
        addBias(gpu, pass, { x: biased, bias: v, rows, n });
        mulColumns(gpu, pass, { x: scaledColumns, scale: v, rows, n });
      });
      expectClose(await gpu.readF32(biased, rows * n), broadcastRowsRef('add', x, vector, n), 0, 0, 'addBias');
      expectClose(await gpu.readF32(scaledColumns, rows * n), broadcastRowsRef('mul', x, vector, n), 0, 0, 'mulColumns');
    });
  }

  it('rejects aliasing with a clear error', async () => {
    const gpu = await testGpu();
    const x = gpu.buffer(16);
    const pass = {} as GPUComputePassEncoder;
    expect(() => scale(gpu, pass, { x, out: x, factor: 2, n: 4 })).toThrow(/in-place/);
    expect(() => mul(gpu, pass, { a: x, b: x, out: x, n: 4 })).toThrow(/alias/);
  });
});

describe('copy', () => {
  for (const [n, srcOffset, dstOffset] of [[1, 0, 0], [257, 3, 0], [576, 576 * 5, 7], [70_000, 1, 2]]) {
    it(`moves ${n} elements from element ${srcOffset} to element ${dstOffset}`, async () => {
      const gpu = await testGpu();
      const src = randomF32(n + srcOffset, 5);
      const before = randomF32(n + dstOffset + 5, 6);
      const dst = gpu.upload(before);
      await gpu.run((pass) => copy(gpu, pass, { src: gpu.upload(src), dst, n, srcOffset, dstOffset }));
      const expected = before.slice();
      expected.set(src.subarray(srcOffset, srcOffset + n), dstOffset);
      // Exact, and nothing outside [dstOffset, dstOffset + n) changes.
      expectClose(await gpu.readF32(dst, expected.length), expected, 0);
    });
  }
});
