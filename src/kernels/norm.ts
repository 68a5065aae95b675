import { type Binding, type Gpu, check, grid } from '../gpu';
import { layerNormWgsl, rmsNormWgsl } from '../shaders/norm';

export interface RmsNormArgs {
  /** f32 [rows][n]. */
  x: Binding;
  /** f32 [n], shared by every row (for qwen3's per-head Q/K norm: n = headDim, rows = tokens * heads). */
  weight: Binding;
  /** f32 [rows][n]; omit to normalize `x` in place. Must not be `x` itself (pass nothing instead). */
  out?: Binding;
  rows: number;
  n: number;
  /** llama: 1e-5 or 1e-6 (GGUF `<arch>.attention.layer_norm_rms_epsilon`). */
  eps: number;
  /**
   * Rows inside a wider buffer, for `x` and `out` alike: row r starts at element
   * offset + floor(r / rowsPerGroup) * groupStride + (r % rowsPerGroup) * n. For qwen3's K norm
   * in a fused QKV buffer: rows = tokens * kvHeads, rowsPerGroup = kvHeads, groupStride = the
   * QKV row width, offset = where K starts. Default: contiguous rows.
   */
  strides?: { rowsPerGroup: number; groupStride: number; offset?: number };
}

export interface LayerNormArgs extends RmsNormArgs {
  /** f32 [n]; omit for LayerNorm without bias. */
  bias?: Binding;
}

function checkRows(name: string, gpu: Gpu, args: RmsNormArgs): void {
  check(Number.isInteger(args.rows) && args.rows >= 0, `${name}: bad row count ${args.rows}`);
  check(Number.isInteger(args.n) && args.n >= 1, `${name}: bad row length ${args.n}`);
  check(args.eps >= 0 && Number.isFinite(args.eps), `${name}: bad eps ${args.eps}`);
  check(args.out !== args.x, `${name}: for in-place normalization leave out \`out\` (a buffer cannot be bound twice in one dispatch)`);
  const bytes = args.rows * args.n * 4;
  check(bytes <= gpu.limits.maxStorageBufferBindingSize, () => `${name}: ${args.rows}x${args.n} f32 is over maxStorageBufferBindingSize`);
  const s = args.strides;
  check(!s || (Number.isInteger(s.rowsPerGroup) && s.rowsPerGroup >= 1 && Number.isInteger(s.groupStride) && s.groupStride >= s.rowsPerGroup * args.n && Number.isInteger(s.offset ?? 0) && (s.offset ?? 0) >= 0),
    () => `${name}: bad strides ${JSON.stringify(s)} for rows of ${args.n}`);
}

/** RMSNorm over each row: y = x / sqrt(mean(x^2) + eps) * weight. One workgroup per row. */
export function rmsNorm(gpu: Gpu, pass: GPUComputePassEncoder, args: RmsNormArgs): void {
  checkRows('rmsNorm', gpu, args);
  const variant = { subgroups: gpu.features.subgroups, inPlace: !args.out };
  const key = `rms-norm${variant.subgroups ? '-subgroups' : ''}${variant.inPlace ? '-in-place' : ''}`;
  const pipeline = gpu.pipeline(key, () => rmsNormWgsl(variant));
  const params = gpu.uniform(normParams(args));
  const outputs = args.out ? [args.x, args.out] : [args.x];
  gpu.dispatch(pass, pipeline, [...outputs, args.weight, params], grid(args.rows));
}

/** LayerNorm over each row: y = (x - mean) / sqrt(var + eps) * weight + bias (biased variance, as PyTorch). */
export function layerNorm(gpu: Gpu, pass: GPUComputePassEncoder, args: LayerNormArgs): void {
  checkRows('layerNorm', gpu, args);
  const variant = { subgroups: gpu.features.subgroups, inPlace: !args.out, bias: !!args.bias };
  const key = `layer-norm${variant.subgroups ? '-subgroups' : ''}${variant.inPlace ? '-in-place' : ''}${variant.bias ? '-bias' : ''}`;
  const pipeline = gpu.pipeline(key, () => layerNormWgsl(variant));
  const params = gpu.uniform(normParams(args));
  const outputs = args.out ? [args.x, args.out] : [args.x];
  const weights = args.bias ? [args.weight, args.bias] : [args.weight];
  gpu.dispatch(pass, pipeline, [...outputs, ...weights, params], grid(args.rows));
}

function normParams({ rows, n, eps, strides }: RmsNormArgs): Uint32Array {
  const words = new Uint32Array([rows, n, 0, strides?.rowsPerGroup ?? 1, strides?.groupStride ?? n, strides?.offset ?? 0]);
  new Float32Array(words.buffer)[2] = eps;
  return words;
}
