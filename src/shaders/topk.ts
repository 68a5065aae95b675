// Row-wise top-k (k <= 16) over long rows such as a vocabulary of logits: one workgroup per row.
// Each thread keeps a sorted list of its k best (value, index) from a strided scan, then the
// workgroup merges the lists pairwise in shared memory. Order: larger value first, equal values
// by lower index; NaN never wins.
import { reduceCommon } from './workgroup-reduce';

export const TOPK_WORKGROUP = 64;

export function topkWgsl(k: number): string {
  return /* wgsl */ `
struct Params { rows: u32, n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
${reduceCommon()}
const K = ${k}u;
const EMPTY = 0xffffffffu;
var<workgroup> shared_keys: array<u32, ${TOPK_WORKGROUP * k}>;
var<workgroup> shared_ids: array<u32, ${TOPK_WORKGROUP * k}>;

// (key, id) a is better than b: a larger order key, or an equal one at a lower index.
fn better(ak: u32, ai: u32, bk: u32, bi: u32) -> bool {
  return bi == EMPTY || (ai != EMPTY && (ak > bk || (ak == bk && ai < bi)));
}

@compute @workgroup_size(${TOPK_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let row = wid.x + wid.y * groups.x;
  let in_range = row < params.rows;
  var keys: array<u32, ${k}>;
  var ids: array<u32, ${k}>;
  for (var j = 0u; j < K; j++) { keys[j] = 0u; ids[j] = EMPTY; }
  if (in_range) {
    let base = row * params.n;
    for (var i = lid; i < params.n; i += ${TOPK_WORKGROUP}u) {
      let v = x[base + i];
      if (is_nan(v)) { continue; }
      let key = order_key(v);
      if (!better(key, i, keys[K - 1u], ids[K - 1u])) { continue; }
      // Insertion into the sorted list.
      var j = K - 1u;
      while (j > 0u && better(key, i, keys[j - 1u], ids[j - 1u])) {
        keys[j] = keys[j - 1u];
        ids[j] = ids[j - 1u];
        j--;
      }
      keys[j] = key;
      ids[j] = i;
    }
  }
  for (var j = 0u; j < K; j++) {
    shared_keys[lid * K + j] = keys[j];
    shared_ids[lid * K + j] = ids[j];
  }
  workgroupBarrier();
  for (var stride = ${TOPK_WORKGROUP / 2}u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      // Merge this thread's list with the one \`stride\` threads up; keep the best K.
      var a = lid * K;
      var b = (lid + stride) * K;
      let a_end = a + K;
      let b_end = b + K;
      for (var j = 0u; j < K; j++) {
        let take_a = b == b_end || (a < a_end && better(shared_keys[a], shared_ids[a], shared_keys[b], shared_ids[b]));
        if (take_a) { keys[j] = shared_keys[a]; ids[j] = shared_ids[a]; a++; }
        else { keys[j] = shared_keys[b]; ids[j] = shared_ids[b]; b++; }
      }
    }
    workgroupBarrier();
    if (lid < stride) {
      for (var j = 0u; j < K; j++) {
        shared_keys[lid * K + j] = keys[j];
        shared_ids[lid * K + j] = ids[j];
      }
    }
    workgroupBarrier();
  }
  if (in_range && lid < K) {
    let id = shared_ids[lid];
    out[row * K + lid] = select(id, 0u, id == EMPTY); // fewer than K non-NaN values: pad with 0
  }
}
`;
}
