// Launchers for src/shaders/draft-tree.ts: Gumbel keys over a draft's distributions (so topk
// draws siblings without replacement) and the gather of the chosen tokens' probabilities.
import { type Binding, type Gpu, check, grid } from '../gpu';
import { DRAFT_TREE_WORKGROUP, gatherRowsWgsl, gumbelKeysWgsl } from '../shaders/draft-tree';

export function gumbelKeys(gpu: Gpu, pass: GPUComputePassEncoder, args: { q: Binding; keys: Binding; rows: number; n: number; seed: number; step: number }): void {
  const { rows, n } = args;
  check(Number.isInteger(rows) && rows >= 0 && Number.isInteger(n) && n >= 1 && n <= 1 << 18 && rows < 1 << 14, `gumbelKeys: bad shape ${rows}x${n}`);
  if (rows === 0) return;
  const pipeline = gpu.pipeline('gumbel-keys', gumbelKeysWgsl);
  gpu.dispatch(pass, pipeline, [args.q, args.keys, gpu.uniform(new Uint32Array([rows, n, args.seed >>> 0, args.step >>> 0]))], grid(Math.ceil((rows * n) / DRAFT_TREE_WORKGROUP)));
}

export function gatherRows(gpu: Gpu, pass: GPUComputePassEncoder, args: { x: Binding; ids: Binding; out: Binding; rows: number; n: number; m: number }): void {
  const { rows, n, m } = args;
  check(Number.isInteger(rows) && rows >= 0 && Number.isInteger(m) && m >= 1 && Number.isInteger(n) && n >= 1, `gatherRows: bad shape ${rows}x${n}, m = ${m}`);
  if (rows === 0) return;
  const pipeline = gpu.pipeline('gather-rows', gatherRowsWgsl);
  gpu.dispatch(pass, pipeline, [args.x, args.ids, args.out, gpu.uniform(new Uint32Array([rows, n, m]))], [Math.ceil((rows * m) / 64)]);
}
