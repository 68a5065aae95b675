// Sorted top-k selection (src/shaders/select.ts): which keys a sparse attention step reads.
import { type Binding, type Gpu, check, grid } from '../gpu';
import { selectWgsl } from '../shaders/select';
import { bindingBytes } from './matmul';

export interface SelectArgs {
  /** f32 [rows][stride]: scores, the first n of each row are candidates. */
  x: Binding;
  rows: number;
  n: number;
  stride?: number;
  /** How many of the best non-forced candidates to select. */
  k: number;
  /** Indices always selected at the start and the end of the row (sinks, a recent window). */
  first?: number;
  last?: number;
  /** u32 [rows][outStride]: the selected indices, ascending; counts u32 [rows]: how many. */
  out: Binding;
  counts: Binding;
  outStride: number;
}

/** The number of indices a row of n candidates gets. */
export function selectedCount(n: number, k: number, first = 0, last = 0): number {
  return Math.min(n, Math.min(n, first + last) + k);
}

/** out[r] = [0, first) ∪ [n − last, n) ∪ the k largest other values of row r, ascending. */
export function selectTopK(gpu: Gpu, pass: GPUComputePassEncoder, args: SelectArgs): void {
  const { rows, n, k, outStride } = args;
  const stride = args.stride ?? n;
  const first = args.first ?? 0;
  const last = args.last ?? 0;
  for (const [name, v] of Object.entries({ rows, n, k, first, last, outStride, stride })) {
    check(Number.isInteger(v) && v >= 0 && v < 2 ** 31, `selectTopK: bad ${name} ${v}`);
  }
  check(stride >= n, `selectTopK: stride ${stride} is below n ${n}`);
  check(outStride >= selectedCount(n, k, first, last), `selectTopK: ${selectedCount(n, k, first, last)} indices per row do not fit outStride ${outStride}`);
  check(bindingBytes(args.x) >= rows * stride * 4, `selectTopK: x must be f32 [${rows}][${stride}]`);
  check(bindingBytes(args.out) >= rows * outStride * 4 && bindingBytes(args.counts) >= rows * 4, `selectTopK: out must be u32 [${rows}][${outStride}], counts u32 [${rows}]`);
  if (rows === 0) return;
  const subgroups = gpu.features.subgroups;
  const pipeline = gpu.pipeline(`select-top-k${subgroups ? '-subgroups' : ''}`, () => selectWgsl(subgroups));
  const params = gpu.uniform(new Uint32Array([rows, n, stride, k, first, last, outStride]));
  gpu.dispatch(pass, pipeline, [args.x, args.out, args.counts, params], grid(rows, gpu.limits.maxComputeWorkgroupsPerDimension));
}
