// CPU references for src/kernels/vision-prune.ts, in float64.

export function columnSumsRef(x: ArrayLike<number>, rows: number, n: number, stride: number, start = 0): Float64Array {
  const out = new Float64Array(n);
  for (let h = 0; h < rows; h++) for (let j = 0; j < n; j++) out[j] += x[h * stride + start + j];
  return out;
}

/** Index of the largest value, ties to the lowest index (−1 for none above −∞). */
function argmax(n: number, value: (j: number) => number): number {
  let best = -1, bestValue = -Infinity;
  for (let j = 0; j < n; j++) if (value(j) > bestValue) { bestValue = value(j); best = j; }
  return best;
}

/** ToDRE's greedy k-center: k − pick order for each chosen row, 0 for the rest. */
export function kCenterRef(features: ArrayLike<number>, n: number, dim: number, k: number, first = 0): Float64Array {
  const row = (j: number) => Array.from({ length: dim }, (_, d) => features[(first + j) * dim + d]);
  const norms = Array.from({ length: n }, (_, j) => Math.hypot(...row(j)));
  const scores = new Float64Array(n);
  const distance = [...norms]; // the first pick is the largest norm
  for (let pick = 0; pick < k; pick++) {
    const c = argmax(n, (j) => (scores[j] > 0 ? -1 : distance[j]));
    scores[c] = k - pick;
    const rc = row(c);
    for (let j = 0; j < n; j++) {
      if (scores[j] > 0) continue;
      const dot = row(j).reduce((s, f, d) => s + f * rc[d], 0);
      const d = 1 - dot / (Math.max(norms[j], 1e-12) * Math.max(norms[c], 1e-12));
      distance[j] = pick === 0 ? d : Math.min(distance[j], d);
    }
  }
  return scores;
}

/**
 * HiPrune: the order in which patches are flagged as anchors (the unflagged patch with the most
 * object-layer attention) and their 4-neighbours (up, left, right, down), `flagged` of them.
 */
export function hipruneFlagsRef(objectScores: ArrayLike<number>, n: number, width: number, flagged: number): number[] {
  const order: number[] = [];
  const isFlagged = new Set<number>();
  const rows = Math.ceil(n / width);
  while (order.length < flagged) {
    const anchor = argmax(n, (j) => (isFlagged.has(j) ? -1 : objectScores[j]));
    const [x, y] = [anchor % width, Math.floor(anchor / width)];
    for (const [dx, dy] of [[0, 0], [0, -1], [-1, 0], [1, 0], [0, 1]]) {
      const [px, py] = [x + dx, y + dy];
      const j = py * width + px;
      if (order.length >= flagged || px < 0 || py < 0 || px >= width || py >= rows || j >= n || isFlagged.has(j)) continue;
      isFlagged.add(j);
      order.push(j);
    }
  }
  return order;
}

/** HiPrune's choice of `keep` patches, ascending: the flagged ones, then the most last-layer attention. */
export function hipruneKeepRef(objectScores: ArrayLike<number>, lastScores: ArrayLike<number>, n: number, width: number, flagged: number, keep: number): number[] {
  const chosen = hipruneFlagsRef(objectScores, n, width, Math.min(flagged, keep));
  const rest = Array.from({ length: n }, (_, j) => j).filter((j) => !chosen.includes(j)).sort((a, b) => lastScores[b] - lastScores[a] || a - b);
  return [...chosen, ...rest.slice(0, keep - chosen.length)].sort((a, b) => a - b);
}
