import { type Binding, type Gpu, check, grid } from '../gpu';
import { addWgsl } from '../shaders/elementwise';

/** out[i] = a[i] + b[i] for i < n (the residual add). `out` must not alias an input (WebGPU forbids a buffer bound both read-only and writable in one dispatch). */
export function add(gpu: Gpu, pass: GPUComputePassEncoder, args: { a: Binding; b: Binding; out: Binding; n: number }): void {
  check(Number.isInteger(args.n) && args.n >= 0, `add: bad length ${args.n}`);
  const pipeline = gpu.pipeline('add', addWgsl);
  const params = gpu.uniform(new Uint32Array([args.n, 0]));
  gpu.dispatch(pass, pipeline, [args.a, args.b, args.out, params], grid(Math.ceil(args.n / 256)));
}
