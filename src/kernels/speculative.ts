// Speculative sampling's verify decision on the GPU: which drafts of a verified tree the target
// accepts and the token it emits after them (method in src/shaders/speculative.ts).
import { type Binding, type Gpu, check } from '../gpu';
import { speculativeAcceptWgsl } from '../shaders/speculative';

export interface SpeculativeAcceptArgs {
  /** f32 [nodes][vocab]: the target's sampling distribution at each tree node (sample(..., probs)). */
  probs: Binding;
  /** u32 [nodes]: the tree's tokens, the root first. */
  tokens: Binding;
  /** i32 [nodes]: each node's parent, -1 for the root; DFS preorder (parents before children). */
  parents: Binding;
  nodes: number;
  vocab: number;
  /**
   * f32 [nodes][draftStride]: row i (its first vocab values) is the drafter's distribution that
   * node i's children were drawn from, without replacement. Absent: point-mass drafts.
   */
  draft?: Binding;
  /** Floats from one draft row to the next; default vocab. */
  draftStride?: number;
  /** f32 [trials][vocab] scratch; another for `draft`'s remainder when draft is given. */
  residual: Binding;
  left?: Binding;
  /** u32 [trials][nodes + 2]: path length L, the emitted token, then the L path nodes (root first). */
  result: Binding;
  seed: number;
  step: number;
  /** Independent walks over the same tree, each with its own draws (tests). Default 1. */
  trials?: number;
}

export function speculativeAccept(gpu: Gpu, pass: GPUComputePassEncoder, args: SpeculativeAcceptArgs): void {
  const { nodes, vocab } = args;
  const trials = args.trials ?? 1;
  check(Number.isInteger(nodes) && nodes >= 1 && Number.isInteger(vocab) && vocab >= 1, `speculativeAccept: bad shape ${nodes}x${vocab}`);
  check(Number.isInteger(trials) && trials >= 1 && trials <= 65535, `speculativeAccept: trials must be 1..65535, got ${trials}`);
  check(nodes <= 65536, `speculativeAccept: ${nodes} nodes is over 65536 (draw counters are 16 bits)`);
  check(!args.draft === !args.left, 'speculativeAccept: draft and left come together');
  const withDraft = !!args.draft;
  const pipeline = gpu.pipeline(`speculative-accept${withDraft ? '-draft' : ''}`, () => speculativeAcceptWgsl(withDraft));
  const draftStride = args.draftStride ?? vocab;
  check(Number.isInteger(draftStride) && draftStride >= vocab, `speculativeAccept: draft rows of ${draftStride} floats are shorter than the vocabulary`);
  const params = gpu.uniform(new Uint32Array([nodes, vocab, args.seed >>> 0, args.step >>> 0, draftStride, 0, 0, 0]));
  const bindings = [args.probs, args.tokens, args.parents, args.residual, args.result, ...(withDraft ? [args.draft!, args.left!] : []), params];
  gpu.dispatch(pass, pipeline, bindings, [trials, 1, 1]);
}
