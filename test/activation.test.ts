import { describe, expect, it } from 'vitest';
import { activation, gatedActivation, swiGlu } from '../src/kernels/activation';
import { activationRef, erf, gatedActivationRef } from '../src/reference/activation';
import { activationKinds } from '../src/shaders/activation';
import { expectClose, randomNormal, testGpu } from './util';

// Tolerance: WGSL's exp is accurate to 3 + 2|x| ulp, and division to 2.5 ulp. Inputs here reach
// |x| ~ 12 (normal, std 3), so exp is within ~30 ulp (2e-6 relative) and each activation within
// about 3e-6 of its value: rtol 4e-6 (gelu-erf's erfc approximation adds 1.2e-7 relative).
// atol 1e-6 covers results that cancel to near zero (gelu-tanh's cubic near its minimum).
// relu is exact. Measured worst cases are 2-10x inside these.
const atol = 1e-6;
const rtol = 4e-6;

describe('erf reference', () => {
  it('matches known values', () => {
    // erf(0.5), erf(1), erf(2), erf(3.5), erf(5) from tables (15+ digits).
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(1)).toBeCloseTo(0.8427007929497149, 14);
    expect(erf(2)).toBeCloseTo(0.9953222650189527, 14);
    expect(erf(-3.5)).toBeCloseTo(-0.9999992569016276, 14);
    expect(erf(5)).toBeCloseTo(1 - 1.5374597944280349e-12, 15);
    expect(erf(0)).toBe(0);
  });
});

describe('activation', () => {
  for (const kind of activationKinds) {
    it(`${kind} matches the reference, out of place and in place, including large |x|`, async () => {
      const gpu = await testGpu();
      const n = 10_007;
      const x = randomNormal(n, 1, 3);
      x.set([0, -0, 1e-30, -80, 80, -1e4, 1e4], 0); // saturating inputs must give 0 or x, never NaN
      const expected = Float64Array.from(x, (v) => activationRef(kind, v));
      const out = gpu.buffer(n * 4);
      const inPlace = gpu.upload(x);
      await gpu.run((pass) => {
        activation(gpu, pass, { kind, x: gpu.upload(x), out, n });
        activation(gpu, pass, { kind, x: inPlace, n });
      });
      expectClose(await gpu.readF32(out, n), expected, atol, rtol, kind);
      expectClose(await gpu.readF32(inPlace, n), expected, atol, rtol, `${kind} in place`);
    });
  }
});

describe('gatedActivation', () => {
  for (const [rows, n] of [[1, 1], [3, 7], [5, 1536]]) {
    it(`SwiGLU over ${rows}x${n}, from separate gate/up and from one fused gate_up buffer`, async () => {
      const gpu = await testGpu();
      const gate = randomNormal(rows * n, rows + n, 3);
      const up = randomNormal(rows * n, rows + n + 1, 2);
      const fused = new Float32Array(rows * 2 * n);
      for (let r = 0; r < rows; r++) {
        fused.set(gate.subarray(r * n, (r + 1) * n), r * 2 * n);
        fused.set(up.subarray(r * n, (r + 1) * n), r * 2 * n + n);
      }
      const separateOut = gpu.buffer(rows * n * 4), fusedOut = gpu.buffer(rows * n * 4);
      await gpu.run((pass) => {
        swiGlu(gpu, pass, { gate: gpu.upload(gate), up: gpu.upload(up), out: separateOut, rows, n });
        swiGlu(gpu, pass, { gateUp: gpu.upload(fused), out: fusedOut, rows, n });
      });
      const expected = gatedActivationRef('silu', gate, up);
      // one more rounding (the product) on top of the activation's error
      expectClose(await gpu.readF32(separateOut, rows * n), expected, atol * 8, rtol + 1e-7, 'separate');
      expectClose(await gpu.readF32(fusedOut, rows * n), expected, atol * 8, rtol + 1e-7, 'fused');
    });
  }

  it('GeGLU (gelu-tanh gate) works the same way', async () => {
    const gpu = await testGpu();
    const rows = 2, n = 300;
    const gate = randomNormal(rows * n, 77, 3), up = randomNormal(rows * n, 78, 2);
    const out = gpu.buffer(rows * n * 4);
    await gpu.run((pass) => gatedActivation(gpu, pass, { kind: 'gelu-tanh', gate: gpu.upload(gate), up: gpu.upload(up), out, rows, n }));
    expectClose(await gpu.readF32(out, rows * n), gatedActivationRef('gelu-tanh', gate, up), atol * 8, rtol + 1e-7);
  });

  it('rejects an output aliasing an input', async () => {
    const gpu = await testGpu();
    const b = gpu.buffer(64);
    expect(() => swiGlu(gpu, {} as GPUComputePassEncoder, { gate: b, up: gpu.buffer(64), out: b, rows: 1, n: 16 })).toThrow(/separate/);
    expect(() => activation(gpu, {} as GPUComputePassEncoder, { kind: 'silu', x: b, out: b, n: 16 })).toThrow(/in-place/);
  });
});
