// References for greedy verification's kernels (src/shaders/speculative.ts): the acceptance walk
// and the path commit.

/**
 * Walks the verified tree from the root while a child (in index order) holds the target's choice;
 * returns the kept node indices (root first) and the bonus token: the target's choice after the
 * last of them (A1 step 4, A2 step 5).
 */
export function acceptGreedyRef(tokens: readonly number[], parents: readonly number[], targetNext: ArrayLike<number>): { path: number[]; bonus: number } {
  const path = [0];
  for (;;) {
    const current = path.at(-1)!;
    const next = parents.findIndex((p, c) => p === current && tokens[c] === targetNext[current]);
    if (next < 0) return { path, bonus: targetNext[current] };
    path.push(next);
  }
}

/** The path's tokens, and `pairs` K/V moves (from slot, to slot) that commit it after `first` cached tokens, identities past its end. */
export function acceptedPathRef(tokens: readonly number[], path: readonly number[], pairs: number, first: number): { tokens: number[]; moves: number[] } {
  const moves = Array.from({ length: pairs }, (_, k) => [first + (k + 1 < path.length ? path[k + 1] : k + 1), first + k + 1]).flat();
  return { tokens: path.map((node) => tokens[node]), moves };
}
