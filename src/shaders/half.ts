// f32 -> f16 conversion with round-to-nearest-even, written out in integer ops. WGSL lets
// pack2x16float round to either neighbour, and GPUs differ (NVIDIA's Vulkan driver truncates), so
// kernels whose f16 values must equal ggml's (KV cache, activation rounding, stored scales) use
// this instead. Same rules as src/formats/quantize.ts f32ToF16: overflow to inf, NaN -> 0x7e00.
export const halfRneWgsl = /* wgsl */ `
fn half_bits_rne(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  let sign = (bits >> 16u) & 0x8000u;
  let a = bits & 0x7fffffffu;
  if (a > 0x7f800000u) { return sign | 0x7e00u; }
  if (a >= 0x477ff000u) { return sign | 0x7c00u; } // >= 65520 rounds to inf
  if (a >= 0x38800000u) {
    // Normal: rebias the exponent (127 - 15 = 112), round the 13 dropped mantissa bits; a carry
    // moves into the exponent, as rounding up should.
    let m = a - 0x38000000u;
    return sign | ((m + 0xfffu + ((m >> 13u) & 1u)) >> 13u);
  }
  // Subnormal half (or zero): the value is mant * 2^(e - 150); in units of 2^-24 that is
  // mant >> (126 - e), rounded to even. Below 2^-25 everything rounds to zero.
  let e = a >> 23u;
  if (e < 102u) { return sign; }
  let mant = (a & 0x7fffffu) | 0x800000u;
  let shift = 126u - e;
  var q = mant >> shift;
  let rest = mant & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  if (rest > half || (rest == half && (q & 1u) == 1u)) { q += 1u; }
  return sign | q;
}

fn pack_half_rne(v: vec2<f32>) -> u32 {
  return half_bits_rne(v.x) | (half_bits_rne(v.y) << 16u);
}
`;
