// CPU references for src/kernels/elementwise.ts. Each op is one f32 rounding, so Math.fround of
// the f64 result is exactly what a correctly rounding GPU gives.
export function addRef(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((x, i) => x + b[i]);
}

export function mulRef(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((x, i) => x * b[i]);
}

export function scaleRef(x: Float32Array, factor: number): Float32Array {
  const f = Math.fround(factor);
  return x.map((v) => v * f);
}

/** x[r][c] (op) vector[c]. */
export function broadcastRowsRef(op: 'add' | 'mul', x: Float32Array, vector: Float32Array, n: number): Float32Array {
  return x.map((v, i) => (op === 'add' ? v + vector[i % n] : v * vector[i % n]));
}
