import { GGMLType, type GGMLTypeId } from '../formats/ggml-types';
import { type Binding, type Gpu, check, grid } from '../gpu';
import { type ActivationRounding, ROUNDING_WORKGROUP, quantizeActivationsWgsl, roundingBlock } from '../shaders/quantize-activations';

export type { ActivationRounding } from '../shaders/quantize-activations';

/**
 * How llama.cpp's CPU backend rounds the activations before a dot product with weights of this
 * type (its vec_dot_type): 8-bit blocks of 32 for the legacy quants (Q8_0; Q8_1 rounds the same
 * values), 8-bit blocks of 256 with an f32 scale for the K-quants (Q8_K), f16 for F16 weights;
 * none for F32 (and BF16 is left exact). Used to compare with llama.cpp value for value.
 */
export function llamaCppActivationRounding(type: GGMLTypeId): ActivationRounding | null {
  switch (type) {
    case GGMLType.Q8_0: case GGMLType.Q4_0: case GGMLType.Q4_1: case GGMLType.Q5_0: case GGMLType.Q5_1:
      return 'q8_0';
    case GGMLType.Q4_K: case GGMLType.Q5_K: case GGMLType.Q6_K:
      return 'q8_k';
    case GGMLType.F16:
      return 'f16';
    default:
      return null;
  }
}

/** out = x with each block of `rule` quantized and dequantized; x is [count] f32, count a multiple of the block. */
export function quantizeActivations(gpu: Gpu, pass: GPUComputePassEncoder, args: { x: Binding; out: Binding; count: number; rule: ActivationRounding }): void {
  const block = roundingBlock(args.rule);
  check(Number.isInteger(args.count) && args.count >= 0 && args.count % block === 0, () => `quantizeActivations: ${args.count} values are not whole blocks of ${block} (${args.rule})`);
  check(args.x !== args.out, 'quantizeActivations: out must be another buffer');
  const blocks = args.count / block;
  const pipeline = gpu.pipeline(`quantize-activations-${args.rule}`, () => quantizeActivationsWgsl(args.rule));
  gpu.dispatch(pass, pipeline, [args.x, args.out, gpu.uniform(new Uint32Array([blocks]))], grid(Math.ceil(blocks / ROUNDING_WORKGROUP)));
}
