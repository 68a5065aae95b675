// CPU matmul for tests: y[m][n] = Σ_k x[m][k] · w[n][k] (+ bias[n]) in f64, on weights
// dequantized by quantize.ts exactly as ggml (and the GPU kernels) dequantize them.
import type { GGMLTypeId } from '../formats/ggml-types';
import { dequantize } from '../formats/quantize';

/** y = x · wᵀ (+ bias) with f64 accumulation. x is [M][K], w is [N][K] f32. */
export function matmulRef(x: Float32Array, w: Float32Array, M: number, N: number, K: number, bias?: Float32Array): Float32Array {
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = bias ? bias[n]! : 0;
      for (let k = 0; k < K; k++) sum += x[m * K + k]! * w[n * K + k]!;
      y[m * N + n] = sum;
    }
  }
  return y;
}

/**
 * Σ_k |x[m][k] · w[n][k]| (+ |bias[n]|): the scale of the rounding error an f32 dot product can
 * make, whatever order it adds in. Tolerances are stated relative to it.
 */
export function matmulMagnitudeRef(x: Float32Array, w: Float32Array, M: number, N: number, K: number, bias?: Float32Array): Float32Array {
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = bias ? Math.abs(bias[n]!) : 0;
      for (let k = 0; k < K; k++) sum += Math.abs(x[m * K + k]! * w[n * K + k]!);
      y[m * N + n] = sum;
    }
  }
  return y;
}

/** matmulRef on a weight given as GGUF bytes of `type` ([N][K]). */
export function quantizedMatmulRef(x: Float32Array, type: GGMLTypeId, bytes: Uint8Array, M: number, N: number, K: number, bias?: Float32Array): Float32Array {
  return matmulRef(x, dequantize(type, bytes, N * K), M, N, K, bias);
}
