// Row-wise top-k indices (k <= 16), largest first, ties to the lower index: Token Recycling's
// candidate lists (K9), and any "k best tokens" a policy needs without reading logits back.
import { type Binding, type Gpu, check, grid } from '../gpu';
import { topkWgsl } from '../shaders/topk';

export const MAX_TOPK = 16;

export function topk(gpu: Gpu, pass: GPUComputePassEncoder, args: { x: Binding; out: Binding; rows: number; n: number; k: number }): void {
  const { rows, n, k } = args;
  check(Number.isInteger(k) && k >= 1 && k <= MAX_TOPK, `topk: k must be 1..${MAX_TOPK}, got ${k}`);
  check(Number.isInteger(rows) && rows >= 0 && Number.isInteger(n) && n >= k, `topk: bad shape ${rows}x${n} for k = ${k}`);
  if (rows === 0) return;
  const pipeline = gpu.pipeline(`topk-${k}`, () => topkWgsl(k));
  gpu.dispatch(pass, pipeline, [args.x, args.out, gpu.uniform(new Uint32Array([rows, n]))], grid(rows));
}
