// Argmax with its probability per row (A8's drafter confidence): [index, f32 bits] per row in `out`.
import { type Binding, type Gpu, check, grid } from '../gpu';
import { top1Wgsl } from '../shaders/top1';

export function top1(gpu: Gpu, pass: GPUComputePassEncoder, args: { x: Binding; out: Binding; rows: number; n: number; temperature?: number }): void {
  const { rows, n } = args;
  const temperature = args.temperature ?? 1;
  check(Number.isInteger(rows) && rows >= 0 && Number.isInteger(n) && n >= 1, `top1: bad shape ${rows}x${n}`);
  check(Number.isFinite(temperature) && temperature > 0, `top1: temperature must be positive, got ${temperature}`);
  check(args.out !== args.x, 'top1: `out` must be a separate buffer');
  if (rows === 0) return;
  const params = new ArrayBuffer(16);
  new Uint32Array(params).set([rows, n]);
  new Float32Array(params, 8, 1)[0] = 1 / temperature;
  gpu.dispatch(pass, gpu.pipeline('top1', () => top1Wgsl), [args.x, args.out, gpu.uniform(new Uint32Array(params))], grid(rows));
}

/** Reads top1's output: per row, the argmax and its probability. */
export function readTop1(words: Uint32Array): Array<{ token: number; probability: number }> {
  const floats = new Float32Array(words.buffer, words.byteOffset, words.length);
  return Array.from({ length: words.length / 2 }, (_, r) => ({ token: words[2 * r], probability: floats[2 * r + 1] }));
}
