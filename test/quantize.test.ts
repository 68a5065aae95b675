// GGML type table, f16/bf16 rounding, and the quantizers/dequantizers in src/formats/quantize.ts:
// byte-exact against llama.cpp's reference code (hashes below), hand-checked blocks, error
// bounds, and refusals.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  GGMLType, GGMLTypeError, KERNEL_TYPES, QUANTIZABLE_TYPES, requireKernelType, rowBytes, tensorBytes, typeInfo, typeName,
} from '../src/formats/ggml-types';
import { bf16ToF32, dequantize, f16ToF32, f32ToBf16, f32ToF16, quantize } from '../src/formats/quantize';
import { randomNormal, rng } from './util';

const T = GGMLType;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
/** Normalizes -0 to 0 so that zero checks do not depend on the sign of a zero product. */
const plain = (values: Float32Array) => Array.from(values, (v) => v + 0);

describe('GGML types', () => {
  it('have ggml.h ids and ggml-common.h block layouts', () => {
    const expected: Array<[number, string, number, number]> = [
      [0, 'F32', 1, 4], [1, 'F16', 1, 2], [2, 'Q4_0', 32, 18], [3, 'Q4_1', 32, 20], [6, 'Q5_0', 32, 22], [7, 'Q5_1', 32, 24],
      [8, 'Q8_0', 32, 34], [9, 'Q8_1', 32, 36], [10, 'Q2_K', 256, 84], [11, 'Q3_K', 256, 110], [12, 'Q4_K', 256, 144],
      [13, 'Q5_K', 256, 176], [14, 'Q6_K', 256, 210], [15, 'Q8_K', 256, 292], [16, 'IQ2_XXS', 256, 66], [20, 'IQ4_NL', 32, 18],
      [23, 'IQ4_XS', 256, 136], [24, 'I8', 1, 1], [28, 'F64', 1, 8], [29, 'IQ1_M', 256, 56], [30, 'BF16', 1, 2],
      [34, 'TQ1_0', 256, 54], [35, 'TQ2_0', 256, 66], [39, 'MXFP4', 32, 17],
    ];
    for (const [id, name, blockSize, blockBytes] of expected) expect(typeInfo(id)).toEqual({ id, name, blockSize, blockBytes });
    expect(typeName(99)).toBe('type 99');
  });

  it('compute row and tensor sizes, refusing partial blocks', () => {
    expect(rowBytes(T.Q8_0, 64)).toBe(68);
    expect(rowBytes(T.Q6_K, 512)).toBe(420);
    expect(rowBytes(T.F16, 7)).toBe(14);
    expect(tensorBytes(T.Q4_K, [256, 3, 2])).toBe(144 * 6);
    expect(tensorBytes(T.F32, 5)).toBe(20);
    expect(() => rowBytes(T.Q4_K, 576)).toThrow(/576 elements is not a multiple of the Q4_K block size 256/);
    expect(() => rowBytes(99, 32)).toThrow(/unknown GGML type 99/);
  });

  it('name the type and the alternatives when a type is not supported', () => {
    expect(() => requireKernelType(T.Q2_K, 'blk.0.ffn_down.weight')).toThrow(GGMLTypeError);
    expect(() => requireKernelType(T.Q2_K, 'blk.0.ffn_down.weight')).toThrow(/blk\.0\.ffn_down\.weight: GGML type Q2_K \(10\) is not supported; supported types are F32, F16, BF16, Q8_0/);
    expect(() => requireKernelType(77)).toThrow(/unknown GGML type 77 is not supported/);
    expect(() => quantize(T.IQ2_XXS, new Float32Array(256))).toThrow(/quantize: GGML type IQ2_XXS \(16\) is not supported/);
    expect(() => dequantize(T.Q3_K, new Uint8Array(110), 256)).toThrow(/dequantize: GGML type Q3_K \(11\) is not supported/);
    for (const type of KERNEL_TYPES) expect(QUANTIZABLE_TYPES).toContain(type);
  });
});

describe('f16 and bf16 conversion', () => {
  it('rounds to nearest even as ggml does', () => {
    const cases: Array<[number, number]> = [
      [1, 0x3c00], [-2, 0xc000], [0, 0], [-0, 0x8000], [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00],
      [-Infinity, 0xfc00], [NaN, 0x7e00], [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0], [3 * 2 ** -26, 0x0001],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [0.1, 0x2e66], [1 / 3, 0x3555],
    ];
    for (const [value, half] of cases) expect(f32ToF16(value), `f16(${value})`).toBe(half);
    const bf: Array<[number, number]> = [[1, 0x3f80], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82], [-Infinity, 0xff80], [NaN, 0x7fc0], [3e38, 0x7f62]];
    for (const [value, bits] of bf) expect(f32ToBf16(value), `bf16(${value})`).toBe(bits);
  });

  it('round-trips every f16 and a sweep of bf16 values exactly', () => {
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue; // NaNs collapse to one NaN
      if (f32ToF16(f16ToF32(h)) !== h) expect.fail(`f16 ${h.toString(16)} -> ${f16ToF32(h)} -> ${f32ToF16(f16ToF32(h)).toString(16)}`);
    }
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x7bff)).toBe(65504);
    for (let b = 0; b < 65536; b += 7) {
      if ((b & 0x7f80) === 0x7f80 && b & 0x7f) continue;
      expect(f32ToBf16(bf16ToF32(b))).toBe(b);
    }
  });
});

/**
 * Values with the shapes quantizers special-case: per 32-value block, normal data (std 0.05)
 * at a random scale from 1e-4 to 1e2, all zeros, all equal, one outlier, one sign only, coarse
 * values with exact rounding ties.
 */
function goldenInput(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = randomNormal(n, seed + 1, 0.05);
  for (let b = 0; b < n / 32; b++) {
    const kind = Math.floor(r() * 8);
    const scale = 10 ** (r() * 6 - 4);
    for (let j = 0; j < 32; j++) {
      const i = b * 32 + j;
      if (kind === 0) x[i] = 0;
      else if (kind === 1) x[i] = 0.25;
      else if (kind === 2) x[i] = Math.round(x[i]! * 100) / 8;
      else if (kind === 3) x[i] = j === 5 ? 3 : x[i]!;
      else if (kind === 4) x[i] = x[i]! * scale;
      else if (kind === 5) x[i] = Math.abs(x[i]!);
      else if (kind === 6) x[i] = -Math.abs(x[i]!) * 1000;
    }
  }
  return x;
}

describe('quantizers match llama.cpp byte for byte', () => {
  // SHA-256 of the bytes ggml's quantize_row_*_ref (and ggml_compute_fp32_to_fp16/_bf16) write
  // for goldenInput(4096, 2024): ggml at d99724f2 (2026-08-21), ggml-quants.c built with gcc -O2
  // -ffp-contract=off. (A build that fuses multiply-adds can differ in a few K-quant bytes.)
  // The same comparison over 16k values of varied data per type also matched when this was written.
  const golden: Array<[string, number, string]> = [
    ['Q8_0', T.Q8_0, '58ff15dc463879feaf8697dc328f8a8c51eebe1c06d356076f1444314d2977b4'],
    ['Q4_0', T.Q4_0, '6f92390b0b1480843b830b9bb58ec012a5b89044820b9e9ea61870f7d58ee642'],
    ['Q4_1', T.Q4_1, '93b336eea3745fcb53ac86348c55764b2bf34b915cdf0168b48e8b5acf168c2c'],
    ['Q5_0', T.Q5_0, 'f02cbe372aded4d89b3cb2147c96728aa9771d024e6bea85814cbfebf70a9113'],
    ['Q5_1', T.Q5_1, '446bdc2f80c32aa3f547e00f93c19f255c751d8043fb2500d2325cac976f047c'],
    ['Q4_K', T.Q4_K, '86aa0b169cda08425b78a552b5b3abeb864325077a2180f95fe249c4fd62a54f'],
    ['Q5_K', T.Q5_K, 'c71954875eb2f49306fc9ed9eef0cf6c1f5c108cd6ee72d2171dd2c84d7df21b'],
    ['Q6_K', T.Q6_K, '5ab9331f08716a79ed1bf1edd57366ddc72fb2c1f3f1d7dfa53bdfea454bb06c'],
    ['F16', T.F16, '3a4296c34fcf9364b362b86c24944397a96315da523824351a24cf2444a42810'],
    ['BF16', T.BF16, '6020288cef7b7134860324f7de95720279e4f6c23b0dfe36aed4f7af5bf52aa6'],
  ];
  const input = goldenInput(4096, 2024);
  for (const [name, type, hash] of golden) {
    it(name, () => expect(sha256(quantize(type, input, 512))).toBe(hash));
  }
});

describe('hand-checked blocks', () => {
  it('Q8_0: 32 ones -> d = f16(1/127) = 0x2008, every q = 127', () => {
    const bytes = quantize(T.Q8_0, new Float32Array(32).fill(1));
    expect(hex(bytes)).toBe('0820' + '7f'.repeat(32));
    expect(dequantize(T.Q8_0, bytes, 32)).toEqual(new Float32Array(32).fill(Math.fround(127 * f16ToF32(0x2008))));
  });

  it('Q4_0: one non-zero value maps to level 0 with d = max / -8, so it comes back exactly', () => {
    const x = new Float32Array(32);
    x[5] = -2; // d = 0.25 (0x3400); zeros are level 8; byte j holds values j (low) and j+16 (high)
    let bytes = quantize(T.Q4_0, x);
    expect(hex(bytes)).toBe('0034' + '88'.repeat(5) + '80' + '88'.repeat(10));
    expect(plain(dequantize(T.Q4_0, bytes, 32))).toEqual(Array.from(x));
    x[5] = 0;
    x[20] = 2; // d = -0.25 (0xb400); value 20 is the high nibble of byte 4
    bytes = quantize(T.Q4_0, x);
    expect(hex(bytes)).toBe('00b4' + '88'.repeat(4) + '08' + '88'.repeat(11));
    expect(plain(dequantize(T.Q4_0, bytes, 32))).toEqual(Array.from(x));
  });

  it('Q6_K: one non-zero value: sub-block scale -1/32, d = 2^-12, int8 scale -128', () => {
    const x = new Float32Array(256);
    x[0] = 1;
    const bytes = quantize(T.Q6_K, x);
    // ql: all low nibbles 0 (levels 0 and 32); qh[1..15] = 2 (level 32 = 2 << 4 for values 1..15);
    // values 16..255 are all-zero sub-blocks, level 0 with scale 0; scales[0] = -128; d = 0x0c00.
    const expected = new Uint8Array(210);
    for (let l = 1; l < 16; l++) expected[128 + l] = 2;
    expected[192] = 0x80;
    expected[209] = 0x0c;
    expect(hex(bytes)).toBe(hex(expected));
    expect(plain(dequantize(T.Q6_K, bytes, 256))).toEqual(Array.from(x));
  });

  it('all-zero blocks: d = 0 (-0 for Q4_0 and Q5_0, whose d is max / -8), level 0 (8 for Q4_0, 16 for Q5_0), and dequantize to zeros', () => {
    for (const type of QUANTIZABLE_TYPES) {
      const n = typeInfo(type).blockSize === 256 ? 256 : 32;
      const bytes = quantize(type, new Float32Array(n));
      const expected = type === T.Q4_0 ? '0080' + '88'.repeat(16) : type === T.Q5_0 ? '0080ffffffff' + '00'.repeat(16) : '00'.repeat(bytes.length);
      expect(hex(bytes), typeName(type)).toBe(expected);
      expect(plain(dequantize(type, bytes, n)), typeName(type)).toEqual(new Array(n).fill(0));
    }
  });

  it('Q5_0 puts the 5th bit of value j in bit j of qh, and Q5_K in bit j/32 of qh[j % 32]', () => {
    const x = new Float32Array(256);
    x[3] = -1; // level 0 (d = 1/16)
    x[17] = 1; // level 32 -> clamped to 31
    const q5 = quantize(T.Q5_0, x.subarray(0, 32));
    // zeros are level 16: bit 4 set for every value except 3; qs low nibbles 0 except
    const qh = q5[2]! | (q5[3]! << 8) | (q5[4]! << 16) | (q5[5]! << 24);
    expect((qh >>> 0).toString(2).padStart(32, '0')).toBe('11111111111111111111111111110111');
    expect(q5[6 + 1]! >> 4).toBe(15); // value 17: level 31 = 0b11111, high nibble of byte 1
    const back = dequantize(T.Q5_0, q5, 32);
    expect(back[3]).toBe(-1);
    expect(back[17]).toBeCloseTo(15 / 16, 6);

    // Q5_K, built by hand: d = 1, dmin = 0.5; sub-block 5 has scale 37 and min 50, packed as
    // get_scale_min_k4 reads j >= 4: low nibbles in byte j+4, top 2 bits in bytes j-4 and j.
    const k5 = new Uint8Array(176);
    k5.set([0x00, 0x3c, 0x00, 0x38], 0); // f16 1.0, f16 0.5
    k5[4 + 9] = (37 & 0xf) | ((50 & 0xf) << 4);
    k5[4 + 1] = (37 >> 4) << 6;
    k5[4 + 5] = (50 >> 4) << 6;
    // Value 165 = 64*2 + 32 + 5: sub-block 5, high nibble of qs[32*2 + 5], 5th bit = bit 5 of qh[5].
    k5[48 + 69] = 0x30;
    k5[16 + 5] = 1 << 5;
    const w = dequantize(T.Q5_K, k5, 256);
    expect(w[165]).toBe(37 * (3 + 16) - 25);
    expect(w[160]).toBe(-25); // same sub-block, level 0
    expect(w[133]).toBe(0); // sub-block 4, scale and min 0
    expect(plain(w.subarray(0, 160))).toEqual(new Array(160).fill(0));
  });
});

describe('round trip error', () => {
  // Per 32-value block, what each format's rounding allows, relative to the block's largest |x|:
  // half a step, plus the f16 rounding of the scale (2^-11 relative) times the largest level.
  const blockBound: Record<string, (amax: number, range: number) => number> = {
    Q8_0: (amax) => (amax / 127) * (0.5 + 127 * 2 ** -11),
    // levels -8..7 with d = max / -8: a value of the opposite sign to the extreme can be a whole
    // step from level 7.
    Q4_0: (amax) => (amax / 8) * (1 + 8 * 2 ** -11),
    Q5_0: (amax) => (amax / 16) * (1 + 16 * 2 ** -11),
    // d = range / 15 (31), min stored as f16
    Q4_1: (amax, range) => (range / 15) * (0.5 + 15 * 2 ** -11) + amax * 2 ** -11,
    Q5_1: (amax, range) => (range / 31) * (0.5 + 31 * 2 ** -11) + amax * 2 ** -11,
  };
  for (const [name, bound] of Object.entries(blockBound)) {
    it(`${name} stays within its per-block bound and re-quantizes to the same bytes`, () => {
      const type = T[name as keyof typeof T];
      for (const std of [0.02, 0.1, 3]) {
        const x = randomNormal(4096, Math.round(std * 1000), std);
        const bytes = quantize(type, x);
        const y = dequantize(type, bytes, x.length);
        for (let b = 0; b < x.length / 32; b++) {
          const block = x.subarray(b * 32, b * 32 + 32);
          const amax = Math.max(...block.map(Math.abs));
          const range = Math.max(...block) - Math.min(...block);
          for (let j = 0; j < 32; j++) {
            const err = Math.abs(block[j]! - y[b * 32 + j]!);
            if (!(err <= bound(amax, range))) expect.fail(`${name} block ${b} value ${j}: error ${err} over ${bound(amax, range)}`);
          }
        }
        // A dequantized tensor is a fixed point: quantizing it again gives the same bytes.
        expect(hex(quantize(type, y)) === hex(bytes), `${name} re-quantization`).toBe(true);
      }
    });
  }

  // K-quants fit 6-bit (Q6_K 8-bit) sub-block scales by search, so their bound is statistical:
  // RMS error relative to RMS value on normal data. Measured when written: Q4_K 0.073, Q5_K
  // 0.037, Q6_K 0.018 (worst of 20 seeds); F16/BF16 by their mantissa width.
  const rmsBound: Array<[string, number, number]> = [
    ['F16', T.F16, 2 ** -11], ['BF16', T.BF16, 2 ** -8], ['Q8_0', T.Q8_0, 0.008], ['Q4_K', T.Q4_K, 0.09], ['Q5_K', T.Q5_K, 0.045], ['Q6_K', T.Q6_K, 0.025],
  ];
  for (const [name, type, bound] of rmsBound) {
    it(`${name} RMS error is under ${bound} of the RMS value`, () => {
      for (const std of [0.02, 0.1, 3]) {
        const x = randomNormal(4096, 7 + Math.round(std * 1000), std);
        const y = dequantize(type, quantize(type, x), x.length);
        let se = 0;
        let sx = 0;
        for (let i = 0; i < x.length; i++) {
          se += (x[i]! - y[i]!) ** 2;
          sx += x[i]! ** 2;
        }
        expect(Math.sqrt(se / sx)).toBeLessThan(bound);
      }
    });
  }

  it("meets llama.cpp's own test-quantize-fns bound (sqrt(Σ err²) / n < 0.002 on 0.1 + 2cos(i))", () => {
    const n = 32 * 128;
    const x = new Float32Array(n).map((_, i) => 0.1 + 2 * Math.cos(i));
    for (const type of QUANTIZABLE_TYPES) {
      const y = dequantize(type, quantize(type, x), n);
      let se = 0;
      for (let i = 0; i < n; i++) se += (x[i]! - y[i]!) ** 2;
      expect(Math.sqrt(se) / n, typeName(type)).toBeLessThan(0.002);
    }
  });
});

describe('quantize and dequantize arguments', () => {
  it('quantize rows of a whole number of blocks, any number of rows', () => {
    const x = randomNormal(3 * 64, 5, 0.1);
    expect(quantize(T.Q8_0, x, 64).length).toBe(3 * 2 * 34);
    expect(quantize(T.F16, x.subarray(0, 21), 7).length).toBe(42);
    expect(() => quantize(T.Q8_0, x, 48)).toThrow(/not a multiple of the Q8_0 block size 32/);
    expect(() => quantize(T.Q8_0, x, 100)).toThrow(/not whole rows of 100/);
    expect(quantize(T.Q4_K, new Float32Array(0)).length).toBe(0);
  });

  it('refuse non-finite values for block formats, and round them for f16', () => {
    const x = new Float32Array(32);
    x[3] = NaN;
    expect(() => quantize(T.Q4_0, x)).toThrow(/value 3 is NaN/);
    x[3] = Infinity;
    expect(() => quantize(T.Q6_K, new Float32Array(256).fill(Infinity))).toThrow(/value 0 is Infinity/);
    expect(hex(quantize(T.F16, x.subarray(2, 4)))).toBe('0000007c');
  });

  it('dequantize checks that the bytes cover the elements', () => {
    expect(() => dequantize(T.Q8_0, new Uint8Array(33), 32)).toThrow(/32 elements need 34 bytes, 33 given/);
    expect(() => dequantize(T.Q8_0, new Uint8Array(68), 40)).toThrow(/40 elements is not a whole number of 32-element blocks/);
  });
});
