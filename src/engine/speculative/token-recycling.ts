// Token Recycling (A2): no draft model. A candidate matrix M[V][8], kept on the GPU, holds for
// every token the top-8 next tokens the target computed the last time that token was verified.
// Each step fills a static tree template from M (rank paths: the i-th candidate of the root, then
// the j-th candidate of that token, ...), verifies it, and refreshes M from every verified row,
// all in the verify step's submission. M persists across requests (hot start).
import type { Gpu } from '../../gpu';
import { candidatesUpdate, treeFill } from '../../kernels/token-recycling';
import { topk } from '../../kernels/topk';
import { AcceptanceStats } from './sizing';
import type { GpuDraftTree, Strategy, VerifiedStep } from './strategy';

export const CANDIDATES = 8;

/**
 * The paper's tree template "2.2.2" (80 nodes in 6 levels; Luowaterbi/TokenRecycling), as rank
 * paths in level order: better-ranked nodes get more children and go deeper. A prefix of this
 * order is a valid smaller tree, which is how the tree is sized.
 */
export const TEMPLATE_2_2_2: readonly (readonly number[])[] = [
  [0], [1], [2], [3], [4], [5], [6], [7],
  [0, 0], [0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [0, 6], [0, 7], [1, 0], [1, 1], [1, 2], [1, 3], [2, 0], [2, 1], [2, 2], [3, 0], [3, 1], [4, 0], [5, 0], [6, 0], [7, 0],
  [0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 0, 3], [0, 0, 4], [0, 0, 5], [0, 0, 6], [0, 0, 7], [0, 1, 0], [0, 1, 1], [0, 1, 2], [0, 2, 0], [0, 2, 1], [0, 3, 0], [0, 4, 0], [0, 5, 0], [0, 6, 0], [0, 7, 0], [1, 0, 0], [1, 0, 1], [1, 1, 0], [2, 0, 0], [3, 0, 0], [4, 0, 0], [5, 0, 0],
  [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 2], [0, 0, 0, 3], [0, 0, 0, 4], [0, 0, 1, 0], [0, 0, 1, 1], [0, 0, 2, 0], [0, 0, 3, 0], [0, 0, 4, 0], [0, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0],
  [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 2], [0, 0, 0, 1, 0], [0, 0, 0, 2, 0], [0, 0, 1, 0, 0], [0, 1, 0, 0, 0], [1, 0, 0, 0, 0],
  [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0],
];

/**
 * The first `size` template paths as a tree in DFS preorder (the order the tree mask needs):
 * parents of the draft nodes (-1 for the root's children) and each node's rank.
 */
export function templateTree(template: readonly (readonly number[])[], size: number): { parents: number[]; ranks: number[]; templateIndex: number[] } {
  const paths = template.slice(0, size).map((p) => [...p]);
  const originalIndex = new Map(paths.map((p, i) => [p.join(','), i]));
  paths.sort((a, b) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  });
  const index = new Map(paths.map((p, i) => [p.join(','), i]));
  const parents = paths.map((p) => {
    if (p.length === 1) return -1;
    const parent = index.get(p.slice(0, -1).join(','));
    if (parent === undefined) throw new Error(`tree template: path ${p.join(',')} has no parent in the first ${size} paths`);
    return parent;
  });
  return { parents, ranks: paths.map((p) => p.at(-1)!), templateIndex: paths.map((p) => originalIndex.get(p.join(','))!) };
}

export class TokenRecycling implements Strategy {
  readonly name = 'token-recycling';
  private readonly candidates: GPUBuffer;
  private readonly top: GPUBuffer;
  private readonly templates = new Map<number, { parents: number[]; nodes: GPUBuffer; templateIndex: number[] }>();
  /** How often each template node (in template order) was on the accepted path: A7's P(v). */
  private readonly acceptance: AcceptanceStats;
  private lastTemplateIndex: number[] = [];

  constructor(private readonly gpu: Gpu, private readonly vocabSize: number, private readonly options: { maxNodes?: number; template?: readonly (readonly number[])[] } = {}) {
    this.candidates = gpu.buffer(vocabSize * CANDIDATES * 4, 'token recycling candidates'); // zeros: a cold start
    this.top = gpu.buffer((this.template.length + 1) * CANDIDATES * 4, 'token recycling top-k');
    // Prior: the template's order is the paper's estimate of acceptance, best first.
    this.acceptance = new AcceptanceStats(this.template.length, (i) => 0.6 / (1 + i / 4));
  }

  private get template(): readonly (readonly number[])[] {
    return this.options.template ?? TEMPLATE_2_2_2;
  }

  propose(_context: readonly number[], _root: number, budget: number): GpuDraftTree {
    const size = Math.min(budget, this.options.maxNodes ?? this.template.length, this.template.length);
    let entry = this.templates.get(size);
    if (!entry) {
      const { parents, ranks, templateIndex } = templateTree(this.template, size);
      // Node 0 is the root; draft node i is node i + 1.
      const nodes = Uint32Array.from([0, 0, ...parents.flatMap((p, i) => [p + 1, ranks[i]])]);
      entry = { parents, nodes: this.gpu.upload(nodes, 'tree template'), templateIndex };
      this.templates.set(size, entry);
    }
    const { parents, nodes } = entry;
    this.lastTemplateIndex = entry.templateIndex;
    return {
      parents,
      fill: (pass, ids, root) => treeFill(this.gpu, pass, { candidates: this.candidates, templateNodes: nodes, ids, count: parents.length + 1, root, k: CANDIDATES }),
      afterVerify: (pass, logits, ids, rows) => {
        topk(this.gpu, pass, { x: logits, out: this.top, rows, n: this.vocabSize, k: CANDIDATES });
        candidatesUpdate(this.gpu, pass, { ids, top: this.top, candidates: this.candidates, rows, k: CANDIDATES });
      },
    };
  }

  observe(step: VerifiedStep): void {
    this.acceptance.record(this.lastTemplateIndex, step.path.slice(1).map((node) => this.lastTemplateIndex[node - 1]));
  }

  /** A tree of n nodes is the template's first n: 1 + the sum of their acceptance rates. */
  expectedTokens(n: number): number {
    return this.acceptance.expected(n);
  }

  destroy(): void {
    this.candidates.destroy();
    this.top.destroy();
    for (const { nodes } of this.templates.values()) nodes.destroy();
  }
}
