// Element-wise kernels over f32 vectors. One thread per element, 256 per workgroup; the x/y
// grid split lets vectors exceed 65535 workgroups.

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
