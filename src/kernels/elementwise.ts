import { type Binding, type Gpu, check, grid } from '../gpu';
import { ELEMENTWISE_WORKGROUP, addInPlaceWgsl, addWgsl, broadcastRowsWgsl, copyWgsl, mulWgsl, scaleWgsl } from '../shaders/elementwise';

type Pass = GPUComputePassEncoder;

const checkLength = (name: string, n: number) => check(Number.isInteger(n) && n >= 0, `${name}: bad length ${n}`);
const workgroups = (n: number) => grid(Math.ceil(n / ELEMENTWISE_WORKGROUP));

/** out[i] = a[i] + b[i] for i < n (the residual add). `out` must not alias an input (WebGPU forbids a buffer bound both read-only and writable in one dispatch). */
export function add(gpu: Gpu, pass: Pass, args: { a: Binding; b: Binding; out: Binding; n: number }): void {
  checkLength('add', args.n);
  const pipeline = gpu.pipeline('add', addWgsl);
  const params = gpu.uniform(new Uint32Array([args.n, 0]));
  gpu.dispatch(pass, pipeline, [args.a, args.b, args.out, params], grid(Math.ceil(args.n / 256)));
}

/**
 * dst[dstOffset + i] = src[srcOffset + i] for i < n, offsets in elements: moves rows between
 * buffers inside a compute pass, where byte offsets of bindings would need 256-byte alignment.
 */
export function copy(gpu: Gpu, pass: Pass, args: { src: Binding; dst: Binding; n: number; srcOffset?: number; dstOffset?: number }): void {
  checkLength('copy', args.n);
  const srcOffset = args.srcOffset ?? 0, dstOffset = args.dstOffset ?? 0;
  check(Number.isInteger(srcOffset) && srcOffset >= 0 && Number.isInteger(dstOffset) && dstOffset >= 0, 'copy: offsets must be non-negative integers');
  check(args.src !== args.dst, 'copy: src and dst must be different buffers');
  const pipeline = gpu.pipeline('copy', copyWgsl);
  gpu.dispatch(pass, pipeline, [args.src, args.dst, gpu.uniform(new Uint32Array([args.n, srcOffset, dstOffset]))], workgroups(args.n));
}

/** x[i] += y[i] for i < n: the residual add into the residual stream itself. */
export function addInPlace(gpu: Gpu, pass: Pass, args: { x: Binding; y: Binding; n: number }): void {
  checkLength('addInPlace', args.n);
  check(args.x !== args.y, 'addInPlace: x and y must be different buffers (use scale by 2)');
  const pipeline = gpu.pipeline('add-in-place', addInPlaceWgsl);
  gpu.dispatch(pass, pipeline, [args.x, args.y, gpu.uniform(new Uint32Array([args.n]))], workgroups(args.n));
}

/** out[i] = a[i] * b[i] for i < n. */
export function mul(gpu: Gpu, pass: Pass, args: { a: Binding; b: Binding; out: Binding; n: number }): void {
  checkLength('mul', args.n);
  check(args.out !== args.a && args.out !== args.b, 'mul: `out` must not alias an input');
  const pipeline = gpu.pipeline('mul', mulWgsl);
  gpu.dispatch(pass, pipeline, [args.a, args.b, args.out, gpu.uniform(new Uint32Array([args.n]))], workgroups(args.n));
}

/** out[i] = x[i] * factor for i < n (factor rounded to f32); omit `out` to scale in place. */
export function scale(gpu: Gpu, pass: Pass, args: { x: Binding; out?: Binding; factor: number; n: number }): void {
  checkLength('scale', args.n);
  check(Number.isFinite(args.factor), `scale: bad factor ${args.factor}`);
  check(args.out !== args.x, 'scale: for in-place scaling leave out `out`');
  const inPlace = !args.out;
  const pipeline = gpu.pipeline(inPlace ? 'scale-in-place' : 'scale', () => scaleWgsl(inPlace));
  const params = new Uint32Array(2);
  params[0] = args.n;
  new Float32Array(params.buffer)[1] = args.factor;
  const buffers = args.out ? [args.x, args.out] : [args.x];
  gpu.dispatch(pass, pipeline, [...buffers, gpu.uniform(params)], workgroups(args.n));
}

/** x[r][c] += bias[c] over x [rows][n], in place (biases of linear layers, position embeddings). */
export function addBias(gpu: Gpu, pass: Pass, args: { x: Binding; bias: Binding; rows: number; n: number }): void {
  broadcastRows(gpu, pass, 'add', args.x, args.bias, args.rows, args.n);
}

/** x[r][c] *= scale[c] over x [rows][n], in place (per-channel scales such as ViT layer scale). */
export function mulColumns(gpu: Gpu, pass: Pass, args: { x: Binding; scale: Binding; rows: number; n: number }): void {
  broadcastRows(gpu, pass, 'mul', args.x, args.scale, args.rows, args.n);
}

function broadcastRows(gpu: Gpu, pass: Pass, op: 'add' | 'mul', x: Binding, vector: Binding, rows: number, n: number): void {
  const name = op === 'add' ? 'addBias' : 'mulColumns';
  check(Number.isInteger(rows) && rows >= 0 && Number.isInteger(n) && n >= 1, `${name}: bad shape ${rows}x${n}`);
  check(x !== vector, `${name}: x and the vector must be different buffers`);
  const pipeline = gpu.pipeline(`broadcast-rows-${op}`, () => broadcastRowsWgsl(op));
  gpu.dispatch(pass, pipeline, [x, vector, gpu.uniform(new Uint32Array([rows, n]))], workgroups(rows * n));
}
