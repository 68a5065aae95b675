// Dense CPU attention in f64 with an explicit visibility function, the KV formats' CPU
// (de)quantizers, and the page-table mapping. Tests only.
import { f16ToF32, f32ToF16 } from '../formats/quantize';
import type { KvFormat } from '../kernels/kv-cache';

export type Visible = (t: number, slot: number) => boolean;

export interface MaskRef {
  kind: 'causal' | 'none' | 'tree' | 'sink-window' | 'lambda' | 'block-sparse';
  treeEnd?: ArrayLike<number>;
  sinks?: number;
  window?: number;
  /** block-sparse: per kv head, the listed block indices. */
  blocks?: number[][];
  blockSize?: number;
}

/** Visibility of key `slot` to query t, for kv head `kvHead`: the dense mask every kernel must match. */
export function visibleRef(mask: MaskRef, queryStart: number, kvLen: number, kvHead = 0): Visible {
  return (t, slot) => {
    const qs = queryStart + t;
    if (slot >= kvLen) return false;
    switch (mask.kind) {
      case 'none': return true;
      case 'causal': return slot <= qs;
      case 'tree': {
        if (slot < queryStart) return true;
        const a = slot - queryStart;
        return a <= t && t < mask.treeEnd![a];
      }
      case 'sink-window':
      case 'lambda': return slot <= qs && (slot < mask.sinks! || qs - slot < mask.window!);
      case 'block-sparse': return slot <= qs && mask.blocks![kvHead].includes(Math.floor(slot / mask.blockSize!));
    }
  };
}

export interface AttentionRefArgs {
  /** [T][heads][D] */
  q: Float32Array;
  /** Logical [kvLen][kvHeads][D] */
  k: Float32Array;
  v: Float32Array;
  T: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  kvLen: number;
  scale: number;
  /** Visibility per kv head. */
  visible: (kvHead: number) => Visible;
  bias?: Float32Array;
}

/** The keys query t of head h sees, and their scores q·k·scale + bias, in slot order. */
function visibleScores(a: AttentionRefArgs, t: number, h: number): { slots: number[]; scores: number[] } {
  const { heads, kvHeads, headDim: D, kvLen } = a;
  const kh = Math.floor(h / (heads / kvHeads));
  const visible = a.visible(kh);
  const slots: number[] = [];
  const scores: number[] = [];
  for (let j = 0; j < kvLen; j++) {
    if (!visible(t, j)) continue;
    let s = 0;
    for (let d = 0; d < D; d++) s += a.q[(t * heads + h) * D + d] * a.k[(j * kvHeads + kh) * D + d];
    slots.push(j);
    scores.push(s * a.scale + (a.bias ? a.bias[j] : 0));
  }
  return { slots, scores };
}

/** out [T][heads][D] and lse [T][heads] (−Infinity for a row that sees no key). */
export function attentionRef(a: AttentionRefArgs): { out: Float64Array; lse: Float64Array } {
  const { T, heads, kvHeads, headDim: D } = a;
  const out = new Float64Array(T * heads * D);
  const lse = new Float64Array(T * heads).fill(-Infinity);
  const group = heads / kvHeads;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / group);
      const { slots, scores } = visibleScores(a, t, h);
      if (!scores.length) continue;
      const m = Math.max(...scores);
      let sum = 0;
      for (const s of scores) sum += Math.exp(s - m);
      lse[t * heads + h] = m + Math.log(sum);
      scores.forEach((s, i) => {
        const p = Math.exp(s - m) / sum;
        for (let d = 0; d < D; d++) out[(t * heads + h) * D + d] += p * a.v[(slots[i] * kvHeads + kh) * D + d];
      });
    }
  }
  return { out, lse };
}

/** Σ over queries [from, to) and the query heads of each kv head of p(t, h, j): mass [kvHeads][kvLen]. */
export function attentionMassRef(a: AttentionRefArgs, lse: Float64Array, from = 0, to = a.T): Float64Array {
  const { heads, kvHeads, kvLen } = a;
  const mass = new Float64Array(kvHeads * kvLen);
  const group = heads / kvHeads;
  for (let t = from; t < to; t++) {
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / group);
      const { slots, scores } = visibleScores(a, t, h);
      slots.forEach((j, i) => { mass[kh * kvLen + j] += Math.exp(scores[i] - lse[t * heads + h]); });
    }
  }
  return mass;
}

/** The CPU twin of the kernels' Gumbel noise (src/shaders/attention.ts gumbelWgsl). */
export function gumbelRef(seed: number, querySlot: number, head: number, slot: number): number {
  const hash = (x: number) => {
    let h = Math.imul(x >>> 0, 0x9e3779b9) >>> 0;
    h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0; h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0; h ^= h >>> 16;
    return h >>> 0;
  };
  const h = hash((seed ^ hash(Math.imul(querySlot, 65599) + head) ^ hash(slot + 0x632be5ab)) >>> 0);
  const u = ((h >>> 9) + 0.5) / 8388608;
  return -Math.log(-Math.log(u));
}

/** Keyformer's score mass (B3): Σ over queries [from, to) and heads of softmax((s + g) / τ) per key, mass [kvHeads][kvLen]. */
export function noisedAttentionMassRef(a: AttentionRefArgs, queryStart: number, noise: { seed: number; temperature: number }, from = 0, to = a.T): Float64Array {
  const { heads, kvHeads, kvLen } = a;
  const mass = new Float64Array(kvHeads * kvLen);
  const group = heads / kvHeads;
  for (let t = from; t < to; t++) {
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / group);
      const { slots, scores } = visibleScores(a, t, h);
      const noised = scores.map((s, i) => (s + gumbelRef(noise.seed, queryStart + t, h, slots[i])) / noise.temperature);
      const m = Math.max(...noised);
      const sum = noised.reduce((acc, s) => acc + Math.exp(s - m), 0);
      slots.forEach((j, i) => { mass[kh * kvLen + j] += Math.exp(noised[i] - m) / sum; });
    }
  }
  return mass;
}

const roundEven = (x: number) => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/**
 * The cache's stored values, dequantized: physical data words and scales (as read back from the
 * GPU) -> f32 [slots][kvHeads][D].
 */
export function dequantizeKvRef(format: KvFormat, group: number, data: ArrayBuffer, scales: ArrayBuffer, slots: number, kvHeads: number, D: number): Float32Array {
  const out = new Float32Array(slots * kvHeads * D);
  const words = new Uint32Array(data);
  const scaleWords = new Uint32Array(scales);
  for (let row = 0; row < slots * kvHeads; row++) {
    for (let d = 0; d < D; d++) {
      const i = row * D + d;
      const s = scaleWords[row * (D / group) + Math.floor(d / group)];
      const [scale, min] = [f16ToF32(s & 0xffff), f16ToF32(s >>> 16)];
      switch (format) {
        case 'f32': out[i] = new Float32Array(data)[i]; break;
        case 'f16': out[i] = f16ToF32((words[i >> 1] >>> ((i & 1) * 16)) & 0xffff); break;
        case 'int8': out[i] = (((words[i >> 2] >>> ((i & 3) * 8)) << 24) >> 24) * scale; break;
        case 'int4': out[i] = ((words[i >> 3] >>> ((i & 7) * 4)) & 15) * scale + min; break;
      }
    }
  }
  return out;
}

/** What kvWrite stores for one group of values, as q codes and the f16 (scale, min). */
export function quantizeGroupRef(format: 'int8' | 'int4', values: ArrayLike<number>): { q: number[]; scale: number; min: number } {
  const xs = Array.from(values);
  if (format === 'int8') {
    const scale = f16ToF32(f32ToF16(Math.fround(Math.max(...xs.map(Math.abs)) / 127)));
    return { q: xs.map((x) => (scale > 0 ? Math.max(-127, Math.min(127, roundEven(x / scale))) : 0)), scale, min: 0 };
  }
  const lo = Math.min(...xs), hi = Math.max(...xs);
  const scale = f16ToF32(f32ToF16(Math.fround((hi - lo) / 15)));
  const min = f16ToF32(f32ToF16(lo));
  return { q: xs.map((x) => (scale > 0 ? Math.max(0, Math.min(15, roundEven((x - min) / scale))) : 0)), scale, min };
}

/** Logical slot -> physical slot. */
export function physicalSlotRef(pageTable: ArrayLike<number>, slot: number, page = 16): number {
  return pageTable[Math.floor(slot / page)] * page + (slot % page);
}
