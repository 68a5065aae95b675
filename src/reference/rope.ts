// CPU reference for src/kernels/rope.ts, in f64 throughout (angles from f64 frequencies, f64
// cos/sin), on contiguous [tokens][heads][headDim] tensors.

export function ropeRef(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  freqs: ArrayLike<number>,
  shape: { tokens: number; heads: number; headDim: number; ropeDim?: number; layout: 'normal' | 'neox' },
): Float64Array {
  const { tokens, heads, headDim, layout } = shape;
  const ropeDim = shape.ropeDim ?? headDim;
  const half = ropeDim / 2;
  const out = Float64Array.from(x);
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const [i0, i1] = layout === 'neox' ? [i, i + half] : [2 * i, 2 * i + 1];
        const angle = positions[t] * freqs[i];
        const c = Math.cos(angle), s = Math.sin(angle);
        const a = x[base + i0], b = x[base + i1];
        out[base + i0] = a * c - b * s;
        out[base + i1] = a * s + b * c;
      }
    }
  }
  return out;
}
