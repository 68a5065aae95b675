// Kernels for growing a draft tree from a draft model's distributions (DySpec, A3, with RSD's
// siblings drawn without replacement, A4). Gumbel-top-k: adding independent Gumbel noise to
// log q and taking the m largest keys draws m tokens from q without replacement, in draw order
// (Kool et al. 2019), so one topk pass gives a node's siblings. Then the q of each chosen token is
// gathered, for the tree's path probabilities, so that only ids and m floats per row come back.
import { pcg3dWgsl } from './sampling';

export const DRAFT_TREE_WORKGROUP = 256;

/** keys[r, i] = log q[r, i] + Gumbel noise (u from pcg3d(seed, step, r << 18 | i)); -3.4e38 where q = 0. */
export const gumbelKeysWgsl = () => /* wgsl */ `
struct Params { rows: u32, n: u32, seed: u32, step: u32 }
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read_write> keys: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
${pcg3dWgsl}
@compute @workgroup_size(${DRAFT_TREE_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * ${DRAFT_TREE_WORKGROUP}u;
  if (index >= params.rows * params.n) { return; }
  let row = index / params.n;
  let i = index % params.n;
  let p = q[index];
  // u in (0, 1): 24 random bits, offset by half a step so that log(u) is finite.
  let u = (f32(pcg3d(vec3<u32>(params.seed, params.step, (row << 18u) | i)).x >> 8u) + 0.5) * (1.0 / 16777216.0);
  keys[index] = select(-3.4e38, log(p) - log(-log(u)), p > 0.0);
}
`;

/** out[r, j] = x[r, ids[r, j]] (0 for an id past the row). */
export const gatherRowsWgsl = () => /* wgsl */ `
struct Params { rows: u32, n: u32, m: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let index = gid.x;
  if (index >= params.rows * params.m) { return; }
  let id = ids[index];
  out[index] = select(0.0, x[(index / params.m) * params.n + id], id < params.n);
}
`;

/**
 * A GPU-chained draft (A1 without round trips) into a verify step's ids: ids[0] = root, then
 * ids[1 + i] = chain[i * stride] for i < count (each chained draft step's argmax sits at the start
 * of its own aligned region, where the next draft forward binds it as its one input id).
 */
export const chainIdsWgsl = () => /* wgsl */ `
struct Params { count: u32, root: u32, stride: u32 }
@group(0) @binding(0) var<storage, read> chain: array<u32>;
@group(0) @binding(1) var<storage, read_write> ids: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i > params.count) { return; }
  if (i == 0u) {
    ids[0] = params.root;
  } else {
    ids[i] = chain[(i - 1u) * params.stride];
  }
}
`;
