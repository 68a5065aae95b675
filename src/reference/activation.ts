// CPU references for src/kernels/activation.ts, in f64 with the exact definitions (erf to ~1e-15).
import type { ActivationKind } from '../shaders/activation';

/** erf in f64: Maclaurin series below 3 (terms stay < e^9, so ~1e-12 absolute), continued fraction for erfc above. */
export function erf(x: number): number {
  const z = Math.abs(x);
  if (z < 3) {
    // erf(z) = 2/√π Σ (-1)^n z^(2n+1) / (n! (2n+1))
    let term = z, sum = z;
    for (let n = 1; n < 100 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  // erfc(z) = exp(-z^2)/√π / (z + (1/2)/(z + 1/(z + (3/2)/(z + 2/(z + ...))))), evaluated from the tail.
  let fraction = z;
  for (let k = 60; k >= 1; k--) fraction = z + k / 2 / fraction;
  const erfc = Math.exp(-z * z) / Math.sqrt(Math.PI) / fraction;
  return Math.sign(x) * (1 - erfc);
}

export function activationRef(kind: ActivationKind, x: number): number {
  switch (kind) {
    case 'silu':
      return x / (1 + Math.exp(-x));
    case 'gelu-tanh':
      return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    case 'gelu-erf':
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'gelu-quick':
      return x / (1 + Math.exp(-1.702 * x));
    case 'relu':
      return Math.max(x, 0);
  }
}

/** act(gate) * up, element-wise. */
export function gatedActivationRef(kind: ActivationKind, gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: gate.length }, (_, i) => activationRef(kind, gate[i]) * up[i]);
}
