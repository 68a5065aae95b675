// The drafter's confidence (A8's stop rule): per row of logits, the argmax (ties to the lower
// index, NaN never wins) and its probability under softmax(x / temperature), which is
// 1 / sum_i exp((x_i - max) / temperature). One workgroup per row, two strided passes and two
// tree reductions; the result is [index, bitcast<u32>(probability)] per row, 8 bytes to read.
import { reduceCommon } from './workgroup-reduce';

export const TOP1_WORKGROUP = 64;

export const top1Wgsl = /* wgsl */ `
struct Params { rows: u32, n: u32, inv_temperature: f32, _pad: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
${reduceCommon()}
const WG = ${TOP1_WORKGROUP}u;
const NONE = 0xffffffffu;
var<workgroup> best_keys: array<u32, WG>;
var<workgroup> best_ids: array<u32, WG>;
var<workgroup> sums: array<f32, WG>;

@compute @workgroup_size(${TOP1_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let row = wid.x + wid.y * groups.x;
  if (row >= params.rows) { return; }
  let base = row * params.n;
  var key = 0u;
  var id = NONE;
  for (var i = lid; i < params.n; i += WG) {
    let v = x[base + i];
    if (is_nan(v)) { continue; }
    let k = order_key(v);
    if (id == NONE || k > key) { key = k; id = i; } // strided scan: the first of equal values has the lowest index
  }
  best_keys[lid] = key;
  best_ids[lid] = id;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let ok = best_keys[lid + stride];
      let oi = best_ids[lid + stride];
      if (oi != NONE && (best_ids[lid] == NONE || ok > best_keys[lid] || (ok == best_keys[lid] && oi < best_ids[lid]))) {
        best_keys[lid] = ok;
        best_ids[lid] = oi;
      }
    }
    workgroupBarrier();
  }
  let winner = best_ids[0];
  let max_value = key_value(best_keys[0]);
  var sum = 0.0;
  for (var i = lid; i < params.n; i += WG) {
    let v = x[base + i];
    if (!is_nan(v)) { sum += select(exp((v - max_value) * params.inv_temperature), 1.0, v == max_value); } // -inf rows: 1 / count
  }
  sums[lid] = sum;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { sums[lid] += sums[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out[2u * row] = select(winner, 0u, winner == NONE);
    out[2u * row + 1u] = bitcast<u32>(select(1.0 / sums[0], 0.0, winner == NONE));
  }
}
`;
