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
//
// TokenSelect's selection cache: before scoring, a kernel compares the step's mean query with the
// one that last scored the layer; when similar, the scoring passes get zero workgroups (indirect
// dispatch) and the layer selects again from its previous scores, so the window still moves.
// Keys added since then have no score (zero) unless the window holds them.
import { BINDING_ALIGN, type Gpu, align } from '../../gpu';
import { type AttentionMask, attentionMass, attentionMassGrid } from '../../kernels/attention';
import { selectTopK, selectionReuse } from '../../kernels/select';
import type { Decoder, DecoderStep, LayerAttentionArgs } from '../../models/decoder';
import type { KvStats } from './compressed-cache';
import type { LayerRole, SelectionPolicy } from './policy';

const ALIGN = BINDING_ALIGN;
const alignUp = (n: number) => align(n, ALIGN);
const CAUSAL: AttentionMask = { kind: 'causal' };

export class KeySelection {
  readonly roles: LayerRole[];
  /** Steps run, and those that attended sparsely (context past the budget). */
  steps = 0;
  sparseSteps = 0;
  /** f32 [layers][kvHeads][capacity]: each layer's latest ranking's attention mass. */
  private readonly mass: GPUBuffer;
  private readonly massBytes: number;
  /** TokenSelect's selection cache: per layer the fingerprint that ranked, [ranked, hits, misses], and the scoring passes' workgroups. */
  private readonly reuse?: { fingerprints: GPUBuffer; fingerprintBytes: number; state: GPUBuffer; dispatchArgs: GPUBuffer };
  /** u32 [layers][kvHeads][maxSelected] slot lists and u32 [layers][kvHeads] counts, per selecting layer. */
  private readonly lists: GPUBuffer;
  private readonly counts: GPUBuffer;
  private readonly listBytes: number;
  private readonly maxSelected: number;
  /** Whether a sparse step has written the lists since the last reset (stats read them). */
  private selectedOnce = false;

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
    this.massBytes = alignUp(c.kvHeads * capacity * 4);
    this.mass = gpu.buffer(this.massBytes * c.layers, 'key selection mass');
    this.lists = gpu.buffer(this.listBytes * c.layers, 'key selection lists');
    this.counts = gpu.buffer(ALIGN * c.layers, 'key selection counts');
    if (policy.reuse !== null) {
      const fingerprintBytes = alignUp(c.heads * c.headDim * 4);
      this.reuse = {
        fingerprints: gpu.buffer(fingerprintBytes * c.layers, 'key selection fingerprints'),
        fingerprintBytes,
        state: gpu.buffer(ALIGN * c.layers, 'key selection cache state'),
        dispatchArgs: gpu.device.createBuffer({ label: 'key selection scoring workgroups', size: ALIGN * c.layers, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.INDIRECT | GPUBufferUsage.COPY_DST }),
      };
    }
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
    this.selectedOnce = true;
    let latest: AttentionMask = CAUSAL; // the list of the latest 'full-select' layer
    return {
      mask: CAUSAL,
      layerAttention: {
        mask: (pass, layer, args) => {
          const role = this.roles[layer];
          if (role === 'select') {
            this.score(pass, layer, args);
            return this.select(pass, layer, args, recent);
          }
          return role === 'sparse' ? latest : CAUSAL;
        },
        after: (pass, layer, args) => {
          if (this.roles[layer] !== 'full-select') return;
          attentionMass(this.gpu, pass, { ...args, mask: CAUSAL, mass: this.layerMass(layer), massStride: this.capacity });
          latest = this.select(pass, layer, args, recent);
        },
      },
    };
  }

  private layerMass(layer: number): GPUBufferBinding {
    return { buffer: this.mass, offset: layer * this.massBytes, size: this.model.config.kvHeads * this.capacity * 4 };
  }

  /** TokenSelect: the layer's keys scored by its own queries, unless the selection cache reuses the last scores. */
  private score(pass: GPUComputePassEncoder, layer: number, args: LayerAttentionArgs): void {
    const massArgs = { ...args, mask: CAUSAL, mass: this.layerMass(layer), massStride: this.capacity };
    const reuse = this.reuse;
    if (!reuse) return attentionMass(this.gpu, pass, massArgs);
    const c = this.model.config;
    const grids = attentionMassGrid(massArgs);
    const dispatchArgs = { buffer: reuse.dispatchArgs, offset: layer * ALIGN };
    selectionReuse(this.gpu, pass, {
      q: args.q, rows: args.T, width: c.heads * c.headDim, threshold: this.policy.reuse!,
      fingerprint: { buffer: reuse.fingerprints, offset: layer * reuse.fingerprintBytes, size: c.heads * c.headDim * 4 },
      state: { buffer: reuse.state, offset: layer * ALIGN, size: 12 }, dispatchArgs, grids: [grids.scoring!, grids.mass],
    });
    attentionMass(this.gpu, pass, { ...massArgs, indirect: dispatchArgs });
  }

  /** Records the top-k selection over the layer's scores into its list; returns the mask that reads it. */
  private select(pass: GPUComputePassEncoder, layer: number, args: LayerAttentionArgs, recent: number): AttentionMask {
    const { policy, maxSelected } = this;
    const kvHeads = this.model.config.kvHeads;
    const blocks = { buffer: this.lists, offset: layer * this.listBytes, size: kvHeads * maxSelected * 4 };
    const counts = { buffer: this.counts, offset: layer * ALIGN, size: kvHeads * 4 };
    selectTopK(this.gpu, pass, {
      x: this.layerMass(layer), rows: kvHeads, n: args.kvLen, stride: this.capacity, k: policy.topK, first: policy.sinks, last: recent,
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
    if (this.selectedOnce && layer >= 0) {
      const count = new Uint32Array(await this.gpu.read(this.counts, layer * ALIGN, 4))[0];
      positions = Array.from(new Uint32Array(await this.gpu.read(this.lists, layer * this.listBytes, count * 4)));
    }
    let cache: { hits: number; misses: number } | undefined;
    if (this.reuse) {
      const state = new Uint32Array(await this.gpu.read(this.reuse.state));
      cache = { hits: 0, misses: 0 };
      for (let l = 0; l < this.roles.length; l++) {
        cache.hits += state[(l * ALIGN) / 4 + 1];
        cache.misses += state[(l * ALIGN) / 4 + 2];
      }
    }
    return { ...stats, selected: { steps: this.steps, sparseSteps: this.sparseSteps, positions, cache } };
  }

  /**
   * After a rollback (to any length): no ranking is reused, and no stale score outranks an
   * unscored key (scores past the context a layer last scored must be zero for the selection cache).
   */
  reset(_length: number): void {
    this.selectedOnce = false;
    this.gpu.write(this.mass, new Float32Array(this.mass.size / 4));
    if (this.reuse) this.gpu.write(this.reuse.state, new Uint32Array(this.reuse.state.size / 4));
  }

  destroy(): void {
    if (this.reuse) for (const b of [this.reuse.fingerprints, this.reuse.state, this.reuse.dispatchArgs]) b.destroy();
    this.mass.destroy();
    this.lists.destroy();
    this.counts.destroy();
  }
}
