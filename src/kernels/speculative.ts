// Speculative verification's decision on the GPU: which drafts of a verified tree the target
// accepts and the token it emits after them, for sampling and for greedy decoding, and the K/V
// moves that keep the accepted path (methods in src/shaders/speculative.ts).
import { type Binding, type Gpu, check } from '../gpu';
import { acceptedPathWgsl, greedyAcceptWgsl, speculativeAcceptWgsl } from '../shaders/speculative';
import { bindingBytes } from './matmul';

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

export interface GreedyAcceptArgs {
  /** u32 [nodes]: the target's argmax after each tree node. */
  targetNext: Binding;
  /** u32 [nodes]: the tree's tokens, the root first. */
  tokens: Binding;
  /** i32 [nodes]: each node's parent, -1 for the root; DFS preorder. */
  parents: Binding;
  nodes: number;
  /** u32 [nodes + 2]: path length L, the bonus token, then the L path nodes (root first). */
  result: Binding;
}

/** Greedy acceptance: the longest path of drafts that are the target's own argmax choices (acceptGreedyRef). */
export function greedyAccept(gpu: Gpu, pass: GPUComputePassEncoder, args: GreedyAcceptArgs): void {
  const { nodes } = args;
  check(Number.isInteger(nodes) && nodes >= 1, `greedyAccept: bad node count ${nodes}`);
  check(bindingBytes(args.result) >= (nodes + 2) * 4, () => `greedyAccept: result must hold ${nodes + 2} u32`);
  const params = gpu.uniform(new Uint32Array([nodes, 0, 0, 0]));
  gpu.dispatch(pass, gpu.pipeline('greedy-accept', () => greedyAcceptWgsl), [args.targetNext, args.tokens, args.parents, args.result, params], [1, 1, 1]);
}

export interface AcceptedPathArgs {
  /** An accept kernel's result ([L, token, path...]); the path's tokens are written at tokenOffset. */
  result: Binding;
  tokenOffset: number;
  /** u32 [nodes]: the tree's tokens. */
  tokens: Binding;
  /** u32 [pairs][2]: (from slot, to slot) for kvMove. */
  moves: Binding;
  /** Pairs written: the tree's depth (its longest path has depth + 1 nodes, the root needing no move). */
  pairs: number;
  /** The cache length: the root's slot. */
  first: number;
}

/** The accepted path's tokens and the K/V moves that commit it (acceptedPathRef). */
export function acceptedPath(gpu: Gpu, pass: GPUComputePassEncoder, args: AcceptedPathArgs): void {
  const { pairs, tokenOffset, first } = args;
  check(Number.isInteger(pairs) && pairs >= 0 && Number.isInteger(tokenOffset) && tokenOffset >= 2 && Number.isInteger(first) && first >= 0, 'acceptedPath: bad arguments');
  check(bindingBytes(args.result) >= (tokenOffset + pairs + 1) * 4, () => `acceptedPath: result must hold ${tokenOffset + pairs + 1} u32`);
  check(bindingBytes(args.moves) >= Math.max(1, pairs) * 8, () => `acceptedPath: moves must hold ${pairs} pairs`);
  const params = gpu.uniform(new Uint32Array([first, pairs, tokenOffset, 0]));
  gpu.dispatch(pass, gpu.pipeline('accepted-path', () => acceptedPathWgsl), [args.result, args.tokens, args.moves, params], [1, 1, 1]);
}
