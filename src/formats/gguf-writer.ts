// GGUF writer (v3 by default): metadata of every value type, tensors given as raw bytes of a GGML
// type or as f32 data converted/quantized here, each tensor's data aligned and padded. Used to make
// test fixtures and to convert models; `encodeGGUFParts` yields the file piece by piece so a large
// model can be streamed to disk with one quantized tensor in memory at a time.

import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, type GGUFArray, GGUFError, GGUFType, type GGUFValue, ggufScalarSize, ggufTypeName,
} from './gguf';
import { QUANTIZABLE_TYPES, findTypeInfo, unsupportedTypeMessage } from './ggml-types';
import { canQuantize, quantize } from './quantize';

export type GGUFTensorSpec =
  /** Bytes already in the layout of `type` (ggml type id), rows of dims[0] elements. */
  | { name: string; dims: readonly number[]; type: number; data: Uint8Array }
  /** f32 values (dims[0] fastest) to store as `type`: F32, F16, BF16 or a quantized type quantize.ts has. */
  | { name: string; dims: readonly number[]; type: number; f32: Float32Array };

export interface GGUFWriteSpec {
  /** 3 (default) or 2. */
  version?: 2 | 3;
  /** Data alignment; written as general.alignment when not the default 32. */
  alignment?: number;
  metadata?: Iterable<readonly [string, GGUFValue]> | Record<string, GGUFValue>;
  tensors?: readonly GGUFTensorSpec[];
}

const utf8 = new TextEncoder();

/** Growable little-endian byte buffer. */
class ByteWriter {
  private buf: Uint8Array<ArrayBuffer> = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.byteLength) {
      let cap = this.buf.byteLength * 2;
      while (cap < at + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.length += n;
    return at;
  }

  // reserve() may replace buf/view: call it before touching them.
  u32(v: number): void { const at = this.reserve(4); this.view.setUint32(at, v, true); }
  u64(v: number | bigint): void { const at = this.reserve(8); this.view.setBigUint64(at, BigInt(v), true); }
  bytes(b: Uint8Array): void { const at = this.reserve(b.byteLength); this.buf.set(b, at); }
  string(s: string): void { const b = utf8.encode(s); this.u64(b.byteLength); this.bytes(b); }
  zeros(n: number): void { const at = this.reserve(n); this.buf.fill(0, at, this.length); }

  scalar(type: GGUFType, v: unknown, what: string): void {
    const size = ggufScalarSize(type)!;
    const at = this.reserve(size);
    const view = this.view;
    const num = (): number => {
      if (typeof v !== 'number') throw new GGUFError(`${what}: ${ggufTypeName(type)} needs a number, got ${typeof v}`);
      return v;
    };
    const int = (lo: number, hi: number): number => {
      const n = num();
      if (!Number.isInteger(n) || n < lo || n > hi) throw new GGUFError(`${what}: ${n} does not fit in ${ggufTypeName(type)}`);
      return n;
    };
    const big = (lo: bigint, hi: bigint): bigint => {
      const b = typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v;
      if (typeof b !== 'bigint' || b < lo || b > hi) throw new GGUFError(`${what}: ${String(v)} does not fit in ${ggufTypeName(type)}`);
      return b;
    };
    switch (type) {
      case GGUFType.UINT8: view.setUint8(at, int(0, 0xff)); break;
      case GGUFType.INT8: view.setInt8(at, int(-0x80, 0x7f)); break;
      case GGUFType.UINT16: view.setUint16(at, int(0, 0xffff), true); break;
      case GGUFType.INT16: view.setInt16(at, int(-0x8000, 0x7fff), true); break;
      case GGUFType.UINT32: view.setUint32(at, int(0, 0xffffffff), true); break;
      case GGUFType.INT32: view.setInt32(at, int(-0x80000000, 0x7fffffff), true); break;
      case GGUFType.FLOAT32: view.setFloat32(at, num(), true); break;
      case GGUFType.FLOAT64: view.setFloat64(at, num(), true); break;
      case GGUFType.UINT64: view.setBigUint64(at, big(0n, 0xffffffffffffffffn), true); break;
      case GGUFType.INT64: view.setBigInt64(at, big(-0x8000000000000000n, 0x7fffffffffffffffn), true); break;
      case GGUFType.BOOL:
        if (typeof v !== 'boolean') throw new GGUFError(`${what}: BOOL needs a boolean, got ${typeof v}`);
        view.setUint8(at, v ? 1 : 0);
        break;
      default: throw new GGUFError(`${what}: ${ggufTypeName(type)} is not a scalar type`);
    }
  }

  value(v: GGUFValue, what: string): void {
    if (v.type === GGUFType.STRING) {
      if (typeof v.value !== 'string') throw new GGUFError(`${what}: STRING needs a string`);
      this.string(v.value);
    } else if (v.type === GGUFType.ARRAY) {
      this.array(v.value, what);
    } else {
      this.scalar(v.type, v.value, what);
    }
  }

  array(a: GGUFArray, what: string): void {
    if (!(a.itemType in GGUFType)) throw new GGUFError(`${what}: unknown array item type ${a.itemType}`);
    this.u32(a.itemType);
    const items = a.items as ArrayLike<unknown>;
    this.u64(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (a.itemType === GGUFType.STRING) {
        if (typeof item !== 'string') throw new GGUFError(`${what}[${i}]: STRING array holds a ${typeof item}`);
        this.string(item);
      } else if (a.itemType === GGUFType.ARRAY) {
        this.array(item as GGUFArray, `${what}[${i}]`);
      } else {
        this.scalar(a.itemType, item, `${what}[${i}]`);
      }
    }
  }

  result(): Uint8Array<ArrayBuffer> { return this.buf.subarray(0, this.length); }
}

function entries(metadata: GGUFWriteSpec['metadata']): [string, GGUFValue][] {
  if (!metadata) return [];
  if (Symbol.iterator in metadata) return [...(metadata as Iterable<readonly [string, GGUFValue]>)].map(([k, v]) => [k, v]);
  return Object.entries(metadata);
}

const padTo = (n: number, alignment: number) => Math.ceil(n / alignment) * alignment;

interface PlannedTensor { spec: GGUFTensorSpec; nbytes: number; offset: number }

function planTensor(spec: GGUFTensorSpec): number {
  const what = `tensor ${spec.name}`;
  if (spec.dims.length < 1 || spec.dims.length > 4) throw new GGUFError(`${what}: needs 1 to 4 dims, got ${spec.dims.length}`);
  if (!spec.dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new GGUFError(`${what}: bad dims [${spec.dims.join(', ')}]`);
  const elements = spec.dims.reduce((a, b) => a * b, 1);
  const layout = findTypeInfo(spec.type);
  if ('f32' in spec) {
    if (spec.f32.length !== elements) throw new GGUFError(`${what}: ${spec.f32.length} values for dims [${spec.dims.join(', ')}] (${elements} elements)`);
    if (layout && !canQuantize(spec.type)) throw new GGUFError(unsupportedTypeMessage(spec.type, `${what}: converting f32 data`, QUANTIZABLE_TYPES));
  }
  if (!layout) {
    if ('data' in spec) return spec.data.byteLength; // an unknown type, as raw bytes: written as given
    throw new GGUFError(`${what}: unknown GGML type ${spec.type}`);
  }
  if (spec.dims[0]! % layout.blockSize !== 0) {
    throw new GGUFError(`${what}: rows of ${spec.dims[0]} elements are not a multiple of the ${layout.name} block size ${layout.blockSize}`);
  }
  const nbytes = spec.dims[0] === 0 ? 0 : (spec.dims[0]! / layout.blockSize) * layout.blockBytes * (elements / spec.dims[0]!);
  if ('data' in spec && spec.data.byteLength !== nbytes) {
    throw new GGUFError(`${what}: ${spec.data.byteLength} bytes given, ${layout.name} [${spec.dims.join(', ')}] takes ${nbytes}`);
  }
  return nbytes;
}

function tensorBytes(t: PlannedTensor): Uint8Array {
  const { spec } = t;
  const data = 'data' in spec ? spec.data : quantize(spec.type, spec.f32, spec.dims[0]!);
  if (data.byteLength !== t.nbytes) throw new GGUFError(`tensor ${spec.name}: converted to ${data.byteLength} bytes, expected ${t.nbytes}`);
  return data;
}

/**
 * The file in pieces: the header (padded), then each tensor's data (padded to the alignment).
 * Tensors given as f32 are converted when their piece is reached.
 */
export function* encodeGGUFParts(spec: GGUFWriteSpec): Generator<Uint8Array> {
  const version = spec.version ?? 3;
  if (version !== 2 && version !== 3) throw new GGUFError(`cannot write GGUF version ${String(version)}`);
  const meta = entries(spec.metadata);
  const keys = new Set<string>();
  for (const [k] of meta) {
    if (keys.has(k)) throw new GGUFError(`duplicate metadata key ${JSON.stringify(k)}`);
    keys.add(k);
  }
  const given = meta.find(([k]) => k === 'general.alignment')?.[1];
  const givenAlignment = given === undefined ? undefined : Number(given.value);
  const alignment = spec.alignment ?? givenAlignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new GGUFError(`alignment must be a power of two, got ${alignment}`);
  }
  if (givenAlignment !== undefined && givenAlignment !== alignment) {
    throw new GGUFError(`general.alignment (${givenAlignment}) disagrees with the alignment option (${alignment})`);
  }
  if (given === undefined && alignment !== GGUF_DEFAULT_ALIGNMENT) meta.push(['general.alignment', { type: GGUFType.UINT32, value: alignment }]);

  const tensors = spec.tensors ?? [];
  const names = new Set<string>();
  const planned: PlannedTensor[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new GGUFError(`duplicate tensor name ${JSON.stringify(t.name)}`);
    names.add(t.name);
    const nbytes = planTensor(t);
    planned.push({ spec: t, nbytes, offset });
    offset += padTo(nbytes, alignment);
  }

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(version);
  w.u64(planned.length);
  w.u64(meta.length);
  for (const [key, value] of meta) {
    w.string(key);
    w.u32(value.type);
    w.value(value, `metadata ${key}`);
  }
  for (const t of planned) {
    w.string(t.spec.name);
    w.u32(t.spec.dims.length);
    for (const d of t.spec.dims) w.u64(d);
    w.u32(t.spec.type);
    w.u64(t.offset);
  }
  w.zeros(padTo(w.length, alignment) - w.length);
  yield w.result();

  for (const t of planned) {
    yield tensorBytes(t);
    const pad = padTo(t.nbytes, alignment) - t.nbytes;
    if (pad > 0) yield new Uint8Array(pad);
  }
}

/** The whole file in one buffer. */
export function encodeGGUF(spec: GGUFWriteSpec): Uint8Array<ArrayBuffer> {
  const parts = [...encodeGGUFParts(spec)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.byteLength; }
  return out;
}
