// CPU references for llama.cpp's activation rounding (ggml quantize_row_q8_0 / q8_K, f16).
import { dequantize, quantize } from '../formats/quantize';
import { GGMLType } from '../formats/ggml-types';
import type { ActivationRounding } from '../kernels/quantize-activations';

const roundEven = (x: number) => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

export function quantizeActivationsRef(x: Float32Array, rule: ActivationRounding): Float32Array {
  if (rule === 'q8_0') return dequantize(GGMLType.Q8_0, quantize(GGMLType.Q8_0, x), x.length);
  if (rule === 'f16') return dequantize(GGMLType.F16, quantize(GGMLType.F16, x), x.length);
  const out = new Float32Array(x.length);
  for (let b = 0; b < x.length; b += 256) {
    let amax = 0, vmax = 0;
    for (let i = b; i < b + 256; i++) if (Math.abs(x[i]) > amax) (amax = Math.abs(x[i])), (vmax = x[i]);
    if (amax === 0) continue;
    const iscale = Math.fround(-127 / vmax);
    const d = Math.fround(1 / iscale);
    for (let i = b; i < b + 256; i++) out[i] = Math.min(127, roundEven(Math.fround(iscale * x[i]))) * d;
  }
  return out;
}
