// Sparse attention over a cache that keeps every token (TokenSelect B6, TidalDecode B7): each step
// attends to the sinks, a recent window and the top-k keys by attention mass, chosen on the GPU
// inside the step's submission. Nothing is read back and nothing moves, so RoPE positions are
// the original ones.
//
// Per kv head, each selecting layer writes the ascending slot list that block-sparse attention
// reads (src/kernels/select.ts): TokenSelect layers score the keys with their own queries first
// (a log-sum-exp pass and the mass kernel, without attention's V reads); TidalDecode's selection
// layers attend fully and rank keys by that attention's mass, and the sparse layers after them
// reuse the list. The recent window always covers the step's own tokens.
import type { Gpu } from '../../gpu';
import { type AttentionMask, attentionMass } from '../../kernels/attention';
import { selectTopK } from '../../kernels/select';
import type { Decoder, DecoderStep, LayerAttentionArgs } from '../../models/decoder';
import type { KvStats } from './compressed-cache';
import type { LayerRole, SelectionPolicy } from './policy';

const ALIGN = 256;
const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;
const CAUSAL: AttentionMask = { kind: 'causal' };

export class KeySelection {
  readonly roles: LayerRole[];
  /** Steps run, and those that attended sparsely (context past the budget). */
  steps = 0;
  sparseSteps = 0;
  /** f32 [kvHeads][capacity]: the latest ranking's attention mass. */
  private readonly mass: GPUBuffer;
  /** u32 [layers][kvHeads][maxSelected] slot lists and u32 [layers][kvHeads] counts, per selecting layer. */
  private readonly lists: GPUBuffer;
  private readonly counts: GPUBuffer;
  private readonly listBytes: number;
  private readonly maxSelected: number;
  private lastStep: { kvLen: number; recent: number } | null = null;

  constructor(
    private readonly gpu: Gpu,
    private readonly model: Decoder,
    readonly policy: SelectionPolicy,
    readonly capacity: number,
    maxStep: number,
  ) {
    const c = model.config;
    this.roles = policy.roles(c.layers);
    this.maxSelected = Math.min(capacity, policy.sinks + policy.topK + Math.max(policy.recent, maxStep));
    this.listBytes = alignUp(c.kvHeads * this.maxSelected * 4);
    this.mass = gpu.buffer(c.kvHeads * capacity * 4, 'key selection mass');
    this.lists = gpu.buffer(this.listBytes * c.layers, 'key selection lists');
    this.counts = gpu.buffer(ALIGN * c.layers, 'key selection counts');
  }

  /**
   * The policy's part of a forward step of `count` tokens whose cache holds `kvLen` slots after it:
   * plain causal attention while the context fits the budget, else per-layer selection.
   */
  stepArgs(count: number, kvLen: number): Pick<DecoderStep, 'mask' | 'layerAttention'> {
    const { policy } = this;
    const recent = Math.max(policy.recent, count);
    this.steps++;
    if (kvLen <= policy.sinks + policy.topK + recent) return { mask: CAUSAL };
    this.sparseSteps++;
    this.lastStep = { kvLen, recent };
    let latest: AttentionMask = CAUSAL; // the list of the latest 'full-select' layer
    return {
      mask: CAUSAL,
      layerAttention: {
        mask: (pass, layer, args) => {
          const role = this.roles[layer];
          if (role === 'select') {
            attentionMass(this.gpu, pass, { ...args, mask: CAUSAL, mass: this.mass, massStride: this.capacity });
            return this.select(pass, layer, args, recent);
          }
          return role === 'sparse' ? latest : CAUSAL;
        },
        after: (pass, layer, args) => {
          if (this.roles[layer] !== 'full-select') return;
          attentionMass(this.gpu, pass, { ...args, mask: CAUSAL, mass: this.mass, massStride: this.capacity });
          latest = this.select(pass, layer, args, recent);
        },
      },
    };
  }

  /** Records the top-k selection over `mass` into layer `layer`'s list; returns the mask that reads it. */
  private select(pass: GPUComputePassEncoder, layer: number, args: LayerAttentionArgs, recent: number): AttentionMask {
    const { policy, maxSelected } = this;
    const kvHeads = this.model.config.kvHeads;
    const blocks = { buffer: this.lists, offset: layer * this.listBytes, size: kvHeads * maxSelected * 4 };
    const counts = { buffer: this.counts, offset: layer * ALIGN, size: kvHeads * 4 };
    selectTopK(this.gpu, pass, {
      x: this.mass, rows: kvHeads, n: args.kvLen, stride: this.capacity, k: policy.topK, first: policy.sinks, last: recent,
      out: blocks, counts, outStride: maxSelected,
    });
    return { kind: 'block-sparse', blocks, counts, blockSize: 1, maxBlocks: maxSelected };
  }

  /**
   * Stats: every token stays in the cache; `selected` has the slots the first selecting layer's
   * first kv head attended to at the latest sparse step (read back here, not during generation).
   */
  async stats(tokens: number): Promise<KvStats> {
    const { policy } = this;
    const stats: KvStats = { policy: policy.name, budget: policy.budget, keptTokens: tokens, evictedTokens: 0, evictions: 0, keptPositions: [] };
    const layer = this.roles.findIndex((role) => role === 'select' || role === 'full-select');
    let positions: number[] = [];
    if (this.lastStep && layer >= 0) {
      const count = new Uint32Array(await this.gpu.read(this.counts, layer * ALIGN, 4))[0];
      positions = Array.from(new Uint32Array(await this.gpu.read(this.lists, layer * this.listBytes, count * 4)));
    }
    return { ...stats, selected: { steps: this.steps, sparseSteps: this.sparseSteps, positions } };
  }

  reset(): void {
    this.lastStep = null;
  }

  destroy(): void {
    this.mass.destroy();
    this.lists.destroy();
    this.counts.destroy();
  }
}
