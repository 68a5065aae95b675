// Launchers for Token Recycling's kernels (see shaders/token-recycling.ts).
import { type Binding, type Gpu, check } from '../gpu';
import { candidatesUpdateWgsl, treeFillWgsl } from '../shaders/token-recycling';

/**
 * Writes a draft tree's ids: node 0 is `root`, node i the rank[i]-th candidate of its parent's
 * token. `templateNodes` is u32 [count][parent, rank] with parents before children.
 */
export function treeFill(gpu: Gpu, pass: GPUComputePassEncoder, args: { candidates: Binding; templateNodes: Binding; ids: Binding; count: number; root: number; k: number }): void {
  check(Number.isInteger(args.count) && args.count >= 1, `treeFill: bad count ${args.count}`);
  const pipeline = gpu.pipeline(`tree-fill-${args.k}`, () => treeFillWgsl(args.k));
  gpu.dispatch(pass, pipeline, [args.candidates, args.templateNodes, args.ids, gpu.uniform(new Uint32Array([args.count, args.root]))], [1]);
}

/** M[ids[row]] = top[row] (K ids each), row after row. */
export function candidatesUpdate(gpu: Gpu, pass: GPUComputePassEncoder, args: { ids: Binding; top: Binding; candidates: Binding; rows: number; k: number }): void {
  if (args.rows === 0) return;
  const pipeline = gpu.pipeline(`candidates-update-${args.k}`, () => candidatesUpdateWgsl(args.k));
  gpu.dispatch(pass, pipeline, [args.ids, args.top, args.candidates, gpu.uniform(new Uint32Array([args.rows]))], [1]);
}
