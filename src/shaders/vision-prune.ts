// Kernels for choosing which image tokens reach the language model (src/kernels/vision-prune.ts).
// Each method turns its evidence into one score per patch; selectTopK then keeps the best in their
// original order, and packRows moves the kept rows together.

const WORKGROUP = 256;

/**
 * out[b·n + j] = Σ_h x[b·batchStride + h·stride + start + j]: attention mass summed over heads
 * (head-mean up to a constant), or per token the sum of its heads' keys (ToMe's metric).
 */
export const columnSumsWgsl = () => /* wgsl */ `
struct Params { rows: u32, n: u32, stride: u32, start: u32, batches: u32, batch_stride: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let b = gid.y;
  if (j >= params.n || b >= params.batches) { return; }
  var sum = 0.0;
  for (var h = 0u; h < params.rows; h++) { sum += x[b * params.batch_stride + h * params.stride + params.start + j]; }
  out[b * params.n + j] = sum;
}
`;

/** out[i] = x[ids[i] + first] (rows of `width` values): the kept tokens (or their positions), packed. */
export const packRowsWgsl = (type: 'f32' | 'u32') => /* wgsl */ `
struct Params { count: u32, width: u32, first: u32 }
@group(0) @binding(0) var<storage, read> x: array<${type}>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<${type}>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let e = gid.x + gid.y * groups.x * ${WORKGROUP}u;
  if (e >= params.count * params.width) { return; }
  let row = e / params.width;
  out[e] = x[(ids[row] + params.first) * params.width + e % params.width];
}
`;

// One workgroup's argmax of value(j) over j < n, ties to the lowest index; every thread gets it.
const argmaxFn = (value: string) => /* wgsl */ `
var<workgroup> best_value: array<f32, ${WORKGROUP}>;
var<workgroup> best_index: array<u32, ${WORKGROUP}>;

fn argmax_all(lid: u32, n: u32) -> u32 {
  var v = -3.0e38;
  var i = 0xffffffffu;
  for (var j = lid; j < n; j += ${WORKGROUP}u) {
    let candidate = ${value};
    if (candidate > v) { v = candidate; i = j; }
  }
  best_value[lid] = v;
  best_index[lid] = i;
  workgroupBarrier();
  for (var step = ${WORKGROUP / 2}u; step > 0u; step >>= 1u) {
    if (lid < step) {
      let ov = best_value[lid + step];
      let oi = best_index[lid + step];
      if (ov > best_value[lid] || (ov == best_value[lid] && oi < best_index[lid])) { best_value[lid] = ov; best_index[lid] = oi; }
    }
    workgroupBarrier();
  }
  let winner = best_index[0];
  workgroupBarrier();
  return winner;
}
`;

/**
 * ToDRE's greedy k-center (C3), one workgroup: start from the row of largest norm, then k − 1
 * times add the row farthest (1 − cosine) from everything chosen. scores[j] = k − (pick order)
 * for chosen rows, 0 for the rest; work f32 [2n] holds norms and distances.
 */
export const kCenterWgsl = () => /* wgsl */ `
struct Params { n: u32, dim: u32, k: u32, first: u32 }
@group(0) @binding(0) var<storage, read> features: array<f32>;
@group(0) @binding(1) var<storage, read_write> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> work: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

fn row(j: u32) -> u32 { return (j + params.first) * params.dim; }
${argmaxFn('work[params.n + j]')}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let n = params.n;
  for (var j = lid; j < n; j += ${WORKGROUP}u) {
    var s = 0.0;
    for (var d = 0u; d < params.dim; d++) { let f = features[row(j) + d]; s += f * f; }
    work[j] = sqrt(s);
    work[n + j] = work[j]; // the first pick is the largest norm
    scores[j] = 0.0;
  }
  storageBarrier();
  workgroupBarrier();
  for (var pick = 0u; pick < params.k; pick++) {
    let c = argmax_all(lid, n);
    if (lid == 0u) { scores[c] = f32(params.k - pick); }
    let cn = max(work[c], 1e-12);
    for (var j = lid; j < n; j += ${WORKGROUP}u) {
      if (scores[j] > 0.0 || j == c) { work[n + j] = -1.0; continue; } // chosen: never again
      var dot = 0.0;
      for (var d = 0u; d < params.dim; d++) { dot += features[row(j) + d] * features[row(c) + d]; }
      let distance = 1.0 - dot / (max(work[j], 1e-12) * cn);
      work[n + j] = select(distance, min(work[n + j], distance), pick > 0u);
    }
    storageBarrier();
    workgroupBarrier();
  }
}
`;

/**
 * HiPrune's anchors and buffers (C2), one workgroup: repeatedly the unflagged patch with the most
 * object-layer attention becomes an anchor and it and its 4 grid neighbours (up, left, right, down)
 * are flagged, until `flagged` patches are. scores[j] = a large value falling with flag order for
 * flagged patches, else the last layer's attention: the top N′ of it are anchors, buffers, then
 * registers.
 */
export const hipruneWgsl = () => /* wgsl */ `
struct Params { n: u32, width: u32, flagged: u32 }
@group(0) @binding(0) var<storage, read> object_scores: array<f32>;
@group(0) @binding(1) var<storage, read> last_scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> scores: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

const FLAG = 1e30;
var<workgroup> count: u32;
${argmaxFn('select(object_scores[j], -1.0, scores[j] >= FLAG)')}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let n = params.n;
  for (var j = lid; j < n; j += ${WORKGROUP}u) { scores[j] = last_scores[j]; }
  if (lid == 0u) { count = 0u; }
  storageBarrier();
  workgroupBarrier();
  loop {
    if (workgroupUniformLoad(&count) >= params.flagged) { break; }
    let anchor = argmax_all(lid, n);
    if (lid == 0u) {
      let x = i32(anchor % params.width);
      let y = i32(anchor / params.width);
      let rows = i32((n + params.width - 1u) / params.width);
      var around = array<vec2<i32>, 5>(vec2(0, 0), vec2(0, -1), vec2(-1, 0), vec2(1, 0), vec2(0, 1));
      for (var a = 0u; a < 5u && count < params.flagged; a++) {
        let p = vec2(x, y) + around[a];
        if (p.x < 0 || p.y < 0 || p.x >= i32(params.width) || p.y >= rows) { continue; }
        let j = u32(p.y) * params.width + u32(p.x);
        if (j >= n || scores[j] >= FLAG) { continue; }
        scores[j] = FLAG * (2.0 - f32(count) / 65536.0);
        count++;
      }
    }
    storageBarrier();
    workgroupBarrier();
  }
}
`;
