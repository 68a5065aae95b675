import { describe, expect, it } from 'vitest';
import { type RopeLayout, rope, ropeFrequencies, ropeTable } from '../src/kernels/rope';
import { ropeRef } from '../src/reference/rope';
import { closeness, expectClose, randomF32, rng, testGpu } from './util';

const layouts: RopeLayout[] = ['normal', 'neox'];

function randomPositions(n: number, seed: number, max: number, min = 0): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => min + Math.floor(r() * (max - min + 1)));
}

describe('ropeFrequencies', () => {
  it('is base^(-2i/d) in f64, divided by the linear factor and by GGUF rope_freqs factors', () => {
    const plain = ropeFrequencies({ ropeDim: 64, base: 10000 });
    expect(plain.length).toBe(32);
    for (let i = 0; i < 32; i++) expect(plain[i]).toBe(Math.pow(10000, (-2 * i) / 64));
    const linear = ropeFrequencies({ ropeDim: 64, base: 10000, scaling: { type: 'linear', factor: 4 } });
    for (let i = 0; i < 32; i++) expect(linear[i]).toBe(plain[i] / 4);
    const factors = Float32Array.from({ length: 32 }, (_, i) => 1 + i / 8);
    const withFactors = ropeFrequencies({ ropeDim: 64, base: 10000, freqFactors: factors });
    for (let i = 0; i < 32; i++) expect(withFactors[i]).toBe(plain[i] / factors[i]);
  });

  it("gives llama3 scaling the same frequencies as the rope_freqs factors llama.cpp's converter writes", () => {
    // Llama 3.2 1B/3B: head_dim 64, theta 500000, factor 32, low 1, high 4, original context 8192.
    const [factor, low, high, oldContext] = [32, 1, 4, 8192];
    const scaled = ropeFrequencies({
      ropeDim: 64,
      base: 500000,
      scaling: { type: 'llama3', factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: oldContext },
    });
    // convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors): a per-frequency divisor.
    const plain = ropeFrequencies({ ropeDim: 64, base: 500000 });
    const ggufFactors = Array.from(plain, (freq) => {
      const wavelength = (2 * Math.PI) / freq;
      if (wavelength < oldContext / high) return 1;
      if (wavelength > oldContext / low) return factor;
      const smooth = (oldContext / wavelength - low) / (high - low);
      return 1 / ((1 - smooth) / factor + smooth);
    });
    expect(ggufFactors.filter((f) => f === 1).length).toBeGreaterThan(0);
    expect(ggufFactors.filter((f) => f === factor).length).toBeGreaterThan(0);
    expect(ggufFactors.filter((f) => f !== 1 && f !== factor).length).toBeGreaterThan(0); // all three bands are exercised
    const viaFactors = ropeFrequencies({ ropeDim: 64, base: 500000, freqFactors: ggufFactors });
    for (let i = 0; i < 32; i++) expect(Math.abs(scaled[i] - viaFactors[i])).toBeLessThanOrEqual(1e-15 * plain[i]);
  });

  it('packs each frequency as a 64-bit fraction of a turn', () => {
    const freqs = ropeFrequencies({ ropeDim: 128, base: 1e6 });
    const table = ropeTable(freqs);
    for (let i = 0; i < freqs.length; i++) {
      expect(new Float32Array(table.buffer, i * 16, 1)[0]).toBe(Math.fround(freqs[i]));
      const turns = table[i * 4 + 1] / 2 ** 32 + table[i * 4 + 2] / 2 ** 64;
      expect(Math.abs(turns - freqs[i] / (2 * Math.PI))).toBeLessThan(1e-16);
    }
  });
});

describe('rope', () => {
  // Error budget, exact angles: the angle is exact to ~2e-8 rad at any position (fixed-point turns,
  // then an f32 remainder within ±π/4); the polynomials and their f32 evaluation give cos/sin to
  // ~1.5e-7; a*c - b*s adds 2 ulp. For |x| <= 1: < 5e-7. We assert 1e-6 (D3 asks 1e-5) at every
  // position, 0..8191, random ones up to 2^31 - 1, and negative shifts.
  const exactTolerance = 1e-6;

  for (const layout of layouts) {
    it(`${layout}: positions 0..8191 and random ones up to 2^31-1 match the f64 reference within ${exactTolerance}`, async () => {
      const gpu = await testGpu();
      const heads = 2, headDim = 64;
      const freqs = ropeFrequencies({ ropeDim: headDim, base: 10000 });
      const table = gpu.upload(ropeTable(freqs));
      const cases: Array<[string, Int32Array]> = [
        ['every position below 8192', Int32Array.from({ length: 8192 }, (_, i) => i)],
        ['random positions up to 2^31-1', randomPositions(512, 5, 2 ** 31 - 1)],
        ['negative shifts', randomPositions(512, 6, 0, -(2 ** 31) + 1)],
      ];
      for (const [what, positions] of cases) {
        const tokens = positions.length;
        const x = randomF32(tokens * heads * headDim, tokens + 1);
        const buffer = gpu.upload(x);
        await gpu.run((pass) => rope(gpu, pass, { x: buffer, table, positions: gpu.upload(positions), tokens, heads, headDim, layout }));
        expectClose(await gpu.readF32(buffer, x.length), ropeRef(x, positions, freqs, { tokens, heads, headDim, layout }), exactTolerance, 0, what);
      }
    });
  }

  it('f32 angles (f32(pos) * freq) stay within their position-dependent bound, and do grow with it', async () => {
    const gpu = await testGpu();
    const heads = 1, headDim = 64, layout = 'neox';
    const freqs = ropeFrequencies({ ropeDim: headDim, base: 10000 });
    const table = gpu.upload(ropeTable(freqs));
    const positions = Int32Array.from({ length: 8192 }, (_, i) => i);
    const tokens = positions.length;
    const x = randomF32(tokens * heads * headDim, 9);
    const out = gpu.buffer(x.length * 4);
    await gpu.run((pass) => rope(gpu, pass, { x: gpu.upload(x), out, table, positions: gpu.upload(positions), tokens, heads, headDim, layout, angles: 'f32' }));
    const actual = await gpu.readF32(out, x.length);
    const expected = ropeRef(x, positions, freqs, { tokens, heads, headDim, layout });
    // The angle pos * freq (freq <= 1) is rounded three times by 2^-24 relative: freq to f32, the
    // product, and the conversion to turns. So it is off by up to 3 * pos * 2^-24 rad, times
    // |a| + |b| <= 2, plus the exact variant's 5e-7: bound 1e-6 + pos * 3.6e-7 per token. At
    // 8192 that is 3e-3, 300x D3's 1e-5, which is why 'exact' is the default.
    const worstOf = (from: number, to: number) => closeness(actual.subarray(from * headDim, to * headDim), expected.subarray(from * headDim, to * headDim)).maxAbs;
    for (let t = 0; t < tokens; t++) expect(worstOf(t, t + 1), `token ${t}`).toBeLessThanOrEqual(1e-6 + t * 3.6e-7);
    expect(worstOf(0, 16)).toBeLessThan(1e-5); // fine at short range,
    expect(worstOf(4096, 8192)).toBeGreaterThan(1e-5); // not at 4k-8k
  });

  for (const layout of layouts) {
    it(`${layout}: partial rotary rotates only the first ropeDim dims, in place and out of place`, async () => {
      const gpu = await testGpu();
      const tokens = 3, heads = 2, headDim = 80, ropeDim = 32; // e.g. phi-2 style partial_rotary_factor 0.4
      const freqs = ropeFrequencies({ ropeDim, base: 10000 });
      const table = gpu.upload(ropeTable(freqs));
      const positions = new Int32Array([0, 7, 4095]);
      const x = randomF32(tokens * heads * headDim, 31);
      const expected = ropeRef(x, positions, freqs, { tokens, heads, headDim, ropeDim, layout });
      const out = gpu.buffer(x.length * 4);
      const inPlace = gpu.upload(x);
      const positionBuffer = gpu.upload(positions);
      await gpu.run((pass) => {
        rope(gpu, pass, { x: gpu.upload(x), out, table, positions: positionBuffer, tokens, heads, headDim, ropeDim, layout });
        rope(gpu, pass, { x: inPlace, table, positions: positionBuffer, tokens, heads, headDim, ropeDim, layout });
      });
      expectClose(await gpu.readF32(out, x.length), expected, exactTolerance, 0, 'out of place');
      expectClose(await gpu.readF32(inPlace, x.length), expected, exactTolerance, 0, 'in place');
      for (let t = 0; t < tokens * heads; t++) {
        for (let i = ropeDim; i < headDim; i++) expect((await gpu.readF32(out, x.length))[t * headDim + i]).toBe(x[t * headDim + i]);
      }
    });
  }

  it('rotates K inside a fused QKV buffer in place, and writes it into a head-major cache', async () => {
    const gpu = await testGpu();
    const tokens = 4, qHeads = 4, kvHeads = 2, headDim = 16, layout = 'neox';
    const rowWidth = (qHeads + 2 * kvHeads) * headDim;
    const qkv = randomF32(tokens * rowWidth, 41);
    const freqs = ropeFrequencies({ ropeDim: headDim, base: 1e6 });
    const table = gpu.upload(ropeTable(freqs));
    const positions = gpu.upload(new Int32Array([100, 101, 102, 90]));
    const kOffset = qHeads * headDim;
    const maxTokens = 8;
    const cache = gpu.buffer(kvHeads * maxTokens * headDim * 4);
    const fused = gpu.upload(qkv);
    await gpu.run((pass) => {
      rope(gpu, pass, {
        x: fused, out: cache, table, positions, tokens, heads: kvHeads, headDim, layout,
        strides: { token: rowWidth, offset: kOffset },
        outStrides: { token: headDim, head: maxTokens * headDim, offset: 0 },
      });
      rope(gpu, pass, { x: fused, table, positions, tokens, heads: kvHeads, headDim, layout, strides: { token: rowWidth, offset: kOffset } });
    });
    const k = new Float32Array(tokens * kvHeads * headDim);
    for (let t = 0; t < tokens; t++) k.set(qkv.subarray(t * rowWidth + kOffset, t * rowWidth + kOffset + kvHeads * headDim), t * kvHeads * headDim);
    const expectedK = ropeRef(k, [100, 101, 102, 90], freqs, { tokens, heads: kvHeads, headDim, layout });
    const fusedAfter = await gpu.readF32(fused, qkv.length);
    const cacheAfter = await gpu.readF32(cache, kvHeads * maxTokens * headDim);
    for (let t = 0; t < tokens; t++) {
      // Q and V untouched
      expect(Array.from(fusedAfter.subarray(t * rowWidth, t * rowWidth + kOffset))).toEqual(Array.from(qkv.subarray(t * rowWidth, t * rowWidth + kOffset)));
      const vStart = t * rowWidth + kOffset + kvHeads * headDim;
      expect(Array.from(fusedAfter.subarray(vStart, vStart + kvHeads * headDim))).toEqual(Array.from(qkv.subarray(vStart, vStart + kvHeads * headDim)));
      for (let h = 0; h < kvHeads; h++) {
        const want = expectedK.subarray((t * kvHeads + h) * headDim, (t * kvHeads + h + 1) * headDim);
        expectClose(fusedAfter.subarray(t * rowWidth + kOffset + h * headDim, t * rowWidth + kOffset + (h + 1) * headDim), want, exactTolerance, 0, 'fused K');
        expectClose(cacheAfter.subarray((h * maxTokens + t) * headDim, (h * maxTokens + t + 1) * headDim), want, exactTolerance, 0, 'cache K');
      }
    }
  });

  for (const layout of layouts) {
    it(`${layout}: rotating stored keys by a then by Δ (buffer or shift, negative too) equals rotating by a + Δ`, async () => {
      const gpu = await testGpu();
      const tokens = 64, heads = 2, headDim = 128;
      const freqs = ropeFrequencies({ ropeDim: headDim, base: 500000, scaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } });
      const table = gpu.upload(ropeTable(freqs));
      const a = randomPositions(tokens, 51, 100_000);
      const delta = randomPositions(tokens, 52, 5000, -5000);
      const x = randomF32(tokens * heads * headDim, 53);
      const keys = gpu.upload(x);
      const shifted = gpu.upload(x);
      await gpu.run((pass) => {
        rope(gpu, pass, { x: keys, table, positions: gpu.upload(a), tokens, heads, headDim, layout });
        rope(gpu, pass, { x: keys, table, positions: gpu.upload(delta), tokens, heads, headDim, layout });
        // One Δ for a range of rows, no buffer: rows 10..41 by -1234, then back by +1234.
        const range = { token: heads * headDim, offset: 10 * heads * headDim };
        rope(gpu, pass, { x: shifted, table, shift: -1234, tokens: 32, heads, headDim, layout, strides: range });
        rope(gpu, pass, { x: shifted, table, shift: 1234, tokens: 32, heads, headDim, layout, strides: range });
      });
      const sum = a.map((p, i) => p + delta[i]);
      // Two rotations: twice the single-rotation error, plus rounding of the intermediate.
      expectClose(await gpu.readF32(keys, x.length), ropeRef(x, sum, freqs, { tokens, heads, headDim, layout }), 2 * exactTolerance, 0, 'a then Δ');
      expectClose(await gpu.readF32(shifted, x.length), x, 2 * exactTolerance, 0, 'shift then unshift');
      // and a shift really moves the range (and only the range)
      const once = gpu.upload(x);
      await gpu.run((pass) => rope(gpu, pass, { x: once, table, shift: -1234, tokens: 32, heads, headDim, layout, strides: { offset: 10 * heads * headDim } }));
      const onceBack = await gpu.readF32(once, x.length);
      expect(Array.from(onceBack.subarray(0, 10 * heads * headDim))).toEqual(Array.from(x.subarray(0, 10 * heads * headDim)));
      const range = x.subarray(10 * heads * headDim, 42 * heads * headDim);
      expectClose(onceBack.subarray(10 * heads * headDim, 42 * heads * headDim), ropeRef(range, new Array(32).fill(-1234), freqs, { tokens: 32, heads, headDim, layout }), exactTolerance, 0, 'range shifted once');
      expect(Array.from(onceBack.subarray(42 * heads * headDim))).toEqual(Array.from(x.subarray(42 * heads * headDim)));
    });
  }

  it('handles tiny shapes and rejects bad arguments before dispatching', async () => {
    const gpu = await testGpu();
    const freqs = ropeFrequencies({ ropeDim: 2, base: 10000 });
    const table = gpu.upload(ropeTable(freqs));
    const x = new Float32Array([0.5, -0.25]);
    const buffer = gpu.upload(x);
    await gpu.run((pass) => {
      rope(gpu, pass, { x: buffer, table, shift: 3, tokens: 1, heads: 1, headDim: 2, layout: 'normal' });
      rope(gpu, pass, { x: buffer, table, shift: 3, tokens: 0, heads: 1, headDim: 2, layout: 'normal' }); // nothing to do
    });
    expectClose(await gpu.readF32(buffer, 2), ropeRef(x, [3], freqs, { tokens: 1, heads: 1, headDim: 2, layout: 'normal' }), exactTolerance);
    const pass = {} as GPUComputePassEncoder;
    const base = { x: buffer, table, tokens: 1, heads: 1, headDim: 2, layout: 'normal' as const };
    expect(() => rope(gpu, pass, { ...base })).toThrow(/exactly one of positions/);
    expect(() => rope(gpu, pass, { ...base, shift: 1, headDim: 3 })).toThrow(/even/);
    expect(() => rope(gpu, pass, { ...base, shift: 1, ropeDim: 4 })).toThrow(/ropeDim/);
    expect(() => rope(gpu, pass, { ...base, shift: 1, tokens: 2 })).toThrow(/rope: x holds 8 bytes/);
  });
});
