// WGSL readers for GGUF weight formats, one snippet per format. Weights stay in their GGUF block
// layout, byte for byte, bound as `weights: array<u32>`; each snippet defines
//
//   fn dequant8(row: u32, k: u32, cols: u32) -> F32x8
//
// the dequantized weights k..k+7 of the row starting at byte `row` (k a multiple of 8). Block
// formats need cols to be a whole number of blocks and ignore it; float formats return 0 past
// `cols`, so rows of any length work. The arithmetic is ggml's dequantize_row_* (one f32
// product per scale, in the same order), so the GPU sees the same weights as the CPU reference.
//
// Blocks of 18, 22, 34 or 210 bytes (and f16 rows of odd length) are only 2-byte aligned, so
// multi-byte fields are read as u16 halves of words and stitched across word boundaries.
import { GGMLType, type GGMLTypeId, requireKernelType } from '../formats/ggml-types';

/** Byte-addressed little-endian reads from `weights`, and the 8-value type the snippets return. */
export const weightReadersWgsl = /* wgsl */ `
struct F32x8 { a: vec4<f32>, b: vec4<f32> }

fn weight_u8(byte: u32) -> u32 {
  return (weights[byte >> 2u] >> ((byte & 3u) * 8u)) & 0xffu;
}

// byte is even.
fn weight_u16(byte: u32) -> u32 {
  return (weights[byte >> 2u] >> ((byte & 2u) * 8u)) & 0xffffu;
}

// f16 bits -> f32, exact for subnormal halves too: block scales of tiny weights are subnormal
// (a Q8_0 block whose largest |w| is under 0.0078), and some drivers flush those in
// unpack2x16float. A subnormal half is magnitude · 2^-24, which f32 holds exactly.
fn f16_bits_to_f32(h: u32) -> f32 {
  let magnitude = h & 0x7fffu;
  let subnormal = bitcast<f32>(((h & 0x8000u) << 16u) | bitcast<u32>(f32(magnitude) * 5.9604644775390625e-8));
  return select(unpack2x16float(h).x, subnormal, magnitude < 0x400u);
}

// An f16 scale at an even byte offset.
fn weight_f16(byte: u32) -> f32 {
  return f16_bits_to_f32(weight_u16(byte));
}

// Two f16 scales (d and m, or d and dmin) in the word at a 4-aligned byte offset.
fn weight_f16x2(byte: u32) -> vec2<f32> {
  let w = weights[byte >> 2u];
  return vec2<f32>(f16_bits_to_f32(w & 0xffffu), f16_bits_to_f32(w >> 16u));
}

// 8 bytes from an even offset, as two words. Reads only words holding wanted bytes, so never
// past the 4-byte-padded end of the buffer.
fn weight_8_bytes(byte: u32) -> vec2<u32> {
  let w = byte >> 2u;
  if ((byte & 2u) == 0u) {
    return vec2<u32>(weights[w], weights[w + 1u]);
  }
  let w0 = weights[w];
  let w1 = weights[w + 1u];
  let w2 = weights[w + 2u];
  return vec2<u32>((w0 >> 16u) | (w1 << 16u), (w1 >> 16u) | (w2 << 16u));
}

// 16 bytes from an even offset, as four words.
fn weight_16_bytes(byte: u32) -> vec4<u32> {
  let w = byte >> 2u;
  if ((byte & 2u) == 0u) {
    return vec4<u32>(weights[w], weights[w + 1u], weights[w + 2u], weights[w + 3u]);
  }
  let w0 = weights[w];
  let w1 = weights[w + 1u];
  let w2 = weights[w + 2u];
  let w3 = weights[w + 3u];
  let w4 = weights[w + 4u];
  return vec4<u32>((w0 >> 16u) | (w1 << 16u), (w1 >> 16u) | (w2 << 16u), (w2 >> 16u) | (w3 << 16u), (w3 >> 16u) | (w4 << 16u));
}

// The four bytes of a word as unsigned values.
fn bytes4(w: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(w) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu));
}

// The four bytes of a word as signed values.
fn signed_bytes4(w: u32) -> vec4<f32> {
  let v = bitcast<i32>(w);
  return vec4<f32>(vec4<i32>(extractBits(v, 0u, 8u), extractBits(v, 8u, 8u), extractBits(v, 16u, 8u), extractBits(v, 24u, 8u)));
}
`;

const f32Wgsl = /* wgsl */ `
fn dequant8(row: u32, k: u32, cols: u32) -> F32x8 {
  let w = (row >> 2u) + k;
  if (k + 8u <= cols) {
    return F32x8(bitcast<vec4<f32>>(vec4<u32>(weights[w], weights[w + 1u], weights[w + 2u], weights[w + 3u])),
                 bitcast<vec4<f32>>(vec4<u32>(weights[w + 4u], weights[w + 5u], weights[w + 6u], weights[w + 7u])));
  }
  var v = array<f32, 8>();
  for (var i = 0u; i < 8u; i++) {
    if (k + i < cols) { v[i] = bitcast<f32>(weights[w + i]); }
  }
  return F32x8(vec4<f32>(v[0], v[1], v[2], v[3]), vec4<f32>(v[4], v[5], v[6], v[7]));
}
`;

// F16 and BF16 differ only in how 16 bits become an f32.
const halfFloatWgsl = (pair: string, single: string) => /* wgsl */ `
fn half_pair(w: u32) -> vec2<f32> { return ${pair}; }
fn half_single(h: u32) -> f32 { return ${single}; }

fn dequant8(row: u32, k: u32, cols: u32) -> F32x8 {
  let byte = row + 2u * k;
  if (k + 8u <= cols) {
    let q = weight_16_bytes(byte);
    return F32x8(vec4<f32>(half_pair(q.x), half_pair(q.y)), vec4<f32>(half_pair(q.z), half_pair(q.w)));
  }
  var v = array<f32, 8>();
  for (var i = 0u; i < 8u; i++) {
    if (k + i < cols) { v[i] = half_single(weight_u16(byte + 2u * i)); }
  }
  return F32x8(vec4<f32>(v[0], v[1], v[2], v[3]), vec4<f32>(v[4], v[5], v[6], v[7]));
}
`;

// Through f16_bits_to_f32 rather than plain unpack2x16float, so subnormal weights are not
// flushed on drivers that flush them: the gather must reproduce the table exactly.
const f16Wgsl = halfFloatWgsl('vec2<f32>(f16_bits_to_f32(w & 0xffffu), f16_bits_to_f32(w >> 16u))', 'f16_bits_to_f32(h)');
const bf16Wgsl = halfFloatWgsl('bitcast<vec2<f32>>(vec2<u32>(w << 16u, w & 0xffff0000u))', 'bitcast<f32>(h << 16u)');

// Q8_0: 34-byte blocks of 32: f16 d, then 32 int8. w = q * d.
const q8_0Wgsl = /* wgsl */ `
fn dequant8(row: u32, k: u32, cols: u32) -> F32x8 {
  let block = row + (k / 32u) * 34u;
  let d = weight_f16(block);
  let q = weight_8_bytes(block + 2u + k % 32u);
  return F32x8(signed_bytes4(q.x) * d, signed_bytes4(q.y) * d);
}
`;

// Q4_0: 18-byte blocks of 32: f16 d, then 16 bytes; byte j holds value j in its low nibble and
// value j+16 in its high nibble. w = (q - 8) * d.
const q4_0Wgsl = /* wgsl */ `
fn dequant8(row: u32, k: u32, cols: u32) -> F32x8 {
  let j = k % 32u;
  let block = row + (k / 32u) * 18u;
  let d = weight_f16(block);
  let q = (weight_8_bytes(block + 2u + j % 16u) >> vec2<u32>((j / 16u) * 4u)) & vec2<u32>(0x0f0f0f0fu);
  return F32x8((bytes4(q.x) - 8.0) * d, (bytes4(q.y) - 8.0) * d);
}
`;

// Q4_1: 20-byte blocks of 32: f16 d, f16 m, then nibbles as in Q4_0. w = q * d + m.
const q4_1Wgsl = /* wgsl */ `
fn dequant8(row: u32, k: u32, cols: u32) -> F32x8 {
  let j = k % 32u;
  let block = row + (k / 32u) * 20u;
  let dm = weight_f16x2(block);
  let q = (weight_8_bytes(block + 4u + j % 16u) >> vec2<u32>((j / 16u) * 4u)) & vec2<u32>(0x0f0f0f0fu);
  return F32x8(bytes4(q.x) * dm.x + dm.y, bytes4(q.y) * dm.x + dm.y);
}
`;

// The 5th bits of values j..j+7 (bit j+i of a Q5 block's qh word) moved to bit 4 of byte i.
const fifthBitsWgsl = /* wgsl */ `
fn fifth_bits(qh: u32, j: u32) -> vec2<u32> {
  let bits = qh >> j;
  let spread = vec4<u32>(bits) >> vec4<u32>(0u, 1u, 2u, 3u);
  let lo = spread & vec4<u32>(1u);
  let hi = (spread >> vec4<u32>(4u)) & vec4<u32>(1u);
  return vec2<u32>(((lo.x | (lo.y << 8u) | (lo.z << 16u) | (lo.w << 24u)) << 4u),
                   ((hi.x | (hi.y << 8u) | (hi.z << 16u) | (hi.w << 24u)) << 4u));
}
`;

// Q5_0: 22-byte blocks of 32: f16 d, u32 qh (5th bit of value j is bit j), nibbles as in Q4_0.
// w = (q - 16) * d.
const q5_0Wgsl = fifthBitsWgsl + /* wgsl */ `
fn dequant8(row: u32, k: u32, cols: u32) -> F32x8 {
  let j = k % 32u;
  let block = row + (k / 32u) * 22u;
  let d = weight_f16(block);
  let qh = weight_u16(block + 2u) | (weight_u16(block + 4u) << 16u);
  let q = ((weight_8_bytes(block + 6u + j % 16u) >> vec2<u32>((j / 16u) * 4u)) & vec2<u32>(0x0f0f0f0fu)) | fifth_bits(qh, j);
  return F32x8((bytes4(q.x) - 16.0) * d, (bytes4(q.y) - 16.0) * d);
}
`;

// Q5_1: 24-byte blocks of 32: f16 d, f16 m, u32 qh, nibbles. w = q * d + m.
const q5_1Wgsl = fifthBitsWgsl + /* wgsl */ `
fn dequant8(row: u32, k: u32, cols: u32) -> F32x8 {
  let j = k % 32u;
  let block = row + (k / 32u) * 24u;
  let dm = weight_f16x2(block);
  let qh = weights[(block >> 2u) + 1u];
  let q = ((weight_8_bytes(block + 8u + j % 16u) >> vec2<u32>((j / 16u) * 4u)) & vec2<u32>(0x0f0f0f0fu)) | fifth_bits(qh, j);
  return F32x8(bytes4(q.x) * dm.x + dm.y, bytes4(q.y) * dm.x + dm.y);
}
`;

// get_scale_min_k4: sub-block j's 6-bit scale and min from the 12 scale bytes of a Q4_K/Q5_K
// block: j < 4 in the low 6 bits of bytes j and j+4; j >= 4 in nibbles of byte j+4 with their
// top 2 bits in the top of bytes j-4 and j.
const scaleMinK4Wgsl = /* wgsl */ `
fn scale_min_k4(scales: u32, j: u32) -> vec2<f32> {
  if (j < 4u) {
    return vec2<f32>(f32(weight_u8(scales + j) & 63u), f32(weight_u8(scales + j + 4u) & 63u));
  }
  let packed = weight_u8(scales + j + 4u);
  return vec2<f32>(f32((packed & 0xfu) | ((weight_u8(scales + j - 4u) >> 6u) << 4u)),
                   f32((packed >> 4u) | ((weight_u8(scales + j) >> 6u) << 4u)));
}
`;

// Q4_K: 144-byte super-blocks of 256: f16 d, f16 dmin, 12 scale bytes, 128 bytes of nibbles.
// Each 64 values share 32 bytes (first 32 low nibbles, next 32 high); value e is in sub-block
// e/32 with scale d*sc and min dmin*m. w = (d * sc) * q - (dmin * m).
const q4_KWgsl = scaleMinK4Wgsl + /* wgsl */ `
fn dequant8(row: u32, k: u32, cols: u32) -> F32x8 {
  let block = row + (k / 256u) * 144u;
  let e = k % 256u;
  let sub = e / 32u;
  let dm = weight_f16x2(block);
  let sm = scale_min_k4(block + 4u, sub);
  let scale = dm.x * sm.x;
  let offset = dm.y * sm.y;
  let q = (weight_8_bytes(block + 16u + (e / 64u) * 32u + e % 32u) >> vec2<u32>((sub & 1u) * 4u)) & vec2<u32>(0x0f0f0f0fu);
  return F32x8(scale * bytes4(q.x) - offset, scale * bytes4(q.y) - offset);
}
`;

// Q5_K: 176-byte super-blocks: as Q4_K with 32 qh bytes after the scales (5th bit of value e is
// bit e/32 of qh[e % 32]) and the nibbles after them.
const q5_KWgsl = scaleMinK4Wgsl + /* wgsl */ `
fn dequant8(row: u32, k: u32, cols: u32) -> F32x8 {
  let block = row + (k / 256u) * 176u;
  let e = k % 256u;
  let sub = e / 32u;
  let dm = weight_f16x2(block);
  let sm = scale_min_k4(block + 4u, sub);
  let scale = dm.x * sm.x;
  let offset = dm.y * sm.y;
  let low = (weight_8_bytes(block + 48u + (e / 64u) * 32u + e % 32u) >> vec2<u32>((sub & 1u) * 4u)) & vec2<u32>(0x0f0f0f0fu);
  let high = ((weight_8_bytes(block + 16u + e % 32u) >> vec2<u32>(sub)) & vec2<u32>(0x01010101u)) << vec2<u32>(4u);
  let q = low | high;
  return F32x8(scale * bytes4(q.x) - offset, scale * bytes4(q.y) - offset);
}
`;

// Q6_K: 210-byte super-blocks of 256: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs,
// 16 int8 scales, f16 d. Per 128 values (half n), value 32t + l (t = 0..3) has its low nibble
// in ql[64n + l + 32(t&1)] (high nibble when t >= 2), its top bits at 2t in qh[32n + l], and
// scale sc[8n + l/16 + 2t]. w = (d * sc) * (q - 32).
const q6_KWgsl = /* wgsl */ `
fn dequant8(row: u32, k: u32, cols: u32) -> F32x8 {
  let block = row + (k / 256u) * 210u;
  let e = k % 256u;
  let n = e / 128u;
  let t = (e % 128u) / 32u;
  let l = e % 32u;
  let low = (weight_8_bytes(block + 64u * n + 32u * (t & 1u) + l) >> vec2<u32>((t / 2u) * 4u)) & vec2<u32>(0x0f0f0f0fu);
  let high = ((weight_8_bytes(block + 128u + 32u * n + l) >> vec2<u32>(2u * t)) & vec2<u32>(0x03030303u)) << vec2<u32>(4u);
  let q = low | high;
  let sc = f32(extractBits(bitcast<i32>(weight_u8(block + 192u + 8u * n + l / 16u + 2u * t)), 0u, 8u));
  let scale = weight_f16(block + 208u) * sc;
  return F32x8(scale * (bytes4(q.x) - 32.0), scale * (bytes4(q.y) - 32.0));
}
`;

const FORMAT_WGSL = new Map<GGMLTypeId, string>([
  [GGMLType.F32, f32Wgsl],
  [GGMLType.F16, f16Wgsl],
  [GGMLType.BF16, bf16Wgsl],
  [GGMLType.Q8_0, q8_0Wgsl],
  [GGMLType.Q4_0, q4_0Wgsl],
  [GGMLType.Q4_1, q4_1Wgsl],
  [GGMLType.Q5_0, q5_0Wgsl],
  [GGMLType.Q5_1, q5_1Wgsl],
  [GGMLType.Q4_K, q4_KWgsl],
  [GGMLType.Q5_K, q5_KWgsl],
  [GGMLType.Q6_K, q6_KWgsl],
]);

/**
 * The byte readers plus `dequant8` for `type`, to paste into a shader that declares
 * `weights: array<u32>`. Throws GGMLTypeError('unsupported') naming the type otherwise.
 */
export function dequantWgsl(type: GGMLTypeId): string {
  requireKernelType(type, 'GPU weight reader');
  return weightReadersWgsl + FORMAT_WGSL.get(type)!;
}
