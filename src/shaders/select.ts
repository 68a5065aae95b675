// Sorted top-k selection over long rows (K9 for sparse attention): per row, the indices of the k
// largest values plus every index in [0, first) and [n − last, n), written in ascending order,
// the form block-sparse attention reads (TokenSelect, TidalDecode, InfLLM). k may be anything up
// to n, unlike topk's register lists (k <= 16).
//
// One workgroup per row. Values become order keys (forced indices get the largest key, NaN the
// smallest); the k-th largest key is found bit by bit from the top (32 counting rounds, each one
// workgroup sum); then each thread, owning a contiguous run of indices, writes its selected
// indices at an offset given by a prefix sum over threads. Ties at the threshold go to the lower
// indices, as in topk.
import { ROW_WORKGROUP, enableSubgroups, initLanes, laneBuiltins, reduceCommon, workgroupReduce } from './workgroup-reduce';

export function selectWgsl(subgroups: boolean): string {
  return /* wgsl */ `
${enableSubgroups(subgroups)}
struct Params {
  rows: u32,
  n: u32,          // candidates per row
  stride: u32,     // row stride of x
  k: u32,          // best values to select besides the forced ones
  first: u32,      // indices [0, first) are always selected
  last: u32,       // indices [n - last, n) are always selected
  out_stride: u32, // row stride of out
  start: u32,      // candidate i of a row is x[row * stride + start + i], written out as start + i
  out_offset: u32, // where row 0's indices start in out
}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read_write> counts: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;
${reduceCommon()}
${workgroupReduce('count_sum', 'Count', [{ name: 'n', type: 'u32', op: 'sum' }], subgroups)}
const WG = ${ROW_WORKGROUP}u;
var<workgroup> per_thread: array<u32, ${ROW_WORKGROUP}>;

fn key_at(base: u32, i: u32) -> u32 {
  if (i < params.first || i + params.last >= params.n) { return 0xffffffffu; }
  let v = x[base + i];
  if (is_nan(v)) { return 0u; }
  return order_key(v);
}

// Sum of per_thread over the threads before this one (every thread must call it).
fn before_me(value: u32, lid: u32) -> u32 {
  workgroupBarrier();
  per_thread[lid] = value;
  workgroupBarrier();
  var sum = 0u;
  for (var j = 0u; j < lid; j++) { sum += per_thread[j]; }
  return sum;
}

@compute @workgroup_size(${ROW_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>${laneBuiltins(subgroups)}) {
  ${initLanes(subgroups)}
  let row = wid.x + wid.y * groups.x;
  if (row >= params.rows) { return; } // uniform across the workgroup
  let n = params.n;
  let base = row * params.stride + params.start;
  let forced = min(n, params.first + params.last);
  let want = min(n, forced + params.k);
  let chunk = (n + WG - 1u) / WG;
  let begin = min(n, lid * chunk);
  let end = min(n, begin + chunk);

  // The largest t with at least \`want\` keys >= t: the want-th largest key.
  var t = 0u;
  for (var bit = 31i; bit >= 0i; bit--) {
    let candidate = t | (1u << u32(bit));
    var mine = 0u;
    for (var i = begin; i < end; i++) { mine += select(0u, 1u, key_at(base, i) >= candidate); }
    if (count_sum(Count(mine)).n >= want) { t = candidate; }
  }

  var above = 0u;
  var ties = 0u;
  for (var i = begin; i < end; i++) {
    let key = key_at(base, i);
    above += select(0u, 1u, key > t);
    ties += select(0u, 1u, key == t);
  }
  let take = want - count_sum(Count(above)).n; // ties to select, lowest indices first
  let ties_before = before_me(ties, lid);
  let my_ties = min(ties, take - min(take, ties_before));
  var at = params.out_offset + row * params.out_stride + before_me(above + my_ties, lid);
  var tie_rank = ties_before;
  for (var i = begin; i < end; i++) {
    let key = key_at(base, i);
    if (key > t || (key == t && tie_rank < take)) {
      out[at] = params.start + i;
      at++;
    }
    tie_rank += select(0u, 1u, key == t);
  }
  if (lid == 0u) { counts[row] = want; }
}
`;
}

/**
 * TokenSelect's selection cache (B6 step 5), decided on the GPU: the step's query fingerprint
 * (the mean of its query rows) is compared with the one that last ranked this layer's keys; at a
 * cosine similarity of at least the threshold the ranking is reused, so the workgroup counts
 * written for the scoring passes are zero, else they are the real ones and the fingerprint is
 * replaced. One workgroup. state: [ranked once, hits, misses].
 */
export function selectionReuseWgsl(subgroups: boolean): string {
  return /* wgsl */ `
${enableSubgroups(subgroups)}
struct Params {
  rows: u32,       // query rows of the step
  width: u32,      // floats per query row (heads x head size)
  threshold: f32,  // cosine similarity at which the last ranking is reused
  _pad: u32,
  grid_a: vec4<u32>, // workgroups of the scoring passes when they run: x, y, z of the first, x of the second
  grid_b: vec4<u32>, // y, z of the second
}
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read_write> fingerprint: array<f32>;
@group(0) @binding(2) var<storage, read_write> dispatch_args: array<u32>;
@group(0) @binding(3) var<storage, read_write> state: array<u32>;
@group(0) @binding(4) var<uniform> params: Params;
${reduceCommon()}
${workgroupReduce('sums', 'Sums', [{ name: 'dot', type: 'f32', op: 'sum' }, { name: 'now', type: 'f32', op: 'sum' }, { name: 'before', type: 'f32', op: 'sum' }], subgroups)}
const WG = ${ROW_WORKGROUP}u;
var<workgroup> ranked: u32;

fn mean_row(i: u32) -> f32 {
  var sum = 0.0;
  for (var t = 0u; t < params.rows; t++) { sum += q[t * params.width + i]; }
  return sum / f32(params.rows);
}

@compute @workgroup_size(${ROW_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32${laneBuiltins(subgroups)}) {
  ${initLanes(subgroups)}
  var part = Sums(0.0, 0.0, 0.0);
  for (var i = lid; i < params.width; i += WG) {
    let now = mean_row(i);
    let before = fingerprint[i];
    part.dot += now * before;
    part.now += now * now;
    part.before += before * before;
  }
  let total = sums(part);
  if (lid == 0u) { ranked = state[0]; }
  let seen = workgroupUniformLoad(&ranked);
  let cosine = total.dot / sqrt(max(total.now * total.before, 1e-30));
  let reuse = seen != 0u && cosine >= params.threshold;
  if (!reuse) {
    for (var i = lid; i < params.width; i += WG) { fingerprint[i] = mean_row(i); }
  }
  if (lid == 0u) {
    let scale = select(1u, 0u, reuse);
    dispatch_args[0] = params.grid_a.x * scale;
    dispatch_args[1] = params.grid_a.y;
    dispatch_args[2] = params.grid_a.z;
    dispatch_args[3] = params.grid_a.w * scale;
    dispatch_args[4] = params.grid_b.x;
    dispatch_args[5] = params.grid_b.y;
    state[0] = 1u;
    if (reuse) { state[1] += 1u; } else { state[2] += 1u; }
  }
}
`;
}

/**
 * InfLLM's unit relevance (B8): each memory unit's score is the sum of the scores of its
 * representative tokens, score[h][u] = Σ_i x[h][rep[h][u * per + i]]. One thread per (unit, kv head).
 */
export const unitScoresWgsl = /* wgsl */ `
struct Params {
  heads: u32,
  units: u32,
  per: u32,        // representatives per unit
  x_stride: u32,   // row stride of x (per kv head)
  rep_stride: u32, // row stride of rep
  out_stride: u32, // row stride of out
}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> rep: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let unit = gid.x;
  let head = gid.y;
  if (unit >= params.units || head >= params.heads) { return; }
  var sum = 0.0;
  for (var i = 0u; i < params.per; i++) {
    sum += x[head * params.x_stride + rep[head * params.rep_stride + unit * params.per + i]];
  }
  out[head * params.out_stride + unit] = sum;
}
`;
