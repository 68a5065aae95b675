// InfLLM (B8): the cache keeps every token, split into memory units of `block` slots. Each step of
// each layer attends to the sinks' units, the window's units and the units whose representative
// tokens score highest against the step's queries, read block-sparsely. Everything runs on the GPU
// inside the step's submission:
//
// - While tokens are local, the attention mass they receive accumulates (per layer, per kv head).
// - When a unit leaves the window, its `representatives` tokens with the most mass are chosen
//   (selectTopK over the unit's slice of the mass) and kept as its representative keys.
// - A step scores every represented unit: the attention-mass kernel over the representative keys
//   only (softmax over them), then each unit sums its representatives' share (unitScores).
// - selectTopK picks the units (sinks' and window's forced), block-sparse attention reads them.
//
// Deviations from the paper: one selection per kv head (the paper: per layer, heads summed); unit
// relevance is the softmax share of its representatives rather than raw dot products summed; the
// window is whole units (up to a unit more than `recent`); retrieved units keep their original
// positions (the paper may place them at a fixed distance); everything stays on the GPU (no
// offloading, no LRU).
import { BINDING_ALIGN, type Gpu, align } from '../../gpu';
import { type AttentionMask, attentionMass } from '../../kernels/attention';
import { selectTopK, unitScores } from '../../kernels/select';
import type { Decoder, DecoderStep, LayerAttentionArgs } from '../../models/decoder';
import type { KvStats } from './compressed-cache';
import type { SelectionPolicy } from './policy';

const ALIGN = BINDING_ALIGN;
const alignUp = (n: number) => align(n, ALIGN);
const CAUSAL: AttentionMask = { kind: 'causal' };

export class UnitMemory {
  steps = 0;
  sparseSteps = 0;
  /** Units (from the start) whose representatives have been chosen. */
  private represented = 0;
  private readonly units: { block: number; representatives: number; count: number };
  private readonly maxUnits: number;
  private readonly maxSelected: number;
  /** Per layer [kvHeads][capacity] f32: attention mass received (accumulated while attended). */
  private readonly mass: GPUBuffer;
  private readonly massBytes: number;
  /** Per layer [kvHeads][maxUnits * representatives] u32: each unit's representative slots, ascending. */
  private readonly reps: GPUBuffer;
  private readonly repsBytes: number;
  /** [kvHeads] u32: representative slots a step scores (the same for every layer and head). */
  private readonly repCounts: GPUBuffer;
  /** Scratch: the representatives' scores [kvHeads][capacity], the units' [kvHeads][maxUnits], counts. */
  private readonly repScores: GPUBuffer;
  private readonly scores: GPUBuffer;
  private readonly scratchCounts: GPUBuffer;
  /** Per layer [kvHeads][maxSelected] u32 unit lists and [kvHeads] counts. */
  private readonly lists: GPUBuffer;
  private readonly listBytes: number;
  private readonly counts: GPUBuffer;

  constructor(
    private readonly gpu: Gpu,
    private readonly model: Decoder,
    readonly policy: SelectionPolicy,
    readonly capacity: number,
    maxStep: number,
  ) {
    const { kvHeads, layers } = model.config;
    this.units = policy.units!;
    const { block, representatives } = this.units;
    this.maxUnits = Math.ceil(capacity / block);
    this.maxSelected = Math.min(this.maxUnits, this.sinkUnits + this.units.count + this.windowUnits(maxStep));
    this.massBytes = alignUp(kvHeads * capacity * 4);
    this.mass = gpu.buffer(this.massBytes * layers, 'infllm attention mass');
    this.repsBytes = alignUp(kvHeads * this.maxUnits * representatives * 4);
    this.reps = gpu.buffer(this.repsBytes * layers, 'infllm representatives');
    this.repCounts = gpu.buffer(kvHeads * 4, 'infllm representative count');
    this.repScores = gpu.buffer(kvHeads * capacity * 4, 'infllm representative scores');
    this.scores = gpu.buffer(kvHeads * this.maxUnits * 4, 'infllm unit scores');
    this.scratchCounts = gpu.buffer(kvHeads * 4, 'infllm scratch counts');
    this.listBytes = alignUp(kvHeads * this.maxSelected * 4);
    this.lists = gpu.buffer(this.listBytes * layers, 'infllm unit lists');
    this.counts = gpu.buffer(ALIGN * layers, 'infllm unit counts');
  }

  private get sinkUnits(): number {
    return Math.ceil(this.policy.sinks / this.units.block);
  }

  /** Units of the window for a step of `count` tokens: the recent tokens (or the step) and one more for a partial unit. */
  private windowUnits(count: number): number {
    return Math.ceil(Math.max(this.policy.recent, count) / this.units.block) + 1;
  }

  stepArgs(count: number, kvLen: number): Pick<DecoderStep, 'mask' | 'layerAttention'> {
    const { block, representatives } = this.units;
    const kvHeads = this.model.config.kvHeads;
    const units = Math.ceil(kvLen / block);
    const window = this.windowUnits(count);
    this.steps++;
    const accumulate = (pass: GPUComputePassEncoder, layer: number, args: LayerAttentionArgs & { lse: GPUBuffer | GPUBufferBinding }, mask: AttentionMask) =>
      attentionMass(this.gpu, pass, { ...args, mask, mass: this.layerMass(layer), massStride: this.capacity, accumulate: true });
    if (units <= this.sinkUnits + this.units.count + window) {
      return { mask: CAUSAL, layerAttention: { mask: () => CAUSAL, after: (pass, layer, args) => accumulate(pass, layer, args, CAUSAL) } };
    }
    this.sparseSteps++;
    // Units that left the window since the last sparse step get their representatives now.
    const departed = units - window;
    const newUnits = Array.from({ length: Math.max(0, departed - this.represented) }, (_, i) => this.represented + i);
    this.represented = Math.max(this.represented, departed);
    this.gpu.write(this.repCounts, new Uint32Array(kvHeads).fill(departed * representatives));
    const masks: AttentionMask[] = [];
    return {
      mask: CAUSAL,
      layerAttention: {
        mask: (pass, layer, args) => {
          const reps = { buffer: this.reps, offset: layer * this.repsBytes, size: kvHeads * this.maxUnits * representatives * 4 };
          const repStride = this.maxUnits * representatives;
          for (const unit of newUnits) {
            selectTopK(this.gpu, pass, {
              x: this.layerMass(layer), rows: kvHeads, stride: this.capacity, start: unit * block, n: block, k: representatives,
              out: reps, outStride: repStride, outOffset: unit * representatives, counts: this.scratchCounts,
            });
          }
          // Each represented unit's relevance: its representatives' share of a softmax over all representatives.
          attentionMass(this.gpu, pass, {
            ...args, mask: { kind: 'block-sparse', blocks: reps, counts: this.repCounts, blockSize: 1, maxBlocks: repStride },
            mass: this.repScores, massStride: this.capacity,
          });
          unitScores(this.gpu, pass, { x: this.repScores, xStride: this.capacity, rep: reps, repStride, out: this.scores, outStride: this.maxUnits, heads: kvHeads, units: departed, per: representatives });
          const list = { buffer: this.lists, offset: layer * this.listBytes, size: kvHeads * this.maxSelected * 4 };
          const counts = { buffer: this.counts, offset: layer * ALIGN, size: kvHeads * 4 };
          selectTopK(this.gpu, pass, {
            x: this.scores, rows: kvHeads, n: units, stride: this.maxUnits, k: this.units.count, first: this.sinkUnits, last: window,
            out: list, counts, outStride: this.maxSelected,
          });
          masks[layer] = { kind: 'block-sparse', blocks: list, counts, blockSize: block, maxBlocks: this.maxSelected };
          return masks[layer];
        },
        after: (pass, layer, args) => accumulate(pass, layer, args, masks[layer]),
      },
    };
  }

  private layerMass(layer: number): GPUBufferBinding {
    return { buffer: this.mass, offset: layer * this.massBytes, size: this.model.config.kvHeads * this.capacity * 4 };
  }

  /** Stats: every token stays; `selected` has the slots of the units the first layer's first kv head read at the latest sparse step. */
  async stats(tokens: number): Promise<KvStats> {
    const { policy } = this;
    let positions: number[] = [];
    if (this.sparseSteps > 0) {
      const count = new Uint32Array(await this.gpu.read(this.counts, 0, 4))[0];
      const units = new Uint32Array(await this.gpu.read(this.lists, 0, count * 4));
      const { block } = this.units;
      positions = Array.from(units).flatMap((u) => Array.from({ length: Math.max(0, Math.min(block, tokens - u * block)) }, (_, i) => u * block + i));
    }
    return {
      policy: policy.name, budget: policy.budget, keptTokens: tokens, evictedTokens: 0, evictions: 0, keptPositions: [],
      selected: { steps: this.steps, sparseSteps: this.sparseSteps, positions },
    };
  }

  /** Back to nothing (the session rolls back only to 0): no units, no mass. */
  reset(_length: number): void {
    this.represented = 0;
    this.sparseSteps = 0;
    this.gpu.write(this.mass, new Float32Array(this.mass.size / 4));
  }

  destroy(): void {
    for (const b of [this.mass, this.reps, this.repCounts, this.repScores, this.scores, this.scratchCounts, this.lists, this.counts]) b.destroy();
  }
}
