// CPU conversion between f32 and GGUF tensor bytes: f16/bf16 rounding as ggml does it,
// dequantizers that follow ggml-quants.c's dequantize_row_* value for value (they are the CPU
// reference the GPU kernels are checked against), and quantizers that follow llama.cpp's
// reference quantizers (quantize_row_*_ref, used by llama-quantize without an importance
// matrix) operation for operation in f32, so the bytes come out as llama.cpp's would.
//
// Every f32 operation of the C code is mirrored with Math.fround; `f(a * b)` below is C's
// `a * b` on floats. The C reference built without FMA contraction (-ffp-contract=off) gives
// the same bytes; a build that fuses multiply-adds (gcc -march=native) differs in a few bytes
// per ten thousand values for Q4_K and Q6_K, where a near-tie in the scale search goes the
// other way.
import { GGMLType, GGMLTypeError, type GGMLTypeId, KERNEL_TYPES, QUANTIZABLE_TYPES, typeInfo, unsupportedTypeMessage } from './ggml-types';

const f = Math.fround;
const QK = 32; // elements per block of the 32-element formats
const QK_K = 256; // elements per K-quant super-block
const GROUP_MAX_EPS = f(1e-15);

// ---------------------------------------------------------------------------------------------
// f16 and bf16

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f32Bits(value: number): number {
  scratchF32[0] = value;
  return scratchU32[0]!;
}

function bitsF32(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0]!;
}

/** f32 -> IEEE half bits, round to nearest even, overflow to inf, NaN -> 0x7e00 (sign kept), as ggml_compute_fp32_to_fp16. */
export function f32ToF16(value: number): number {
  const bits = f32Bits(value);
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00; // NaN
  if (abs >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds to inf (65504 is the largest half)
  if (abs < 0x38800000) {
    // Below 2^-14: a subnormal half, abs / 2^-24 rounded to an integer (ties to even). The
    // product is exact in f64. A result of 0x400 is the smallest normal, encoded correctly.
    const scaled = Math.abs(bitsF32(abs)) * 16777216;
    let q = Math.floor(scaled);
    const rest = scaled - q;
    if (rest > 0.5 || (rest === 0.5 && (q & 1) === 1)) q++;
    return sign | q;
  }
  // Normal: rebias the exponent, keep the top 10 mantissa bits, round the 13 dropped ones.
  // A carry out of the mantissa moves into the exponent, which is what rounding up should do.
  let half = (((abs >>> 23) - 112) << 10) | ((abs >>> 13) & 0x3ff);
  const dropped = abs & 0x1fff;
  if (dropped > 0x1000 || (dropped === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

let f16Table: Float32Array | null = null;

/** IEEE half bits -> f32 (exact). */
export function f16ToF32(half: number): number {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const exponent = (h >>> 10) & 0x1f;
      const mantissa = h & 0x3ff;
      const magnitude =
        exponent === 0 ? mantissa * 2 ** -24 : exponent === 31 ? (mantissa ? NaN : Infinity) : (1 + mantissa / 1024) * 2 ** (exponent - 15);
      f16Table[h] = h & 0x8000 ? -magnitude : magnitude;
    }
  }
  return f16Table[half & 0xffff]!;
}

/** f32 -> bfloat16 bits, round to nearest even, NaN made quiet, as ggml_compute_fp32_to_bf16. */
export function f32ToBf16(value: number): number {
  const bits = f32Bits(value);
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 64) & 0xffff;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16; // at most 0xff807fff + 1: no u32 overflow
}

/** bfloat16 bits -> f32 (exact). */
export function bf16ToF32(bits: number): number {
  return bitsF32((bits & 0xffff) << 16);
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the quantizers

/** ggml's nearest_int: adding 1.5 * 2^23 in f32 rounds to an integer, ties to even. */
function nearestInt(value: number): number {
  return f(value + 12582912) - 12582912;
}

/** C's roundf: half away from zero. */
function roundAway(value: number): number {
  return value < 0 ? -Math.round(-value) : Math.round(value);
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

function writeF16(bytes: Uint8Array, offset: number, value: number): void {
  const h = f32ToF16(value);
  bytes[offset] = h & 0xff;
  bytes[offset + 1] = h >>> 8;
}

function readF16(bytes: Uint8Array, offset: number): number {
  return f16ToF32(bytes[offset]! | (bytes[offset + 1]! << 8));
}

/** Largest |x| and the signed value that has it (the first one on ties), as the C loops keep them. */
function signedAbsMax(x: Float32Array, start: number, n: number): { amax: number; max: number } {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[start + j]!;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return { amax, max };
}

// ---------------------------------------------------------------------------------------------
// 32-element block formats: quantize_row_q*_ref and dequantize_row_q* in ggml-quants.c

function quantizeQ8_0(x: Float32Array, out: Uint8Array): void {
  for (let b = 0; b < x.length / QK; b++) {
    const src = b * QK;
    const dst = b * 34;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[src + j]!));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    writeF16(out, dst, d);
    for (let j = 0; j < QK; j++) out[dst + 2 + j] = roundAway(f(x[src + j]! * id)) & 0xff;
  }
}

function dequantizeQ8_0(bytes: Uint8Array, y: Float32Array): void {
  for (let b = 0; b < y.length / QK; b++) {
    const d = readF16(bytes, b * 34);
    for (let j = 0; j < QK; j++) y[b * QK + j] = f(((bytes[b * 34 + 2 + j]! << 24) >> 24) * d);
  }
}

function quantizeQ4_0(x: Float32Array, out: Uint8Array): void {
  for (let b = 0; b < x.length / QK; b++) {
    const src = b * QK;
    const dst = b * 18;
    const { max } = signedAbsMax(x, src, QK);
    // The largest magnitude maps to -8 exactly, so the full range -8..7 is used.
    const d = f(max / -8);
    const id = d ? f(1 / d) : 0;
    writeF16(out, dst, d);
    for (let j = 0; j < QK / 2; j++) {
      const x0 = f(x[src + j]! * id);
      const x1 = f(x[src + QK / 2 + j]! * id);
      const q0 = Math.min(15, Math.trunc(f(x0 + 8.5)));
      const q1 = Math.min(15, Math.trunc(f(x1 + 8.5)));
      out[dst + 2 + j] = q0 | (q1 << 4);
    }
  }
}

function dequantizeQ4_0(bytes: Uint8Array, y: Float32Array): void {
  for (let b = 0; b < y.length / QK; b++) {
    const d = readF16(bytes, b * 18);
    for (let j = 0; j < QK / 2; j++) {
      const q = bytes[b * 18 + 2 + j]!;
      y[b * QK + j] = f(((q & 0xf) - 8) * d);
      y[b * QK + j + QK / 2] = f(((q >> 4) - 8) * d);
    }
  }
}

function quantizeQ4_1(x: Float32Array, out: Uint8Array): void {
  for (let b = 0; b < x.length / QK; b++) {
    const src = b * QK;
    const dst = b * 20;
    let min = Infinity;
    let max = -Infinity;
    for (let j = 0; j < QK; j++) {
      min = Math.min(min, x[src + j]!);
      max = Math.max(max, x[src + j]!);
    }
    const d = f(f(max - min) / 15);
    const id = d ? f(1 / d) : 0;
    writeF16(out, dst, d);
    writeF16(out, dst + 2, min);
    for (let j = 0; j < QK / 2; j++) {
      const x0 = f(f(x[src + j]! - min) * id);
      const x1 = f(f(x[src + QK / 2 + j]! - min) * id);
      const q0 = Math.min(15, Math.trunc(f(x0 + 0.5)));
      const q1 = Math.min(15, Math.trunc(f(x1 + 0.5)));
      out[dst + 4 + j] = q0 | (q1 << 4);
    }
  }
}

function dequantizeQ4_1(bytes: Uint8Array, y: Float32Array): void {
  for (let b = 0; b < y.length / QK; b++) {
    const d = readF16(bytes, b * 20);
    const m = readF16(bytes, b * 20 + 2);
    for (let j = 0; j < QK / 2; j++) {
      const q = bytes[b * 20 + 4 + j]!;
      y[b * QK + j] = f(f((q & 0xf) * d) + m);
      y[b * QK + j + QK / 2] = f(f((q >> 4) * d) + m);
    }
  }
}

/** The 5th bits of a Q5 block's 32 values: bit j of the little-endian u32 belongs to value j. */
function writeU32(out: Uint8Array, offset: number, v: number): void {
  out[offset] = v & 0xff;
  out[offset + 1] = (v >>> 8) & 0xff;
  out[offset + 2] = (v >>> 16) & 0xff;
  out[offset + 3] = v >>> 24;
}

function readU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}

function quantizeQ5_0(x: Float32Array, out: Uint8Array): void {
  for (let b = 0; b < x.length / QK; b++) {
    const src = b * QK;
    const dst = b * 22;
    const { max } = signedAbsMax(x, src, QK);
    const d = f(max / -16);
    const id = d ? f(1 / d) : 0;
    writeF16(out, dst, d);
    let qh = 0;
    for (let j = 0; j < QK / 2; j++) {
      const q0 = Math.min(31, Math.trunc(f(f(x[src + j]! * id) + 16.5)));
      const q1 = Math.min(31, Math.trunc(f(f(x[src + QK / 2 + j]! * id) + 16.5)));
      out[dst + 6 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 & 0x10) >>> 4) << j;
      qh |= ((q1 & 0x10) >>> 4) << (j + QK / 2);
    }
    writeU32(out, dst + 2, qh >>> 0);
  }
}

function dequantizeQ5_0(bytes: Uint8Array, y: Float32Array): void {
  for (let b = 0; b < y.length / QK; b++) {
    const d = readF16(bytes, b * 22);
    const qh = readU32(bytes, b * 22 + 2);
    for (let j = 0; j < QK / 2; j++) {
      const q = bytes[b * 22 + 6 + j]!;
      y[b * QK + j] = f((((q & 0xf) | (((qh >>> j) & 1) << 4)) - 16) * d);
      y[b * QK + j + QK / 2] = f((((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d);
    }
  }
}

function quantizeQ5_1(x: Float32Array, out: Uint8Array): void {
  for (let b = 0; b < x.length / QK; b++) {
    const src = b * QK;
    const dst = b * 24;
    let min = Infinity;
    let max = -Infinity;
    for (let j = 0; j < QK; j++) {
      min = Math.min(min, x[src + j]!);
      max = Math.max(max, x[src + j]!);
    }
    const d = f(f(max - min) / 31);
    const id = d ? f(1 / d) : 0;
    writeF16(out, dst, d);
    writeF16(out, dst + 2, min);
    let qh = 0;
    for (let j = 0; j < QK / 2; j++) {
      // No clamp to 31 here in the C code either; (max - min) * id cannot pass 31.5.
      const q0 = Math.trunc(f(f(f(x[src + j]! - min) * id) + 0.5)) & 0xff;
      const q1 = Math.trunc(f(f(f(x[src + QK / 2 + j]! - min) * id) + 0.5)) & 0xff;
      out[dst + 8 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 & 0x10) >>> 4) << j;
      qh |= ((q1 & 0x10) >>> 4) << (j + QK / 2);
    }
    writeU32(out, dst + 4, qh >>> 0);
  }
}

function dequantizeQ5_1(bytes: Uint8Array, y: Float32Array): void {
  for (let b = 0; b < y.length / QK; b++) {
    const d = readF16(bytes, b * 24);
    const m = readF16(bytes, b * 24 + 2);
    const qh = readU32(bytes, b * 24 + 4);
    for (let j = 0; j < QK / 2; j++) {
      const q = bytes[b * 24 + 8 + j]!;
      y[b * QK + j] = f(f(((q & 0xf) | (((qh >>> j) & 1) << 4)) * d) + m);
      y[b * QK + j + QK / 2] = f(f(((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d) + m);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// K-quants: 256-element super-blocks with quantized per-sub-block scales

/** Scratch arrays of the K-quant quantizers, reused across blocks (quantization is synchronous). */
const kScratch = {
  levels: new Uint8Array(QK_K),
  levelsAux: new Uint8Array(32),
  weights: new Float32Array(32),
  scales: new Float32Array(8),
  mins: new Float32Array(8),
};

/**
 * make_qkx2_quants: levels 0..nmax for x ~ scale * L - min, searching nstep+1 candidate scales
 * around the range-fitting one and keeping the one with the least weighted squared error.
 * Writes L[0..n) and returns [scale, -min].
 */
function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, x0: number, weights: Float32Array, L: Uint8Array, l0: number,
  rmin: number, rdelta: number, nstep: number,
): [number, number] {
  const Laux = kScratch.levelsAux;
  let min = x[x0]!;
  let max = x[x0]!;
  let sumW = weights[0]!;
  let sumX = f(sumW * x[x0]!);
  for (let i = 1; i < n; i++) {
    const xi = x[x0 + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i]!;
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, l0, l0 + n);
    return [0, -min];
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = clamp(nearestInt(f(iscale * f(x[x0 + i]! - min))), 0, nmax);
    L[l0 + i] = l;
    const diff = f(f(f(scale * l) + min) - x[x0 + i]!);
    bestError = f(bestError + f(weights[i]! * f(diff * diff)));
  }
  if (nstep < 1) return [scale, -min];
  for (let is = 0; is <= nstep; is++) {
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestInt(f(iscale * f(x[x0 + i]! - min))), 0, nmax);
      Laux[i] = l;
      const wl = f(weights[i]! * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * x[x0 + i]!));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = f(f(f(thisScale * Laux[i]!) + thisMin) - x[x0 + i]!);
        curError = f(curError + f(weights[i]! * f(diff * diff)));
      }
      if (curError < bestError) {
        L.set(Laux.subarray(0, n), l0);
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/**
 * make_qx_quants with rmse_type 1 and no importance weights: signed levels -nmax..nmax-1 stored
 * as L + nmax, trying 19 scales near nmax/max and keeping the best x²-weighted least-squares fit.
 * Returns the scale.
 */
function makeQxQuants(n: number, nmax: number, x: Float32Array, x0: number, L: Uint8Array, l0: number): number {
  const { amax, max } = signedAbsMax(x, x0, n);
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, l0, l0 + n);
    return 0;
  }
  let iscale = f(-nmax / max);
  let sumLX = 0;
  let sumL2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[x0 + i]!;
    const l = clamp(nearestInt(f(iscale * xi)), -nmax, nmax - 1);
    L[l0 + i] = l + nmax;
    const w = f(xi * xi);
    sumLX = f(sumLX + f(f(w * xi) * l));
    sumL2 = f(sumL2 + f(f(w * l) * l));
  }
  let scale = sumL2 ? f(sumLX / sumL2) : 0;
  let best = f(scale * sumLX);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(f(0.1) * is)) / max);
    sumLX = 0;
    sumL2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[x0 + i]!;
      const l = clamp(nearestInt(f(iscale * xi)), -nmax, nmax - 1);
      const w = f(xi * xi);
      sumLX = f(sumLX + f(f(w * xi) * l));
      sumL2 = f(sumL2 + f(f(w * l) * l));
    }
    if (sumL2 > 0 && f(sumLX * sumLX) > f(best * sumL2)) {
      for (let i = 0; i < n; i++) L[l0 + i] = nmax + clamp(nearestInt(f(iscale * x[x0 + i]!)), -nmax, nmax - 1);
      scale = f(sumLX / sumL2);
      best = f(scale * sumLX);
    }
  }
  return scale;
}

/** get_scale_min_k4: the 6-bit scale and min of sub-block j from a Q4_K/Q5_K block's 12 scale bytes. */
export function scaleMinK4(j: number, q: Uint8Array, at: number): [number, number] {
  if (j < 4) return [q[at + j]! & 63, q[at + j + 4]! & 63];
  return [(q[at + j + 4]! & 0xf) | ((q[at + j - 4]! >> 6) << 4), (q[at + j + 4]! >> 4) | ((q[at + j]! >> 6) << 4)];
}

/**
 * Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per 32-element sub-block fit scale and min with
 * make_qkx2_quants, quantize the eight scales and mins to 6 bits against the block maxima,
 * pack them into 12 bytes, then requantize the values with the scales as stored. Writes d,
 * dmin and the scales at `dst` and returns the final levels L[0..256).
 */
function quantizeKBlockLevels(x: Float32Array, src: number, out: Uint8Array, dst: number, nmax: number, rmin: number, nstep: number): Uint8Array {
  const { levels: L, weights, scales, mins } = kScratch;
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(x[src + 32 * j + l]! * x[src + 32 * j + l]!));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[src + 32 * j + l]!));
    const [scale, min] = makeQkx2Quants(32, nmax, x, src + 32 * j, weights, L, 32 * j, rmin, 0.1, nstep);
    scales[j] = scale;
    mins[j] = min;
    if (scale > maxScale) maxScale = scale;
    if (min > maxMin) maxMin = min;
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  const sc = dst + 4; // 12 bytes: 6-bit scales and mins, high bits of 4..7 in the top of bytes 0..7
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(f(invScale * scales[j]!)) & 0xff);
    const lm = Math.min(63, nearestInt(f(invMin * mins[j]!)) & 0xff);
    if (j < 4) {
      out[sc + j] = ls;
      out[sc + j + 4] = lm;
    } else {
      out[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      out[sc + j - 4] |= (ls >> 4) << 6;
      out[sc + j] |= (lm >> 4) << 6;
    }
  }
  writeF16(out, dst, f(maxScale / 63));
  writeF16(out, dst + 2, f(maxMin / 63));
  const dAll = readF16(out, dst);
  const dminAll = readF16(out, dst + 2);
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(j, out, sc);
    const d = f(dAll * s);
    if (!d) continue; // keeps make_qkx2_quants' levels, as the C code does
    const dm = f(dminAll * m);
    for (let i = 0; i < 32; i++) L[32 * j + i] = clamp(nearestInt(f(f(x[src + 32 * j + i]! + dm) / d)), 0, nmax);
  }
  return L;
}

function quantizeQ4_K(x: Float32Array, out: Uint8Array): void {
  for (let b = 0; b < x.length / QK_K; b++) {
    const dst = b * 144;
    const L = quantizeKBlockLevels(x, b * QK_K, out, dst, 15, -1, 20);
    // Each 64 values share 32 bytes: the first 32 in the low nibbles, the next 32 in the high.
    for (let g = 0; g < 4; g++) {
      for (let l = 0; l < 32; l++) out[dst + 16 + 32 * g + l] = L[64 * g + l]! | (L[64 * g + 32 + l]! << 4);
    }
  }
}

function dequantizeQ4_K(bytes: Uint8Array, y: Float32Array): void {
  for (let b = 0; b < y.length / QK_K; b++) {
    const base = b * 144;
    const d = readF16(bytes, base);
    const dmin = readF16(bytes, base + 2);
    for (let g = 0; g < 4; g++) {
      const [s1, m1] = scaleMinK4(2 * g, bytes, base + 4);
      const [s2, m2] = scaleMinK4(2 * g + 1, bytes, base + 4);
      const d1 = f(d * s1), min1 = f(dmin * m1), d2 = f(d * s2), min2 = f(dmin * m2);
      for (let l = 0; l < 32; l++) {
        const q = bytes[base + 16 + 32 * g + l]!;
        y[b * QK_K + 64 * g + l] = f(f(d1 * (q & 0xf)) - min1);
        y[b * QK_K + 64 * g + 32 + l] = f(f(d2 * (q >> 4)) - min2);
      }
    }
  }
}

function quantizeQ5_K(x: Float32Array, out: Uint8Array): void {
  for (let b = 0; b < x.length / QK_K; b++) {
    const dst = b * 176;
    const L = quantizeKBlockLevels(x, b * QK_K, out, dst, 31, -0.5, 15);
    // Low nibbles as in Q4_K; the 5th bit of value 64g + 32h + l is bit 2g + h of qh[l].
    for (let g = 0; g < 4; g++) {
      for (let l = 0; l < 32; l++) {
        const lo = L[64 * g + l]!;
        const hi = L[64 * g + 32 + l]!;
        out[dst + 48 + 32 * g + l] = (lo & 0xf) | ((hi & 0xf) << 4);
        out[dst + 16 + l] |= ((lo >> 4) << (2 * g)) | ((hi >> 4) << (2 * g + 1));
      }
    }
  }
}

function dequantizeQ5_K(bytes: Uint8Array, y: Float32Array): void {
  for (let b = 0; b < y.length / QK_K; b++) {
    const base = b * 176;
    const d = readF16(bytes, base);
    const dmin = readF16(bytes, base + 2);
    for (let g = 0; g < 4; g++) {
      const [s1, m1] = scaleMinK4(2 * g, bytes, base + 4);
      const [s2, m2] = scaleMinK4(2 * g + 1, bytes, base + 4);
      const d1 = f(d * s1), min1 = f(dmin * m1), d2 = f(d * s2), min2 = f(dmin * m2);
      for (let l = 0; l < 32; l++) {
        const q = bytes[base + 48 + 32 * g + l]!;
        const h = bytes[base + 16 + l]!;
        y[b * QK_K + 64 * g + l] = f(f(d1 * ((q & 0xf) + ((h >> (2 * g)) & 1) * 16)) - min1);
        y[b * QK_K + 64 * g + 32 + l] = f(f(d2 * ((q >> 4) + ((h >> (2 * g + 1)) & 1) * 16)) - min2);
      }
    }
  }
}

function quantizeQ6_K(x: Float32Array, out: Uint8Array): void {
  const L = new Uint8Array(QK_K);
  const scales = new Float32Array(16);
  for (let b = 0; b < x.length / QK_K; b++) {
    const src = b * QK_K;
    const dst = b * 210;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, x, src + 16 * ib, L, 16 * ib);
      scales[ib] = scale;
      if (Math.abs(scale) > maxAbsScale) {
        maxAbsScale = Math.abs(scale);
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      out.fill(0, dst, dst + 210); // an all-zero block, d = +0
      continue;
    }
    const iscale = f(-128 / maxScale);
    writeF16(out, dst + 208, f(1 / iscale));
    for (let ib = 0; ib < 16; ib++) out[dst + 192 + ib] = Math.min(127, nearestInt(f(iscale * scales[ib]!))) & 0xff;
    const dAll = readF16(out, dst + 208);
    for (let j = 0; j < 16; j++) {
      const d = f(dAll * ((out[dst + 192 + j]! << 24) >> 24));
      if (!d) continue;
      for (let i = 0; i < 16; i++) L[16 * j + i] = clamp(nearestInt(f(x[src + 16 * j + i]! / d)), -32, 31) + 32;
    }
    // Per 128 values: ql[l] holds values l (low nibble) and l+64 (high), ql[l+32] values l+32
    // and l+96; qh[l] holds the top 2 bits of l, l+32, l+64, l+96.
    for (let n = 0; n < 2; n++) {
      const v = 128 * n;
      for (let l = 0; l < 32; l++) {
        const q1 = L[v + l]!, q2 = L[v + l + 32]!, q3 = L[v + l + 64]!, q4 = L[v + l + 96]!;
        out[dst + 64 * n + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
        out[dst + 64 * n + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
        out[dst + 128 + 32 * n + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
      }
    }
  }
}

function dequantizeQ6_K(bytes: Uint8Array, y: Float32Array): void {
  for (let b = 0; b < y.length / QK_K; b++) {
    const base = b * 210;
    const d = readF16(bytes, base + 208);
    for (let n = 0; n < 2; n++) {
      for (let l = 0; l < 32; l++) {
        const is = Math.floor(l / 16);
        const lo1 = bytes[base + 64 * n + l]!;
        const lo2 = bytes[base + 64 * n + l + 32]!;
        const h = bytes[base + 128 + 32 * n + l]!;
        const q = [(lo1 & 0xf) | ((h & 3) << 4), (lo2 & 0xf) | (((h >> 2) & 3) << 4), (lo1 >> 4) | (((h >> 4) & 3) << 4), (lo2 >> 4) | (((h >> 6) & 3) << 4)];
        for (let t = 0; t < 4; t++) {
          const scale = (bytes[base + 192 + 8 * n + is + 2 * t]! << 24) >> 24;
          y[b * QK_K + 128 * n + 32 * t + l] = f(f(d * scale) * (q[t]! - 32));
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Plain types

function quantizeF16(x: Float32Array, out: Uint8Array): void {
  const h = new Uint16Array(out.buffer, out.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) h[i] = f32ToF16(x[i]!);
}

function dequantizeF16(bytes: Uint8Array, y: Float32Array): void {
  for (let i = 0; i < y.length; i++) y[i] = f16ToF32(bytes[2 * i]! | (bytes[2 * i + 1]! << 8));
}

function quantizeBF16(x: Float32Array, out: Uint8Array): void {
  const h = new Uint16Array(out.buffer, out.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) h[i] = f32ToBf16(x[i]!);
}

function dequantizeBF16(bytes: Uint8Array, y: Float32Array): void {
  for (let i = 0; i < y.length; i++) y[i] = bf16ToF32(bytes[2 * i]! | (bytes[2 * i + 1]! << 8));
}

function quantizeF32(x: Float32Array, out: Uint8Array): void {
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
}

function dequantizeF32(bytes: Uint8Array, y: Float32Array): void {
  new Uint8Array(y.buffer, y.byteOffset, y.byteLength).set(bytes.subarray(0, y.byteLength));
}

type Quantizer = (x: Float32Array, out: Uint8Array) => void;
type Dequantizer = (bytes: Uint8Array, y: Float32Array) => void;

const QUANTIZERS = new Map<GGMLTypeId, Quantizer>([
  [GGMLType.F32, quantizeF32],
  [GGMLType.F16, quantizeF16],
  [GGMLType.BF16, quantizeBF16],
  [GGMLType.Q8_0, quantizeQ8_0],
  [GGMLType.Q4_0, quantizeQ4_0],
  [GGMLType.Q4_1, quantizeQ4_1],
  [GGMLType.Q5_0, quantizeQ5_0],
  [GGMLType.Q5_1, quantizeQ5_1],
  [GGMLType.Q4_K, quantizeQ4_K],
  [GGMLType.Q5_K, quantizeQ5_K],
  [GGMLType.Q6_K, quantizeQ6_K],
]);

const DEQUANTIZERS = new Map<GGMLTypeId, Dequantizer>([
  [GGMLType.F32, dequantizeF32],
  [GGMLType.F16, dequantizeF16],
  [GGMLType.BF16, dequantizeBF16],
  [GGMLType.Q8_0, dequantizeQ8_0],
  [GGMLType.Q4_0, dequantizeQ4_0],
  [GGMLType.Q4_1, dequantizeQ4_1],
  [GGMLType.Q5_0, dequantizeQ5_0],
  [GGMLType.Q5_1, dequantizeQ5_1],
  [GGMLType.Q4_K, dequantizeQ4_K],
  [GGMLType.Q5_K, dequantizeQ5_K],
  [GGMLType.Q6_K, dequantizeQ6_K],
]);

/**
 * f32 values (rows of `cols`, row-major) -> the bytes of a GGUF tensor of `type`, as llama.cpp's
 * reference quantizer writes them. `cols` defaults to all values in one row; it must be a
 * multiple of the type's block size. Block types refuse non-finite input (llama.cpp's result
 * would be meaningless); F16/BF16 round inf and NaN as ggml does.
 */
export function quantize(type: GGMLTypeId, values: Float32Array, cols = values.length): Uint8Array {
  const quantizer = QUANTIZERS.get(type);
  if (!quantizer) throw new GGMLTypeError('unsupported', unsupportedTypeMessage(type, 'quantize', QUANTIZABLE_TYPES));
  const { name, blockSize, blockBytes } = typeInfo(type);
  if (values.length === 0) return new Uint8Array(0);
  if (!Number.isInteger(cols) || cols <= 0 || values.length % cols !== 0) {
    throw new GGMLTypeError('bad-argument', `quantize ${name}: ${values.length} values are not whole rows of ${cols}`);
  }
  if (cols % blockSize !== 0) {
    throw new GGMLTypeError('bad-argument', `quantize ${name}: a row of ${cols} values is not a multiple of the ${name} block size ${blockSize}`);
  }
  if (blockSize > 1) {
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) throw new GGMLTypeError('bad-argument', `quantize ${name}: value ${i} is ${values[i]}`);
    }
  }
  // Rows of whole blocks are independent, so the whole tensor is one run of blocks.
  const out = new Uint8Array((values.length / blockSize) * blockBytes);
  quantizer(values, out);
  return out;
}

/**
 * The first `elements` values of GGUF tensor bytes of `type`, as f32, exactly as ggml's
 * dequantize_row_* computes them. `elements` must be a whole number of blocks.
 */
export function dequantize(type: GGMLTypeId, bytes: Uint8Array, elements: number): Float32Array {
  const dequantizer = DEQUANTIZERS.get(type);
  if (!dequantizer) throw new GGMLTypeError('unsupported', unsupportedTypeMessage(type, 'dequantize', KERNEL_TYPES));
  const { name, blockSize, blockBytes } = typeInfo(type);
  if (!Number.isInteger(elements) || elements < 0 || elements % blockSize !== 0) {
    throw new GGMLTypeError('bad-argument', `dequantize ${name}: ${elements} elements is not a whole number of ${blockSize}-element blocks`);
  }
  const need = (elements / blockSize) * blockBytes;
  if (bytes.byteLength < need) throw new GGMLTypeError('bad-argument', `dequantize ${name}: ${elements} elements need ${need} bytes, ${bytes.byteLength} given`);
  const out = new Float32Array(elements);
  dequantizer(bytes, out);
  return out;
}

/** Whether quantize() can write `type`. */
export function canQuantize(type: GGMLTypeId): boolean {
  return QUANTIZERS.has(type);
}

/** Whether dequantize() can read `type`. */
export function canDequantize(type: GGMLTypeId): boolean {
  return DEQUANTIZERS.has(type);
}

