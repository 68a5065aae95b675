// Rounds activations the way llama.cpp does before a quantized dot product, so a model can be
// compared with llama.cpp value for value (see src/kernels/quantize-activations.ts). One thread
// per block: block amax, scale, then each value replaced by q * scale.
import { halfRneWgsl } from './half';

export type ActivationRounding = 'q8_0' | 'q8_k' | 'f16';
export const ROUNDING_WORKGROUP = 64;

export function quantizeActivationsWgsl(rule: ActivationRounding): string {
  const block = rule === 'q8_k' ? 256 : rule === 'q8_0' ? 32 : 2;
  const body = {
    // ggml quantize_row_q8_0: d = amax / 127 kept as f16, q = round(x / d).
    q8_0: `var amax = 0.0;
  for (var i = 0u; i < ${block}u; i++) { amax = max(amax, abs(x[base + i])); }
  let d = amax / 127.0;
  let id = select(0.0, 1.0 / d, d > 0.0);
  let d_stored = unpack2x16float(pack_half_rne(vec2<f32>(d, 0.0))).x;
  for (var i = 0u; i < ${block}u; i++) { out[base + i] = round(x[base + i] * id) * d_stored; }`,
    // ggml quantize_row_q8_K: scale from the value of largest magnitude (with its sign), d in f32.
    q8_k: `var amax = 0.0;
  var vmax = 0.0;
  for (var i = 0u; i < ${block}u; i++) {
    let v = x[base + i];
    if (abs(v) > amax) { amax = abs(v); vmax = v; }
  }
  if (amax == 0.0) {
    for (var i = 0u; i < ${block}u; i++) { out[base + i] = 0.0; }
    return;
  }
  let iscale = -127.0 / vmax;
  let d = 1.0 / iscale;
  for (var i = 0u; i < ${block}u; i++) { out[base + i] = min(127.0, round(iscale * x[base + i])) * d; }`,
    // F16 weights: ggml converts the activations to f16.
    f16: `for (var i = 0u; i < ${block}u; i += 2u) {
    let h = unpack2x16float(pack_half_rne(vec2<f32>(x[base + i], x[base + i + 1u])));
    out[base + i] = h.x;
    out[base + i + 1u] = h.y;
  }`,
  }[rule];
  return /* wgsl */ `
struct Params { blocks: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
${halfRneWgsl}

@compute @workgroup_size(${ROUNDING_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let b = gid.x + gid.y * groups.x * ${ROUNDING_WORKGROUP}u;
  if (b >= params.blocks) { return; }
  let base = b * ${block}u;
  ${body}
}
`;
}

export function roundingBlock(rule: ActivationRounding): number {
  return rule === 'q8_k' ? 256 : rule === 'q8_0' ? 32 : 2;
}
