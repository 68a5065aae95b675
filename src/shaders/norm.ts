// Row normalizations: RMSNorm (llama, qwen, and qwen3's per-head Q/K norm) and LayerNorm (ViT,
// CLIP/SigLIP encoders, projectors). One workgroup per row; threads stride over the row so
// neighbouring threads read neighbouring floats (coalesced), then a workgroup reduction.
//
// The weight has length n and is shared by every row, so per-head Q/K norm is the same kernel
// with rows = tokens * heads and n = headDim. Rows may be strided: row r starts at
// offset + (r / rows_per_group) * group_stride + (r % rows_per_group) * n, which reaches the Q
// or K heads inside a fused QKV buffer (group = token). In place, the row is read and rewritten by the same
// workgroup; each thread rewrites only the elements it read, after the reduction's barriers.
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { ROW_WORKGROUP, enableSubgroups, initLanes, laneBuiltins, reduceCommon, workgroupReduce } from './workgroup-reduce';

export interface NormVariant {
  subgroups: boolean;
  /** Output written over the input (binding 0 read_write, no output binding). */
  inPlace: boolean;
}

const bindings = (inPlace: boolean, extra: string[]): string => {
  // x, [out], then the extras in order, then params last.
  const lines = [inPlace ? 'var<storage, read_write> x: array<f32>;' : 'var<storage, read> x: array<f32>;'];
  if (!inPlace) lines.push('var<storage, read_write> out: array<f32>;');
  lines.push(...extra);
  lines.push('var<uniform> params: Params;');
  return lines.map((line, i) => `@group(0) @binding(${i}) ${line}`).join('\n');
};

/** y = x / sqrt(mean(x^2) + eps) * weight, per row of length n. */
export const rmsNormWgsl = ({ subgroups, inPlace }: NormVariant) => wgsl`
${enableSubgroups(subgroups)}
struct Params { rows: u32, n: u32, eps: f32, rows_per_group: u32, group_stride: u32, offset: u32 }
${bindings(inPlace, ['var<storage, read> weight: array<f32>;'])}
${reduceCommon()}
${workgroupReduce('row_sum', 'RowSum', [{ name: 'sum', type: 'f32', op: 'sum' }], subgroups)}

@compute @workgroup_size(${ROW_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>${laneBuiltins(subgroups)}) {
  ${initLanes(subgroups)}
  let row = wid.x + wid.y * groups.x;
  if (row >= params.rows) { return; } // uniform: the whole workgroup leaves
  let base = params.offset + (row / params.rows_per_group) * params.group_stride + (row % params.rows_per_group) * params.n;

  var sum_sq = 0.0;
  for (var i = lid; i < params.n; i += ${ROW_WORKGROUP}u) {
    let v = x[base + i];
    sum_sq += v * v;
  }
  let total = row_sum(RowSum(sum_sq)).sum;
  let inv_rms = inverseSqrt(total / f32(params.n) + params.eps);

  for (var i = lid; i < params.n; i += ${ROW_WORKGROUP}u) {
#if ${inPlace}
    x[base + i] = x[base + i] * inv_rms * weight[i];
#else
    out[base + i] = x[base + i] * inv_rms * weight[i];
#endif
  }
}
`;

export interface LayerNormVariant extends NormVariant {
  /** Add a bias after scaling (binding after weight). */
  bias: boolean;
}

/** y = (x - mean) / sqrt(var + eps) * weight (+ bias), per row. Two reductions (mean, then the
 * variance around it) rather than one of sum and sum of squares, which cancels badly when
 * |mean| >> std. The row is read three times; it is small and cached. */
export const layerNormWgsl = ({ subgroups, inPlace, bias }: LayerNormVariant) => wgsl`
${enableSubgroups(subgroups)}
struct Params { rows: u32, n: u32, eps: f32, rows_per_group: u32, group_stride: u32, offset: u32 }
${bindings(inPlace, ['var<storage, read> weight: array<f32>;', ...(bias ? ['var<storage, read> bias: array<f32>;'] : [])])}
${reduceCommon()}
${workgroupReduce('row_sum', 'RowSum', [{ name: 'sum', type: 'f32', op: 'sum' }], subgroups)}

@compute @workgroup_size(${ROW_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>${laneBuiltins(subgroups)}) {
  ${initLanes(subgroups)}
  let row = wid.x + wid.y * groups.x;
  if (row >= params.rows) { return; }
  let base = params.offset + (row / params.rows_per_group) * params.group_stride + (row % params.rows_per_group) * params.n;
  let n = f32(params.n);

  var sum = 0.0;
  for (var i = lid; i < params.n; i += ${ROW_WORKGROUP}u) {
    sum += x[base + i];
  }
  let mean = row_sum(RowSum(sum)).sum / n;

  var sum_sq = 0.0;
  for (var i = lid; i < params.n; i += ${ROW_WORKGROUP}u) {
    let d = x[base + i] - mean;
    sum_sq += d * d;
  }
  let inv_std = inverseSqrt(row_sum(RowSum(sum_sq)).sum / n + params.eps);

  for (var i = lid; i < params.n; i += ${ROW_WORKGROUP}u) {
    var y = (x[base + i] - mean) * inv_std * weight[i];
#if ${bias}
    y += bias[i];
#endif
#if ${inPlace}
    x[base + i] = y;
#else
    out[base + i] = y;
#endif
  }
}
`;
