import { type Binding, type Gpu, check, grid } from '../gpu';
import { ACTIVATION_WORKGROUP, type ActivationKind, activationKinds, activationWgsl, gatedActivationWgsl } from '../shaders/activation';

export type { ActivationKind } from '../shaders/activation';

/** out[i] = act(x[i]) for i < n; omit `out` to apply in place. Which model uses which kind: src/shaders/activation.ts. */
export function activation(gpu: Gpu, pass: GPUComputePassEncoder, args: { kind: ActivationKind; x: Binding; out?: Binding; n: number }): void {
  check(activationKinds.includes(args.kind), `activation: unknown kind ${args.kind}`);
  check(Number.isInteger(args.n) && args.n >= 0, `activation: bad length ${args.n}`);
  check(args.out !== args.x, 'activation: for in-place use leave out `out`');
  const inPlace = !args.out;
  const pipeline = gpu.pipeline(`activation-${args.kind}${inPlace ? '-in-place' : ''}`, () => activationWgsl(args.kind, inPlace));
  const params = gpu.uniform(new Uint32Array([args.n]));
  const buffers = args.out ? [args.x, args.out] : [args.x];
  gpu.dispatch(pass, pipeline, [...buffers, params], grid(Math.ceil(args.n / ACTIVATION_WORKGROUP)));
}

interface GatedCommon {
  /** Default 'silu' (SwiGLU). */
  kind?: ActivationKind;
  /** f32 [rows][n]. */
  out: Binding;
  rows: number;
  /** Width of the FFN (intermediate size). */
  n: number;
}

/** Gate and up from two projections, each f32 [rows][n]. */
export interface GatedSeparateArgs extends GatedCommon {
  gate: Binding;
  up: Binding;
}

/** Gate and up from one merged projection: f32 [rows][2n], gate in the first n columns of each row. */
export interface GatedFusedArgs extends GatedCommon {
  gateUp: Binding;
}

/** GLU: out = act(gate) * up (SwiGLU with the default 'silu', GeGLU with 'gelu-tanh'). */
export function gatedActivation(gpu: Gpu, pass: GPUComputePassEncoder, args: GatedSeparateArgs | GatedFusedArgs): void {
  const kind = args.kind ?? 'silu';
  check(activationKinds.includes(kind), `gatedActivation: unknown kind ${kind}`);
  check(Number.isInteger(args.rows) && args.rows >= 0 && Number.isInteger(args.n) && args.n >= 0, `gatedActivation: bad shape ${args.rows}x${args.n}`);
  const fused = 'gateUp' in args;
  const inputs = fused ? [args.gateUp] : [args.gate, args.up];
  check(!inputs.includes(args.out), 'gatedActivation: `out` must be a separate buffer');
  const pipeline = gpu.pipeline(`gated-${kind}${fused ? '-fused' : ''}`, () => gatedActivationWgsl(kind, fused));
  const params = gpu.uniform(new Uint32Array([args.rows, args.n]));
  gpu.dispatch(pass, pipeline, [...inputs, args.out, params], grid(Math.ceil((args.rows * args.n) / ACTIVATION_WORKGROUP)));
}

/** SwiGLU (llama/qwen FFN): out = silu(gate) * up. */
export function swiGlu(gpu: Gpu, pass: GPUComputePassEncoder, args: GatedSeparateArgs | GatedFusedArgs): void {
  gatedActivation(gpu, pass, { ...args, kind: 'silu' });
}
