import { type Binding, type Gpu, check, grid } from '../gpu';
import { argmaxWgsl, softmaxWgsl } from '../shaders/softmax';

/** softmax(x * scale) over each row of x [rows][n]; omit `out` to write in place. One workgroup per row. */
export function softmax(gpu: Gpu, pass: GPUComputePassEncoder, args: { x: Binding; out?: Binding; rows: number; n: number; scale?: number }): void {
  check(Number.isInteger(args.rows) && args.rows >= 0 && Number.isInteger(args.n) && args.n >= 1, `softmax: bad shape ${args.rows}x${args.n}`);
  const scale = args.scale ?? 1;
  check(Number.isFinite(scale) && scale > 0, `softmax: scale must be positive and finite, got ${scale}`);
  check(args.out !== args.x, 'softmax: for in-place use leave out `out`');
  const variant = { subgroups: gpu.features.subgroups, inPlace: !args.out };
  const pipeline = gpu.pipeline(`softmax${variant.subgroups ? '-subgroups' : ''}${variant.inPlace ? '-in-place' : ''}`, () => softmaxWgsl(variant));
  const params = new Uint32Array(4);
  params[0] = args.rows;
  params[1] = args.n;
  new Float32Array(params.buffer)[2] = scale;
  const buffers = args.out ? [args.x, args.out] : [args.x];
  gpu.dispatch(pass, pipeline, [...buffers, gpu.uniform(params)], grid(args.rows));
}

/** out[r] (u32) = index of the largest value of row r of x [rows][n]; ties go to the lowest index. One workgroup per row. */
export function argmax(gpu: Gpu, pass: GPUComputePassEncoder, args: { x: Binding; out: Binding; rows: number; n: number }): void {
  check(Number.isInteger(args.rows) && args.rows >= 0 && Number.isInteger(args.n) && args.n >= 1, `argmax: bad shape ${args.rows}x${args.n}`);
  check(args.out !== args.x, 'argmax: `out` must be a separate buffer');
  const subgroups = gpu.features.subgroups;
  const pipeline = gpu.pipeline(`argmax${subgroups ? '-subgroups' : ''}`, () => argmaxWgsl({ subgroups }));
  gpu.dispatch(pass, pipeline, [args.x, args.out, gpu.uniform(new Uint32Array([args.rows, args.n]))], grid(args.rows));
}
