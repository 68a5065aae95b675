// Launchers for src/shaders/draft-tree.ts: Gumbel keys over a draft's distributions (so topk
// draws siblings without replacement), the gather of the chosen tokens' probabilities, and a
// GPU-chained draft's tokens into the verify step's ids.
import { type Binding, type Gpu, check, grid } from '../gpu';
import { DRAFT_TREE_WORKGROUP, chainIdsWgsl, gatherRowsWgsl, gumbelKeysWgsl } from '../shaders/draft-tree';

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

/** ids[0] = root, ids[1 + i] = chain[i * stride] for i < count (u32 throughout). */
export function chainIds(gpu: Gpu, pass: GPUComputePassEncoder, args: { chain: Binding; ids: Binding; root: number; count: number; stride: number }): void {
  const { root, count, stride } = args;
  check(Number.isInteger(count) && count >= 0 && Number.isInteger(stride) && stride >= 1, `chainIds: bad count ${count} or stride ${stride}`);
  check(Number.isInteger(root) && root >= 0 && root < 2 ** 32, `chainIds: bad root ${root}`);
  const pipeline = gpu.pipeline('chain-ids', chainIdsWgsl);
  gpu.dispatch(pass, pipeline, [args.chain, args.ids, gpu.uniform(new Uint32Array([count, root, stride]))], [Math.ceil((count + 1) / 64)]);
}
