// Choosing image tokens on the GPU (src/shaders/vision-prune.ts): per-patch scores from attention
// mass (CLS attention, HiPrune) or diversity (ToDRE's k-center), then the kept rows gathered.
import { type Binding, type Gpu, check, grid } from '../gpu';
import { columnSumsWgsl, packRowsWgsl, hipruneWgsl, kCenterWgsl } from '../shaders/vision-prune';
import { bindingBytes } from './matmul';

const WORKGROUP = 256;
const positiveInt = (name: string, v: number) => check(Number.isInteger(v) && v >= 0 && v < 2 ** 31, `${name}: bad ${v}`);

/**
 * out[b·n + j] = Σ_{h < rows} x[b·batchStride + h·stride + start + j] for j < n, b < batches
 * (default 1): per key the attention mass of all heads, or per token the sum of its heads' rows.
 */
export function columnSums(gpu: Gpu, pass: GPUComputePassEncoder, args: { x: Binding; rows: number; n: number; stride: number; start?: number; batches?: number; batchStride?: number; out: Binding }): void {
  const { rows, n, stride } = args;
  const start = args.start ?? 0;
  const batches = args.batches ?? 1;
  const batchStride = args.batchStride ?? 0;
  for (const [name, v] of Object.entries({ rows, n, stride, start, batches, batchStride })) positiveInt(`columnSums ${name}`, v);
  check(start + n <= stride, `columnSums: columns ${start}..${start + n} overrun the stride ${stride}`);
  check(batches <= gpu.limits.maxComputeWorkgroupsPerDimension, `columnSums: ${batches} batches are too many`);
  check(bindingBytes(args.x) >= ((batches - 1) * batchStride + (rows - 1) * stride + start + n) * 4 && bindingBytes(args.out) >= batches * n * 4,
    `columnSums: x must hold ${batches} batches of f32 [${rows}][${stride}], out f32 [${batches}][${n}]`);
  if (n * batches === 0) return;
  gpu.dispatch(pass, gpu.pipeline('column-sums', columnSumsWgsl), [args.x, args.out, gpu.uniform(new Uint32Array([rows, n, stride, start, batches, batchStride]))], [Math.ceil(n / WORKGROUP), batches]);
}

/** out[i] = x[ids[i] + first] for i < count, rows of `width` f32 (or u32: positions). */
export function packRows(gpu: Gpu, pass: GPUComputePassEncoder, args: { x: Binding; ids: Binding; count: number; width: number; first?: number; out: Binding; type?: 'f32' | 'u32' }): void {
  const { count, width } = args;
  const first = args.first ?? 0;
  for (const [name, v] of Object.entries({ count, width, first })) positiveInt(`packRows ${name}`, v);
  check(bindingBytes(args.ids) >= count * 4 && bindingBytes(args.out) >= count * width * 4, `packRows: ids must be u32 [${count}], out [${count}][${width}]`);
  if (count * width === 0) return;
  const type = args.type ?? 'f32';
  gpu.dispatch(pass, gpu.pipeline(`pack-rows-${type}`, () => packRowsWgsl(type)), [args.x, args.ids, args.out, gpu.uniform(new Uint32Array([count, width, first]))],
    grid(Math.ceil((count * width) / WORKGROUP), gpu.limits.maxComputeWorkgroupsPerDimension));
}

/**
 * ToDRE's greedy k-center over rows first..first+n of `features` (f32, rows of `dim`): scores[j]
 * = k − pick order for the k chosen, 0 for the rest. work: f32 [2n] scratch.
 */
export function kCenter(gpu: Gpu, pass: GPUComputePassEncoder, args: { features: Binding; n: number; dim: number; k: number; first?: number; scores: Binding; work: Binding }): void {
  const { n, dim, k } = args;
  const first = args.first ?? 0;
  for (const [name, v] of Object.entries({ n, dim, k, first })) positiveInt(`kCenter ${name}`, v);
  check(k <= n, `kCenter: ${k} centres of ${n} rows`);
  check(bindingBytes(args.features) >= (first + n) * dim * 4, `kCenter: features must hold ${first + n} rows of ${dim}`);
  check(bindingBytes(args.scores) >= n * 4 && bindingBytes(args.work) >= 2 * n * 4, `kCenter: scores must be f32 [${n}], work f32 [${2 * n}]`);
  if (n === 0) return;
  gpu.dispatch(pass, gpu.pipeline('k-center', kCenterWgsl), [args.features, args.scores, args.work, gpu.uniform(new Uint32Array([n, dim, k, first]))], [1, 1]);
}

/**
 * HiPrune's scores over a grid of n patches, `width` a row: the first `flagged` in order are
 * anchors (by objectScores) and their 4-neighbours; the others score lastScores. The top N′ of the
 * result are HiPrune's choice of N′.
 */
export function hipruneScores(gpu: Gpu, pass: GPUComputePassEncoder, args: { objectScores: Binding; lastScores: Binding; n: number; width: number; flagged: number; scores: Binding }): void {
  const { n, width, flagged } = args;
  for (const [name, v] of Object.entries({ n, width, flagged })) positiveInt(`hipruneScores ${name}`, v);
  check(flagged <= n && width >= 1, `hipruneScores: ${flagged} anchors and buffers of ${n} patches, ${width} a row`);
  check([args.objectScores, args.lastScores, args.scores].every((b) => bindingBytes(b) >= n * 4), `hipruneScores: scores must be f32 [${n}]`);
  if (n === 0) return;
  gpu.dispatch(pass, gpu.pipeline('hiprune', hipruneWgsl), [args.objectScores, args.lastScores, args.scores, gpu.uniform(new Uint32Array([n, width, flagged]))], [1, 1]);
}
