// Sorted top-k selection (src/shaders/select.ts): which keys a sparse attention step reads.
import { type Binding, type Gpu, check, grid } from '../gpu';
import { selectWgsl, selectionReuseWgsl, unitScoresWgsl } from '../shaders/select';
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
  /** A row's candidates start `start` values into it and are numbered from there (default 0). */
  start?: number;
  /** Where row 0's indices start in out (default 0). */
  outOffset?: number;
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
  const start = args.start ?? 0;
  const outOffset = args.outOffset ?? 0;
  for (const [name, v] of Object.entries({ rows, n, k, first, last, outStride, stride, start, outOffset })) {
    check(Number.isInteger(v) && v >= 0 && v < 2 ** 31, `selectTopK: bad ${name} ${v}`);
  }
  check(start + n <= stride || rows <= 1, `selectTopK: candidates ${start}..${start + n} overrun the row stride ${stride}`);
  check(outStride >= selectedCount(n, k, first, last), `selectTopK: ${selectedCount(n, k, first, last)} indices per row do not fit outStride ${outStride}`);
  check(bindingBytes(args.x) >= ((rows - 1) * stride + start + n) * 4, `selectTopK: x must be f32 [${rows}][${stride}] with ${start + n} candidates a row`);
  check(bindingBytes(args.out) >= (outOffset + (rows - 1) * outStride + selectedCount(n, k, first, last)) * 4 && bindingBytes(args.counts) >= rows * 4, `selectTopK: out must be u32 [${rows}][${outStride}] after ${outOffset}, counts u32 [${rows}]`);
  if (rows === 0) return;
  const subgroups = gpu.features.subgroups;
  const pipeline = gpu.pipeline(`select-top-k${subgroups ? '-subgroups' : ''}`, () => selectWgsl(subgroups));
  const params = gpu.uniform(new Uint32Array([rows, n, stride, k, first, last, outStride, start, outOffset]));
  gpu.dispatch(pass, pipeline, [args.x, args.out, args.counts, params], grid(rows, gpu.limits.maxComputeWorkgroupsPerDimension));
}

export interface SelectionReuseArgs {
  /** f32 [rows][width]: the step's queries. */
  q: Binding;
  rows: number;
  width: number;
  threshold: number;
  /** f32 [width]: the fingerprint that last ranked (read and replaced on a miss). */
  fingerprint: Binding;
  /** u32 [3]: ranked once, hits, misses (zeros to start). */
  state: Binding;
  /** Six u32 written at byte `offset` of `buffer` (INDIRECT usage): the scoring passes' workgroups, or zeros to reuse. */
  dispatchArgs: { buffer: GPUBuffer; offset: number };
  /** The scoring passes' workgroups when they run. */
  grids: [[number, number], [number, number]];
}

/** Decides on the GPU whether this step reuses the last ranking (TokenSelect's selection cache). */
export function selectionReuse(gpu: Gpu, pass: GPUComputePassEncoder, args: SelectionReuseArgs): void {
  const { rows, width, threshold, grids } = args;
  check(Number.isInteger(rows) && rows >= 1 && Number.isInteger(width) && width >= 1, `selectionReuse: bad shape ${rows}x${width}`);
  check(threshold >= -1 && threshold <= 1, `selectionReuse: threshold ${threshold} is not a cosine similarity`);
  check(bindingBytes(args.q) >= rows * width * 4 && bindingBytes(args.fingerprint) >= width * 4 && bindingBytes(args.state) >= 12, 'selectionReuse: q, fingerprint or state too small');
  const subgroups = gpu.features.subgroups;
  const pipeline = gpu.pipeline(`selection-reuse${subgroups ? '-subgroups' : ''}`, () => selectionReuseWgsl(subgroups));
  const params = new Uint32Array(12);
  params.set([rows, width]);
  new Float32Array(params.buffer)[2] = threshold;
  params.set([grids[0][0], grids[0][1], 1, grids[1][0], grids[1][1], 1], 4);
  const { buffer, offset } = args.dispatchArgs;
  check(offset % 256 === 0, 'selectionReuse: dispatch arguments must start at a multiple of 256 bytes');
  gpu.dispatch(pass, pipeline, [args.q, args.fingerprint, { buffer, offset, size: 24 }, args.state, gpu.uniform(params)], [1]);
}

/** out[h][u] = Σ_{i < per} x[h][rep[h][u * per + i]] for u < units: InfLLM's unit relevance from its representatives' scores. */
export function unitScores(gpu: Gpu, pass: GPUComputePassEncoder, args: {
  x: Binding; xStride: number; rep: Binding; repStride: number; out: Binding; outStride: number; heads: number; units: number; per: number;
}): void {
  const { heads, units, per, xStride, repStride, outStride } = args;
  for (const [name, v] of Object.entries({ heads, units, per, xStride, repStride, outStride })) check(Number.isInteger(v) && v >= 0, `unitScores: bad ${name} ${v}`);
  check(repStride >= units * per && outStride >= units, `unitScores: ${units} units of ${per} do not fit the strides`);
  check(bindingBytes(args.rep) >= heads * repStride * 4 && bindingBytes(args.out) >= heads * outStride * 4 && bindingBytes(args.x) >= heads * xStride * 4, 'unitScores: a buffer is too small');
  if (units === 0 || heads === 0) return;
  const pipeline = gpu.pipeline('unit-scores', () => unitScoresWgsl);
  const params = gpu.uniform(new Uint32Array([heads, units, per, xStride, repStride, outStride]));
  gpu.dispatch(pass, pipeline, [args.x, args.rep, args.out, params], [Math.ceil(units / 64), heads]);
}
