// CPU references for Token Recycling's kernels.

export function treeFillRef(candidates: Uint32Array, templateNodes: Uint32Array, count: number, root: number, k: number): Uint32Array {
  const ids = new Uint32Array(count);
  ids[0] = root;
  for (let i = 1; i < count; i++) ids[i] = candidates[ids[templateNodes[2 * i]] * k + templateNodes[2 * i + 1]];
  return ids;
}

export function candidatesUpdateRef(candidates: Uint32Array, ids: Uint32Array, top: Uint32Array, rows: number, k: number): Uint32Array {
  const out = candidates.slice();
  for (let row = 0; row < rows; row++) out.set(top.subarray(row * k, (row + 1) * k), ids[row] * k);
  return out;
}
