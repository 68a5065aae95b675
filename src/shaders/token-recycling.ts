// Token Recycling's two small kernels (A2 step 8): fill a draft tree's token ids from the
// candidate matrix M[V][K] by following a static template, and refresh M's rows from the top-K of
// every verified row. Both run in the verify step's submission, so M never leaves the GPU.

/** One thread: ids[0] = root; ids[i] = M[ids[parent[i]]][rank[i]] in node order (parents first). */
export function treeFillWgsl(k: number): string {
  return /* wgsl */ `
struct Params { count: u32, root: u32 }
@group(0) @binding(0) var<storage, read> candidates: array<u32>;
@group(0) @binding(1) var<storage, read> template_nodes: array<u32>; // [node][parent, rank]
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;
@compute @workgroup_size(1)
fn main() {
  ids[0] = params.root;
  for (var i = 1u; i < params.count; i++) {
    let parent = template_nodes[2u * i];
    let rank = template_nodes[2u * i + 1u];
    ids[i] = candidates[ids[parent] * ${k}u + rank];
  }
}
`;
}

/** K threads, one per rank: for each verified row in order, M[ids[row]] = top[row]; a later row wins. */
export function candidatesUpdateWgsl(k: number): string {
  return /* wgsl */ `
struct Params { rows: u32 }
@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> top: array<u32>;
@group(0) @binding(2) var<storage, read_write> candidates: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;
@compute @workgroup_size(${k})
fn main(@builtin(local_invocation_index) lane: u32) {
  for (var row = 0u; row < params.rows; row++) {
    candidates[ids[row] * ${k}u + lane] = top[row * ${k}u + lane];
  }
}
`;
}
