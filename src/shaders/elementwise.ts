// Element-wise kernels over f32 vectors. One thread per element, 256 per workgroup; the x/y
// grid split lets vectors exceed 65535 workgroups.
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';

export const ELEMENTWISE_WORKGROUP = 256;

const elementIndex = /* wgsl */ `let i = gid.x + gid.y * groups.x * ${ELEMENTWISE_WORKGROUP}u;`;
const entry = /* wgsl */ `@compute @workgroup_size(${ELEMENTWISE_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>)`;

export const addWgsl = () => /* wgsl */ `
struct Params { n: u32, row_stride: u32 }
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 256u;
  if (i >= params.n) { return; }
  out[i] = a[i] + b[i];
}
`;

/** x[i] += y[i] (the residual add without a third buffer). */
export const addInPlaceWgsl = () => /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

${entry} {
  ${elementIndex}
  if (i >= params.n) { return; }
  x[i] = x[i] + y[i];
}
`;

/** out[i] = a[i] * b[i]. */
export const mulWgsl = () => /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

${entry} {
  ${elementIndex}
  if (i >= params.n) { return; }
  out[i] = a[i] * b[i];
}
`;

/** out[i] = x[i] * factor, or x in place. */
export const scaleWgsl = (inPlace: boolean) => wgsl`
struct Params { n: u32, factor: f32 }
#if ${inPlace}
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;
#else
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
#endif

${entry} {
  ${elementIndex}
  if (i >= params.n) { return; }
#if ${inPlace}
  x[i] = x[i] * params.factor;
#else
  out[i] = x[i] * params.factor;
#endif
}
`;

/**
 * Broadcast a vector of length n over the rows of x [rows][n], in place: `add` for biases (qwen2's
 * QKV bias, ViT linear layers, position embeddings with rows = 1 per image), `mul` for per-channel
 * scales (ViT layer scale).
 */
export const broadcastRowsWgsl = (op: 'add' | 'mul') => /* wgsl */ `
struct Params { rows: u32, n: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> vector: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

${entry} {
  ${elementIndex}
  if (i >= params.rows * params.n) { return; }
  x[i] = x[i] ${op === 'add' ? '+' : '*'} vector[i % params.n];
}
`;

/** dst[dstOffset + i] = src[srcOffset + i]: element offsets, free of binding-offset alignment rules. */
export const copyWgsl = () => /* wgsl */ `
struct Params { n: u32, src_offset: u32, dst_offset: u32 }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(${256})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * ${256}u;
  if (i >= params.n) { return; }
  dst[params.dst_offset + i] = src[params.src_offset + i];
}
`;
