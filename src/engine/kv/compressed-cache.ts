// A session's KV cache under a compression policy (./policy.ts): a fixed allocation of
// budget + one step's worth of slots, so memory stays flat however long generation runs. Steps
// append at the end; when the next step would not fit, the policy picks the `budget` slots each
// kv head of each layer keeps and their K/V move to the front (kvMove per head), so the cache stays
// dense and the attention kernels read it unchanged: slot i of head h holds that head's i-th kept
// token, all older than the step's queries, so the causal mask still holds. Between evictions the
// policy's mask limits what each query sees.
//
// Kept keys keep the rotation of their original position. Sink tokens of streaming policies are
// the exception: their rotated K and V are captured once (f32, before any quantization) and written
// again at the position the policy wants before each step, rotated from the captured copy, so
// moving them never compounds rounding, even in an int4 cache.
import { BINDING_ALIGN, type Gpu, GpuError, align } from '../../gpu';
import { type KvCache, kvMove, kvWrite } from '../../kernels/kv-cache';
import { rope } from '../../kernels/rope';
import type { Decoder, DecoderStep } from '../../models/decoder';
import type { KvPolicy } from './policy';

export interface KvStats {
  policy: string;
  budget: number;
  /** Tokens in the cache now (per layer). */
  keptTokens: number;
  /** Tokens evicted so far. */
  evictedTokens: number;
  evictions: number;
  /** Positions in the text of the tokens the first layer keeps, in cache order (other layers may keep others). */
  keptPositions: number[];
  /**
   * Selection policies (nothing evicted): steps run, those that attended sparsely, the positions
   * the latest one attended to (first selecting layer, first kv head), and TokenSelect's selection
   * cache: layer-steps that reused their last scores, and those that scored.
   */
  selected?: { steps: number; sparseSteps: number; positions: number[]; cache?: { hits: number; misses: number } };
}

const ALIGN = BINDING_ALIGN;
const alignUp = (n: number) => align(n, ALIGN);

export class CompressedCache {
  /** Slots in use (the same count in every layer). */
  used = 0;
  /** RoPE position of the next token. */
  nextPosition = 0;
  evictedTokens = 0;
  evictions = 0;
  /** Position in the text of the token in each slot, per layer and kv head (sinks are rotated elsewhere, see placeSinks). */
  readonly positions: Int32Array[][];
  /** [layers][kvHeads][capacity] f32 attention mass, layer l at byte massLayerBytes * l. */
  private readonly mass?: GPUBuffer;
  private readonly massLayerBytes: number;
  /** Each layer's part of `mass`, as the decoder binds it. */
  private readonly massBindings: GPUBufferBinding[] = [];
  private readonly moves: GPUBuffer;
  private readonly movesLayerBytes: number;
  /** Sinks: captured rotated K and V per layer, the rotated copy, the per-sink shifts and their slots. */
  private readonly sinkState?: { k: GPUBuffer[]; v: GPUBuffer[]; rotated: GPUBuffer; shifts: GPUBuffer; slots: GPUBuffer; captured: number; placed: number[] };

  constructor(
    private readonly gpu: Gpu,
    private readonly model: Decoder,
    readonly policy: KvPolicy,
    private readonly caches: KvCache[],
    readonly capacity: number,
  ) {
    const c = model.config;
    if (capacity <= policy.budget) throw new GpuError('bad-argument', `KV cache of ${capacity} slots has no room beyond its budget of ${policy.budget}`);
    this.positions = Array.from({ length: c.layers }, () => Array.from({ length: c.kvHeads }, () => new Int32Array(capacity)));
    this.movesLayerBytes = alignUp(c.kvHeads * policy.budget * 8);
    this.moves = gpu.buffer(this.movesLayerBytes * c.layers, 'kv eviction moves');
    this.massLayerBytes = alignUp(c.kvHeads * capacity * 4);
    if (policy.massRows) {
      const mass = (this.mass = gpu.buffer(this.massLayerBytes * c.layers, 'kv attention mass'));
      this.massBindings = Array.from({ length: c.layers }, (_, l) => ({ buffer: mass, offset: this.massLayerBytes * l, size: c.kvHeads * capacity * 4 }));
    }
    if (policy.sinks > 0) {
      const rowFloats = policy.sinks * c.kvHeads * c.headDim;
      this.sinkState = {
        k: Array.from({ length: c.layers }, () => gpu.buffer(rowFloats * 4, 'kv sink k')),
        v: Array.from({ length: c.layers }, () => gpu.buffer(rowFloats * 4, 'kv sink v')),
        rotated: gpu.buffer(rowFloats * 4, 'kv sink k rotated'),
        shifts: gpu.buffer(policy.sinks * 4, 'kv sink shifts'),
        slots: gpu.upload(Uint32Array.from({ length: policy.sinks }, (_, i) => i), 'kv sink slots'),
        captured: 0,
        placed: Array.from({ length: policy.sinks }, (_, i) => i),
      };
    }
  }

  stats(): KvStats {
    return {
      policy: this.policy.name, budget: this.policy.budget, keptTokens: this.used, evictedTokens: this.evictedTokens, evictions: this.evictions,
      keptPositions: Array.from(this.positions[0][0].subarray(0, this.used)),
    };
  }

  /** Makes room for a step of `count` tokens, evicting down to the budget if they would not fit. */
  async makeRoom(count: number): Promise<void> {
    if (count > this.capacity - this.policy.budget) throw new GpuError('bad-argument', `a step of ${count} tokens is larger than the KV cache's room beyond its budget`);
    if (this.used + count <= this.capacity) return;
    await this.evict();
  }

  private async evict(): Promise<void> {
    const { policy, model: { config: c } } = this;
    const stride = this.capacity;
    let mass: Float32Array[] | undefined;
    if (this.mass) {
      const all = new Float32Array(await this.gpu.read(this.mass));
      mass = Array.from({ length: c.layers }, (_, l) => all.subarray((l * this.massLayerBytes) / 4, (l * this.massLayerBytes) / 4 + c.kvHeads * stride));
    }
    const keep = policy.keep({ used: this.used, layers: c.layers, kvHeads: c.kvHeads, stride, mass });
    // Every head of every layer moves its `budget` kept slots to the front, in order (a slot that
    // stays put moves onto itself): u32 [layer][kvHead][budget][from, to].
    const moves = new Uint32Array((this.movesLayerBytes / 4) * c.layers);
    keep.forEach((heads, l) => heads.forEach((slots, h) => {
      if (heads.length !== c.kvHeads || slots.length !== policy.budget || slots.some((s, i) => !Number.isInteger(s) || s < i || s >= this.used || (i > 0 && s <= slots[i - 1]))) {
        throw new GpuError('bad-argument', `${policy.name}: each kv head of layer ${l} must keep ${policy.budget} ascending slots below ${this.used}`);
      }
      slots.forEach((slot, i) => moves.set([slot, i], this.movesLayerBytes / 4 * l + 2 * (h * policy.budget + i)));
      const positions = this.positions[l][h];
      positions.set(slots.map((s) => positions[s]));
    }));
    if (keep.length !== c.layers) throw new GpuError('bad-argument', `${policy.name}: kept slots for ${keep.length} layers, not ${c.layers}`);
    this.gpu.write(this.moves, moves);
    await this.gpu.run((pass) => {
      this.caches.forEach((cache, l) => {
        kvMove(this.gpu, pass, { cache, pairs: { buffer: this.moves, offset: this.movesLayerBytes * l, size: c.kvHeads * policy.budget * 8 }, count: policy.budget, perHead: true });
      });
    }, 'kv eviction');
    if (this.mass && mass) {
      // H2O carries each kept token's mass on; SnapKV votes afresh from its next observation window.
      const next = new Float32Array(this.mass.size / 4);
      if (policy.massRows === 'all') {
        mass.forEach((layer, l) => {
          for (let h = 0; h < c.kvHeads; h++) keep[l][h].forEach((slot, i) => { next[(l * this.massLayerBytes) / 4 + h * stride + i] = layer[h * stride + slot]; });
        });
      }
      this.gpu.write(this.mass, next);
    }
    this.evictedTokens += this.used - policy.budget;
    this.evictions++;
    this.used = policy.budget;
  }

  /**
   * The policy's part of a forward step of `count` tokens at the end of the cache: mask, attention
   * mass and sink capture for the decoder, and, recorded first into the same pass, the sinks
   * placed where the policy wants them for this step.
   */
  stepArgs(pass: GPUComputePassEncoder, count: number): Pick<DecoderStep, 'mask' | 'mass' | 'capture'> {
    const { policy } = this;
    const args: Pick<DecoderStep, 'mask' | 'mass' | 'capture'> = { mask: policy.mask };
    const sinks = this.sinkState;
    if (sinks && sinks.captured === policy.sinks && policy.sinkPositions) this.placeSinks(pass, sinks);
    if (sinks && this.used < policy.sinks) {
      const rows = Math.min(policy.sinks - this.used, count);
      args.capture = { k: sinks.k, v: sinks.v, rows, dstRow: this.used };
      sinks.captured = this.used + rows;
    }
    if (policy.massRows) {
      const last = policy.massRows === 'all' ? count : policy.massRows.last;
      args.mass = { buffers: this.massBindings, stride: this.capacity, rows: [Math.max(0, count - last), count], accumulate: count < last || policy.massRows === 'all', noise: policy.massNoise?.(this.nextPosition) };
    }
    return args;
  }

  /** Rotates the captured sinks to this step's positions and writes them to slots 0..sinks-1 of every layer. */
  private placeSinks(pass: GPUComputePassEncoder, sinks: NonNullable<CompressedCache['sinkState']>): void {
    const { policy, model: { config: c, weights } } = this;
    const window = policy.budget - policy.sinks;
    // The oldest non-sink slot the step's first query (at slot `used`) sees, and its position.
    const windowSlot = Math.max(policy.sinks, this.used - window + 1);
    const windowStart = windowSlot < this.used ? this.positions[0][0][windowSlot] : this.nextPosition;
    const wanted = policy.sinkPositions!(this.nextPosition, windowStart);
    if (wanted.every((p, i) => p === sinks.placed[i])) return;
    this.gpu.write(sinks.shifts, Int32Array.from(wanted, (p, i) => p - i));
    sinks.placed = wanted;
    this.caches.forEach((cache, l) => {
      rope(this.gpu, pass, {
        x: sinks.k[l], out: sinks.rotated, table: weights.ropeTable, positions: sinks.shifts,
        tokens: policy.sinks, heads: c.kvHeads, headDim: c.headDim, ropeDim: c.ropeDim, layout: c.ropeLayout,
      });
      kvWrite(this.gpu, pass, { cache, k: sinks.rotated, v: sinks.v[l], slots: sinks.slots, count: policy.sinks });
    });
  }

  /** Records a finished step of `count` tokens. */
  advance(count: number): void {
    for (const positions of this.positions.flat()) for (let i = 0; i < count; i++) positions[this.used + i] = this.nextPosition + i;
    this.used += count;
    this.nextPosition += count;
  }

  /** Back to an empty cache. */
  reset(): void {
    this.used = 0;
    this.nextPosition = 0;
    this.evictedTokens = 0;
    this.evictions = 0;
    if (this.sinkState) {
      this.sinkState.captured = 0;
      this.sinkState.placed = this.sinkState.placed.map((_, i) => i);
    }
    if (this.mass) this.gpu.write(this.mass, new Float32Array(this.mass.size / 4));
  }

  destroy(): void {
    this.moves.destroy();
    this.mass?.destroy();
    if (this.sinkState) for (const b of [...this.sinkState.k, ...this.sinkState.v, this.sinkState.rotated, this.sinkState.shifts, this.sinkState.slots]) b.destroy();
  }
}
