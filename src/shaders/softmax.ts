// Row softmax and row argmax, one workgroup per row of any length (vocabulary rows of 151936
// included): threads stride over the row (coalesced) and combine through workgroup reductions.
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { ROW_WORKGROUP, argmaxReduceHelpers, enableSubgroups, initLanes, laneBuiltins, reduceCommon, workgroupReduce } from './workgroup-reduce';

export interface SoftmaxVariant {
  subgroups: boolean;
  inPlace: boolean;
}

/**
 * y = softmax(x * scale) per row. Pass 1 keeps a running (max, sum of exp(v - max)) per thread,
 * rescaling the sum when the max grows (online softmax), so the row is read twice, not three
 * times. The thread maxima are reduced first, then each thread's sum is rescaled to the row max
 * and summed. A row of -inf gives zeros rather than NaN.
 */
export const softmaxWgsl = ({ subgroups, inPlace }: SoftmaxVariant) => wgsl`
${enableSubgroups(subgroups)}
struct Params { rows: u32, n: u32, scale: f32, _pad: u32 }
#if ${inPlace}
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;
#else
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
#endif
${reduceCommon()}
${workgroupReduce('row_max', 'RowMax', [{ name: 'max', type: 'f32', op: 'max' }], subgroups)}
${workgroupReduce('row_sum', 'RowSum', [{ name: 'sum', type: 'f32', op: 'sum' }], subgroups)}

const LOWEST = -3.4028234663852886e38;

@compute @workgroup_size(${ROW_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>${laneBuiltins(subgroups)}) {
  ${initLanes(subgroups)}
  let row = wid.x + wid.y * groups.x;
  if (row >= params.rows) { return; }
  let base = row * params.n;

  // Start at the lowest finite value, not -inf: exp(m - v) then never sees inf - inf.
  var m = LOWEST;
  var s = 0.0;
  for (var i = lid; i < params.n; i += ${ROW_WORKGROUP}u) {
    let v = x[base + i] * params.scale;
    if (v > m) {
      s = s * exp(m - v) + 1.0;
      m = v;
    } else {
      s += exp(v - m);
    }
  }
  let max_value = row_max(RowMax(m)).max;
  let total = row_sum(RowSum(s * exp(m - max_value))).sum;
  let inv_total = select(0.0, 1.0 / total, total > 0.0);

  for (var i = lid; i < params.n; i += ${ROW_WORKGROUP}u) {
    let p = exp(x[base + i] * params.scale - max_value) * inv_total;
#if ${inPlace}
    x[base + i] = p;
#else
    out[base + i] = p;
#endif
  }
}
`;

/** out[row] = index of the row's largest value; ties go to the lowest index, NaNs are skipped. */
export const argmaxWgsl = ({ subgroups }: { subgroups: boolean }) => wgsl`
${enableSubgroups(subgroups)}
struct Params { rows: u32, n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
${reduceCommon()}
${argmaxReduceHelpers(subgroups)}
${workgroupReduce('row_argmax', 'RowArgmax', [{ name: 'best', type: 'argmax' }], subgroups)}

@compute @workgroup_size(${ROW_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>${laneBuiltins(subgroups)}) {
  ${initLanes(subgroups)}
  let row = wid.x + wid.y * groups.x;
  if (row >= params.rows) { return; }
  let base = row * params.n;

  // (order key, index): each thread visits increasing indices and keeps the first of equals.
  var best = vec2<u32>(0u, 0xffffffffu);
  for (var i = lid; i < params.n; i += ${ROW_WORKGROUP}u) {
    let v = x[base + i];
    let key = order_key(v);
    if (!is_nan(v) && (key > best.x || best.y == 0xffffffffu)) {
      best = vec2<u32>(key, i);
    }
  }
  let winner = row_argmax(RowArgmax(best)).best;
  if (lid == 0u) {
    out[row] = select(winner.y, 0u, winner.y == 0xffffffffu); // an all-NaN row gives 0
  }
}
`;
