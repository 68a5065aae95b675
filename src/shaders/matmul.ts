// y[M][N] = x[M][K] · Wᵀ (+ bias) with W in a GGUF format, dequantized on the fly by the
// format's `dequant8` (src/shaders/quant.ts). Three kernels share the bindings and helpers:
//
// - gemv: decode and short batches. A workgroup of 64 threads owns a few weight rows; the
//   threads split K in 8-value chunks (consecutive threads read consecutive bytes of a row), so
//   each weight is read once per XR rows of x. Partial sums meet in workgroup memory and are
//   added with subgroupAdd where the device has subgroups, else by a tree.
// - gemm: prefill. Workgroup-memory tiles of 32 x-rows and 64 dequantized weight rows, 32 deep
//   in K; each of 128 threads keeps a 4x4 register block of outputs.
// - rowwise: one thread per output row, no barriers and no workgroup memory. Uncoalesced on a
//   GPU, but the fastest shape on CPU-backed adapters (SwiftShader), whose cost follows
//   barriers and workgroups rather than bytes.
//
// Bindings: 0 x (f32), 1 weights (GGUF bytes as u32), 2 y (f32), 3 bias (if any), then params.
// A weight split into parts is one dispatch per part; `n_offset` places its rows in y.
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import type { GGMLTypeId } from '../formats/ggml-types';
import { dequantWgsl } from './quant';

/** gemm tile: x rows, weight rows and K depth per workgroup step. */
export const GEMM_TILE = { m: 32, n: 64, k: 32 } as const;
/** Threads per workgroup in gemv and rowwise. */
export const MATVEC_WORKGROUP = 64;

function header(type: GGMLTypeId, bias: boolean): string {
  return wgsl`
struct Params {
  M: u32,         // rows of x and y
  N: u32,         // weight rows in this part
  K: u32,         // row length of x and of the weights
  row_bytes: u32, // bytes per weight row
  n_offset: u32,  // column of y where this part's rows start
  y_stride: u32,  // row length of y (all parts)
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
#if ${bias}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
#else
@group(0) @binding(3) var<uniform> params: Params;
#endif

${dequantWgsl(type)}

// x[m][k..k+7], zero past the end of the row.
fn load_x8(m: u32, k: u32) -> F32x8 {
  let base = m * params.K + k;
  if (k + 8u <= params.K) {
    return F32x8(vec4<f32>(x[base], x[base + 1u], x[base + 2u], x[base + 3u]),
                 vec4<f32>(x[base + 4u], x[base + 5u], x[base + 6u], x[base + 7u]));
  }
  var v = array<f32, 8>();
  for (var i = 0u; i < 8u; i++) {
    if (k + i < params.K) { v[i] = x[base + i]; }
  }
  return F32x8(vec4<f32>(v[0], v[1], v[2], v[3]), vec4<f32>(v[4], v[5], v[6], v[7]));
}

fn store_y(m: u32, n: u32, value: f32) {
#if ${bias}
  y[m * params.y_stride + params.n_offset + n] = value + bias[params.n_offset + n];
#else
  y[m * params.y_stride + params.n_offset + n] = value;
#endif
}
`;
}

export interface GemvOptions {
  /** x rows per workgroup: each dequantized weight is used for this many rows. */
  xRows: number;
  /** Weight rows per workgroup: each loaded x chunk is used for this many rows. */
  rows: number;
  subgroups: boolean;
  bias: boolean;
}

export function gemvWgsl(type: GGMLTypeId, o: GemvOptions): string {
  return wgsl`
#if ${o.subgroups}
enable subgroups;
#endif
${header(type, o.bias)}
const WG_SIZE = ${MATVEC_WORKGROUP}u;
const ROWS = ${o.rows}u;
const XR = ${o.xRows}u;
const OUTPUTS = ROWS * XR;

// partial[j * WG_SIZE + t]: thread t's share of output j (j = row * XR + x row).
var<workgroup> partial: array<f32, ${o.rows * o.xRows * MATVEC_WORKGROUP}>;

@compute @workgroup_size(${MATVEC_WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) tid: u32,
#if ${o.subgroups}
        @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) lanes: u32,
#endif
) {
  let n0 = (group.x + group.y * groups.x) * ROWS;
  let m0 = group.z * XR;
  if (n0 >= params.N) { return; } // the whole workgroup: grid padding

  var acc = array<f32, OUTPUTS>();
  for (var k = tid * 8u; k < params.K; k += WG_SIZE * 8u) {
    // Rows past the end repeat the last row; their sums are never stored.
    var xs: array<F32x8, XR>;
    for (var r = 0u; r < XR; r++) {
      xs[r] = load_x8(min(m0 + r, params.M - 1u), k);
    }
    for (var i = 0u; i < ROWS; i++) {
      let w = dequant8(min(n0 + i, params.N - 1u) * params.row_bytes, k, params.K);
      for (var r = 0u; r < XR; r++) {
        acc[i * XR + r] += dot(w.a, xs[r].a) + dot(w.b, xs[r].b);
      }
    }
  }

  for (var j = 0u; j < OUTPUTS; j++) {
    partial[j * WG_SIZE + tid] = acc[j];
  }
  workgroupBarrier();
  var total = 0.0;
#if ${o.subgroups}
  // Every subgroup adds up all WG_SIZE partials of each output (lane-strided, then
  // subgroupAdd), so the result does not depend on the subgroup size or on how threads map to
  // subgroups; thread j keeps output j.
  for (var j = 0u; j < OUTPUTS; j++) {
    var s = 0.0;
    for (var t = 0u; t < WG_SIZE; t += lanes) {
      if (t + lane < WG_SIZE) { s += partial[j * WG_SIZE + t + lane]; }
    }
    let sum = subgroupAdd(s);
    if (j == tid) { total = sum; }
  }
#else
  for (var stride = WG_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (tid < stride) {
      for (var j = 0u; j < OUTPUTS; j++) {
        partial[j * WG_SIZE + tid] += partial[j * WG_SIZE + tid + stride];
      }
    }
    workgroupBarrier();
  }
  if (tid < OUTPUTS) { total = partial[tid * WG_SIZE]; }
#endif
  if (tid < OUTPUTS) {
    let n = n0 + tid / XR;
    let m = m0 + tid % XR;
    if (n < params.N && m < params.M) { store_y(m, n, total); }
  }
}
`;
}

export function gemmWgsl(type: GGMLTypeId, o: { bias: boolean }): string {
  const { m: TM, n: TN, k: TK } = GEMM_TILE;
  return wgsl`
${header(type, o.bias)}
const TM = ${TM}u;
const TN = ${TN}u;
const TK = ${TK}u;

// K-major tiles, packed 4 rows to a vec4 so the inner loop reads one vec4 of x and one of W
// per 16 multiply-adds: x_tile[k * TM/4 + m/4][m % 4], w_tile[k * TN/4 + n/4][n % 4].
// ${(TK * (TM + TN) * 4) / 1024} KiB together, under the 16 KiB some devices allow.
var<workgroup> x_tile: array<vec4<f32>, ${(TK * TM) / 4}>;
var<workgroup> w_tile: array<vec4<f32>, ${(TK * TN) / 4}>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let n0 = (group.x + group.y * groups.x) * TN;
  let m0 = group.z * TM;
  if (n0 >= params.N) { return; } // the whole workgroup: grid padding
  let tx = tid % 16u; // outputs n0 + 4tx .. n0 + 4tx + 3
  let ty = tid / 16u; // outputs m0 + 4ty .. m0 + 4ty + 3

  var acc: array<vec4<f32>, 4>; // acc[i][j]: output (m0 + 4ty + i, n0 + 4tx + j)
  for (var k0 = 0u; k0 < params.K; k0 += TK) {
    // x tile: TM rows x TK, one 8-value chunk per thread. Past M: repeats of the last row.
    {
      let r = tid / 4u;
      let kc = (tid % 4u) * 8u;
      let v = load_x8(min(m0 + r, params.M - 1u), k0 + kc);
      for (var i = 0u; i < 4u; i++) {
        x_tile[(kc + i) * (TM / 4u) + r / 4u][r % 4u] = v.a[i];
        x_tile[(kc + 4u + i) * (TM / 4u) + r / 4u][r % 4u] = v.b[i];
      }
    }
    // W tile: TN rows x TK, two chunks per thread. Past N: repeats of the last row.
    for (var c = tid; c < TN * TK / 8u; c += 128u) {
      let r = c / 4u;
      let kc = (c % 4u) * 8u;
      let w = dequant8(min(n0 + r, params.N - 1u) * params.row_bytes, k0 + kc, params.K);
      for (var i = 0u; i < 4u; i++) {
        w_tile[(kc + i) * (TN / 4u) + r / 4u][r % 4u] = w.a[i];
        w_tile[(kc + 4u + i) * (TN / 4u) + r / 4u][r % 4u] = w.b[i];
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let a = x_tile[kk * (TM / 4u) + ty];
      let b = w_tile[kk * (TN / 4u) + tx];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let m = m0 + 4u * ty + i;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + 4u * tx + j;
      if (m < params.M && n < params.N) { store_y(m, n, acc[i][j]); }
    }
  }
}
`;
}

export function rowwiseWgsl(type: GGMLTypeId, o: { xRows: number; bias: boolean }): string {
  return wgsl`
${header(type, o.bias)}
const XR = ${o.xRows}u;

@compute @workgroup_size(${MATVEC_WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let n = (group.x + group.y * groups.x) * ${MATVEC_WORKGROUP}u + tid;
  let m0 = group.z * XR;
  if (n >= params.N) { return; }
  let row = n * params.row_bytes;
  var acc = array<f32, XR>();
  for (var k = 0u; k < params.K; k += 8u) {
    let w = dequant8(row, k, params.K);
    for (var r = 0u; r < XR; r++) {
      let v = load_x8(min(m0 + r, params.M - 1u), k);
      acc[r] += dot(w.a, v.a) + dot(w.b, v.b);
    }
  }
  for (var r = 0u; r < XR; r++) {
    if (m0 + r < params.M) { store_y(m0 + r, n, acc[r]); }
  }
}
`;
}
