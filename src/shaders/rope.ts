// Rotary position embedding on [tokens][heads][headDim] f32 tensors (any strides), one thread per
// rotated pair. Positions come per token from an i32 buffer (so tree drafts, compressed caches
// and Δ re-rotation of cached keys, which may be negative, all go through the same kernel) or as
// one shift for every token.
//
// Pair layouts (ropeDim <= headDim dims are rotated, the rest pass through):
//   normal (llama / GGUF "norm"): pairs (2i, 2i+1)
//   neox   (qwen2/3, GPT-NeoX):   pairs (i, i + ropeDim/2)
// Pair i turns by pos * freq[i]; the frequency table (see src/kernels/rope.ts) is built in f64 on
// the CPU and already carries every scaling scheme.
//
// Angles (ALGORITHMS.md D3), two variants:
//   exact (default): the table holds freq[i] / 2π as a 64-bit fixed-point fraction of a turn.
//     pos * that, wrapped mod 2^64, is the fractional turn of the angle, exact for any i32
//     position; the top 32 bits pick the quarter turn and a remainder within ±π/4.
//   f32: angle = f32(pos) * freq_f32, as HF/PyTorch computes it; its rounding error grows with
//     the position (~pos * freq * 2^-23). Kept to measure what the exact angles buy.
// Both take sin/cos from short polynomials on ±π/4 (~1e-7), not the builtins: WGSL promises only
// 2^-11 absolute error for those, and SwiftShader's were 2e-4 off even at small angles.
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';

export interface RopeVariant {
  neox: boolean;
  exactAngles: boolean;
  inPlace: boolean;
  /** Positions from a per-token buffer (else params.shift for every token). */
  positionBuffer: boolean;
}

export const ROPE_WORKGROUP = 256;

export const ropeWgsl = ({ neox, exactAngles, inPlace, positionBuffer }: RopeVariant) => {
  const bindings = [
    inPlace ? 'var<storage, read_write> x: array<f32>;' : 'var<storage, read> x: array<f32>;',
    ...(inPlace ? [] : ['var<storage, read_write> out: array<f32>;']),
    // Per frequency: (f32 bits of freq, turns hi word, turns lo word, unused).
    'var<storage, read> table: array<vec4<u32>>;',
    ...(positionBuffer ? ['var<storage, read> positions: array<i32>;'] : []),
    'var<uniform> params: Params;',
  ];
  return wgsl`
struct Params {
  tokens: u32, heads: u32, pairs_per_head: u32, rope_half: u32,
  in_token_stride: u32, in_head_stride: u32, in_offset: u32, shift: i32,
  out_token_stride: u32, out_head_stride: u32, out_offset: u32, _pad: u32,
}
${bindings.map((line, i) => `@group(0) @binding(${i}) ${line}`).join('\n')}

// (cos, sin) of a fraction of a turn given as t / 2^32.
fn cos_sin_of_turn(t: u32) -> vec2<f32> {
  let shifted = t + 0x20000000u;                         // + 1/8 turn: round to the nearest quarter
  let quarter = shifted >> 30u;
  let rest = bitcast<i32>(shifted & 0x3fffffffu) - 0x20000000; // within ±1/8 turn
  let a = f32(rest) * 1.4629180792671596e-9;             // 2π / 2^32; |a| <= π/4
  let a2 = a * a;
  // Taylor to a^9 / a^8: truncation < 3e-8 on |a| <= π/4, below f32 rounding.
  let s = a * (1.0 + a2 * (-1.6666666666666666e-1 + a2 * (8.333333333333333e-3 + a2 * (-1.984126984126984e-4 + a2 * 2.7557319223985893e-6))));
  let c = 1.0 + a2 * (-0.5 + a2 * (4.1666666666666664e-2 + a2 * (-1.388888888888889e-3 + a2 * 2.48015873015873e-5)));
  switch quarter {
    case 0u: { return vec2<f32>(c, s); }
    case 1u: { return vec2<f32>(-s, c); }
    case 2u: { return vec2<f32>(-c, -s); }
    default: { return vec2<f32>(s, -c); }
  }
}

#if ${exactAngles}
// a * b as a 64-bit (hi, lo) pair, from 16-bit halves (WGSL has no 64-bit integers).
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu; let a1 = a >> 16u;
  let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return vec2<u32>(p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u), (mid << 16u) | (p00 & 0xffffu));
}

// Top 32 bits of the fractional turn pos * F / 2^64 (F = the table's 64-bit turns per position),
// with pos sign-extended to 64 bits so negative shifts wrap correctly. Bits 32..63 of the product
// are hi(pos * F.lo) + lo(pos * F.hi) + lo(sign * F.lo); nothing below carries into them.
fn fraction_of_turn(pos: i32, turns_hi: u32, turns_lo: u32) -> u32 {
  let p = bitcast<u32>(pos);
  let sign_word = select(0u, 0xffffffffu, pos < 0);
  return mul_wide(p, turns_lo).x + p * turns_hi + sign_word * turns_lo;
}

fn cos_sin(pos: i32, f: vec4<u32>) -> vec2<f32> {
  return cos_sin_of_turn(fraction_of_turn(pos, f.y, f.z));
}
#else
fn cos_sin(pos: i32, f: vec4<u32>) -> vec2<f32> {
  let angle = f32(pos) * bitcast<f32>(f.x);
  // To a fraction of a turn: one more rounding (2^-24 of the angle); the fractional part and its
  // scaling by 2^32 are exact.
  let turns = angle * 0.15915494309189535;
  return cos_sin_of_turn(u32((turns - floor(turns)) * 4294967296.0));
}
#endif

@compute @workgroup_size(${ROPE_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let g = gid.x + gid.y * groups.x * ${ROPE_WORKGROUP}u;
  let pph = params.pairs_per_head;
  if (g >= params.tokens * params.heads * pph) { return; }
  let j = g % pph;
  let token = g / pph / params.heads;
  let head = (g / pph) % params.heads;
  let src = params.in_offset + token * params.in_token_stride + head * params.in_head_stride;
#if ${inPlace}
  let dst = src;
#else
  let dst = params.out_offset + token * params.out_token_stride + head * params.out_head_stride;
#endif

  if (j < params.rope_half) {
#if ${neox}
    let i0 = j;
    let i1 = j + params.rope_half;
#else
    let i0 = 2u * j;
    let i1 = i0 + 1u;
#endif
#if ${positionBuffer}
    let pos = positions[token];
#else
    let pos = params.shift;
#endif
    let cs = cos_sin(pos, table[j]);
    let a = x[src + i0];
    let b = x[src + i1];
#if ${inPlace}
    x[dst + i0] = a * cs.x - b * cs.y;
    x[dst + i1] = a * cs.y + b * cs.x;
#else
    out[dst + i0] = a * cs.x - b * cs.y;
    out[dst + i1] = a * cs.y + b * cs.x;
  } else {
    // Out of place, the dims past ropeDim are copied through, two per thread.
    let i = 2u * j;
    out[dst + i] = x[src + i];
    out[dst + i + 1u] = x[src + i + 1u];
#endif
  }
}
`;
};
