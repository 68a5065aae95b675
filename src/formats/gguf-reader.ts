// Streaming GGUF reader. The header is parsed from a ByteSource that is read in growing chunks, and
// tensors are read one at a time, so a model is never held twice in memory. Every length and count
// in the file is checked against the bytes that are left before anything is allocated for it, so a
// hostile or truncated file fails with a GGUFError instead of hanging or allocating gigabytes.

import { type ByteSource, bytesSource } from './byte-source';
import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_SUPPORTED_VERSIONS, type GGUFArray, type GGUFArrayItems, GGUFError,
  type GGUFPlainValue, GGUFType, type GGUFValue, ggufScalarSize, ggufTypeName, plainValue, typedArrayFor,
} from './gguf';
import { findTypeInfo, typeName } from './ggml-types';

export interface GGUFTensorInfo {
  name: string;
  /** GGUF order: dims[0] (ne0) is the fastest-varying, i.e. [cols, rows, ...]. */
  dims: number[];
  /** GGML type id, as stored (may be a type this build does not know). */
  type: number;
  /** 'Q4_K', or 'type 99' for an unknown id. */
  typeName: string;
  /** Offset of the data from the start of the data section. */
  offset: number;
  /** Absolute offset of the data in the file. */
  fileOffset: number;
  elements: number;
  /** Size of the data in bytes; undefined when the type is unknown. */
  nbytes: number | undefined;
}

export interface GGUFReadOptions {
  /** First header read, in bytes; later reads double up to 16 MiB. Default 256 KiB. */
  headerChunk?: number;
}

const GGML_MAX_DIMS = 4;
const MAX_ARRAY_NESTING = 8;
const MAX_CHUNK = 16 << 20;
const MIN_KV_BYTES = 8 + 4 + 1; // key length, type, smallest value
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8; // name length, n_dims, type, offset

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Forward-only reader over a ByteSource that keeps one buffered window. */
class Cursor {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private bufStart = 0;
  private view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

  constructor(private readonly src: ByteSource, private chunk: number) {}

  get remaining(): number { return this.src.size - this.pos; }

  /** Makes `n` bytes at the current position available, or fails with a truncation error. */
  async need(n: number, what: string): Promise<void> {
    if (this.pos + n <= this.bufStart + this.buf.byteLength) return;
    if (n > this.remaining) {
      throw new GGUFError(`file is truncated: ${what} needs ${n} bytes at byte ${this.pos}, but the file ends at ${this.src.size}`);
    }
    const len = Math.min(this.remaining, Math.max(n, this.chunk));
    this.chunk = Math.min(this.chunk * 2, MAX_CHUNK);
    this.buf = await this.src.read(this.pos, len);
    if (this.buf.byteLength !== len) throw new GGUFError(`short read: asked for ${len} bytes at ${this.pos}, got ${this.buf.byteLength}`);
    this.bufStart = this.pos;
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  private at(n: number): number {
    const i = this.pos - this.bufStart;
    this.pos += n;
    return i;
  }

  u32(): number { return this.view.getUint32(this.at(4), true); }
  u64(): bigint { return this.view.getBigUint64(this.at(8), true); }

  /** A uint64 count or length that must fit in a JS number. */
  async size(what: string): Promise<number> {
    const where = this.pos;
    await this.need(8, what);
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GGUFError(`${what} at byte ${where} is absurd: ${v}`);
    return Number(v);
  }

  async uint32(what: string): Promise<number> {
    await this.need(4, what);
    return this.u32();
  }

  async string(what: string): Promise<string> {
    const where = this.pos;
    const len = await this.size(`length of ${what}`);
    if (len > this.remaining) {
      throw new GGUFError(`${what} at byte ${where} claims ${len} bytes, but only ${this.remaining} bytes are left in the file`);
    }
    await this.need(len, what);
    const i = this.at(len);
    return utf8.decode(this.buf.subarray(i, i + len));
  }

  /** A copy of the next `n` bytes (n already checked against the file size), in a fresh aligned buffer. */
  async bytes(n: number, what: string): Promise<Uint8Array<ArrayBuffer>> {
    if (n <= this.chunk || this.pos + n <= this.bufStart + this.buf.byteLength) {
      await this.need(n, what);
      const i = this.at(n);
      return this.buf.slice(i, i + n);
    }
    // Larger than a chunk: read it directly, then drop the window.
    const out = await this.src.read(this.pos, n);
    if (out.byteLength !== n) throw new GGUFError(`short read: asked for ${n} bytes at ${this.pos}, got ${out.byteLength}`);
    this.pos += n;
    this.buf = new Uint8Array(0);
    this.bufStart = this.pos;
    return out.slice();
  }

  /** The value at the current position, decoded from the buffered window (already `need`ed). */
  scalar(type: GGUFType): number | bigint | boolean {
    return readScalar(this.view, this.at(ggufScalarSize(type)!), type);
  }
}

function isKnownType(t: number): t is GGUFType {
  return Number.isInteger(t) && t >= 0 && t <= GGUFType.FLOAT64;
}

/** Smallest encoding of one item of this type, used to bound counts before allocating. */
function minItemBytes(type: GGUFType): number {
  if (type === GGUFType.STRING) return 8;
  if (type === GGUFType.ARRAY) return 4 + 8;
  return ggufScalarSize(type)!;
}

async function readValue(cur: Cursor, type: number, what: string, depth: number): Promise<GGUFValue> {
  if (!isKnownType(type)) throw new GGUFError(`unknown value type ${type} for ${what} at byte ${cur.pos - 4}`);
  if (type === GGUFType.STRING) return { type, value: await cur.string(what) };
  if (type === GGUFType.ARRAY) return { type, value: await readArray(cur, what, depth) };
  await cur.need(ggufScalarSize(type)!, what);
  return { type, value: cur.scalar(type) } as GGUFValue;
}

async function readArray(cur: Cursor, what: string, depth: number): Promise<GGUFArray> {
  const start = cur.pos;
  if (depth >= MAX_ARRAY_NESTING) throw new GGUFError(`${what}: arrays nested more than ${MAX_ARRAY_NESTING} deep at byte ${start}`);
  const itemType = await cur.uint32(`item type of ${what}`);
  if (!isKnownType(itemType)) throw new GGUFError(`unknown array item type ${itemType} for ${what} at byte ${start}`);
  const count = await cur.size(`item count of ${what}`);
  const min = minItemBytes(itemType);
  if (count * min > cur.remaining) {
    throw new GGUFError(`${what} at byte ${start} claims ${count} items of type ${ggufTypeName(itemType)}, more than the ${cur.remaining} bytes left in the file can hold`);
  }
  let items: GGUFArrayItems;
  if (itemType === GGUFType.STRING) {
    const strings: string[] = [];
    for (let i = 0; i < count; i++) strings.push(await cur.string(`${what}[${i}]`));
    items = strings;
  } else if (itemType === GGUFType.ARRAY) {
    const arrays: GGUFArray[] = [];
    for (let i = 0; i < count; i++) arrays.push(await readArray(cur, `${what}[${i}]`, depth + 1));
    items = arrays;
  } else if (itemType === GGUFType.BOOL) {
    const raw = await cur.bytes(count, what);
    items = Array.from(raw, (b) => b !== 0);
  } else {
    items = decodeNumbers(await cur.bytes(count * min, what), itemType, count);
  }
  return { itemType, items };
}

/** Little-endian numbers from a fresh copy (byteOffset 0) as a typed array. */
function decodeNumbers(raw: Uint8Array<ArrayBuffer>, type: GGUFType, count: number): GGUFArrayItems {
  const Ctor = typedArrayFor(type)!;
  if (littleEndianHost) return new Ctor(raw.buffer, raw.byteOffset, count);
  // Big-endian host: decode one by one.
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const size = ggufScalarSize(type)!;
  const out = new Ctor(count);
  const set = out as unknown as (number | bigint)[];
  for (let i = 0; i < count; i++) set[i] = readScalar(view, i * size, type) as number | bigint;
  return out;
}

function readScalar(view: DataView, at: number, type: GGUFType): number | bigint | boolean {
  switch (type) {
    case GGUFType.UINT8: return view.getUint8(at);
    case GGUFType.INT8: return view.getInt8(at);
    case GGUFType.UINT16: return view.getUint16(at, true);
    case GGUFType.INT16: return view.getInt16(at, true);
    case GGUFType.UINT32: return view.getUint32(at, true);
    case GGUFType.INT32: return view.getInt32(at, true);
    case GGUFType.FLOAT32: return view.getFloat32(at, true);
    case GGUFType.BOOL: return view.getUint8(at) !== 0;
    case GGUFType.UINT64: return view.getBigUint64(at, true);
    case GGUFType.INT64: return view.getBigInt64(at, true);
    case GGUFType.FLOAT64: return view.getFloat64(at, true);
    default: throw new Error(`not a scalar type: ${type}`);
  }
}

function checkedProduct(dims: number[], what: string): number {
  let n = 1;
  for (const d of dims) {
    n *= d;
    if (!Number.isSafeInteger(n)) throw new GGUFError(`${what}: element count of dims [${dims.join(', ')}] overflows`);
  }
  return n;
}

/** A parsed GGUF header plus access to the tensor data in its source. */
export class GGUFFile {
  private readonly byName = new Map<string, GGUFTensorInfo>();

  constructor(
    readonly source: ByteSource,
    readonly version: number,
    readonly metadata: Map<string, GGUFValue>,
    readonly tensors: GGUFTensorInfo[],
    readonly alignment: number,
    /** Absolute offset of the data section (header end padded to the alignment). */
    readonly dataOffset: number,
  ) {
    for (const t of tensors) this.byName.set(t.name, t);
  }

  /** The value of `key` without its type, or undefined. */
  get(key: string): GGUFPlainValue | undefined {
    const v = this.metadata.get(key);
    return v && plainValue(v);
  }

  getString(key: string): string | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (v.type !== GGUFType.STRING) throw new GGUFError(`metadata ${key} is ${ggufTypeName(v.type)}, expected STRING`);
    return v.value;
  }

  /** Any integer or float type, as a number (64-bit integers must be exact). */
  getNumber(key: string): number | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (typeof v.value === 'number') return v.value;
    if (typeof v.value === 'bigint' && v.value <= BigInt(Number.MAX_SAFE_INTEGER) && v.value >= -BigInt(Number.MAX_SAFE_INTEGER)) {
      return Number(v.value);
    }
    if (typeof v.value === 'bigint') throw new GGUFError(`metadata ${key} is ${ggufTypeName(v.type)} ${v.value}, beyond exact JS numbers`);
    throw new GGUFError(`metadata ${key} is ${ggufTypeName(v.type)}, expected a number`);
  }

  getBool(key: string): boolean | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (v.type !== GGUFType.BOOL) throw new GGUFError(`metadata ${key} is ${ggufTypeName(v.type)}, expected BOOL`);
    return v.value;
  }

  getArray(key: string): GGUFArray | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (v.type !== GGUFType.ARRAY) throw new GGUFError(`metadata ${key} is ${ggufTypeName(v.type)}, expected ARRAY`);
    return v.value;
  }

  tensor(name: string): GGUFTensorInfo | undefined {
    return this.byName.get(name);
  }

  /** Tensors whose GGML type this build does not know (a loader decides whether that matters). */
  get unknownTypeTensors(): GGUFTensorInfo[] {
    return this.tensors.filter((t) => t.nbytes === undefined);
  }

  /** The raw bytes of one tensor, read from the source now. */
  async readTensor(tensor: GGUFTensorInfo | string): Promise<Uint8Array> {
    const info = typeof tensor === 'string' ? this.byName.get(tensor) : tensor;
    if (!info) throw new GGUFError(`no tensor named ${JSON.stringify(tensor)} in this file`);
    if (info.nbytes === undefined) {
      throw new GGUFError(`tensor ${info.name} has unknown GGML type ${info.type}, so its size is unknown and it cannot be read`);
    }
    return this.source.read(info.fileOffset, info.nbytes);
  }
}

/** Parses the header of a GGUF file (v2 or v3) from `source`. Tensor data is not read. */
export async function readGGUF(source: ByteSource | ArrayBuffer | ArrayBufferView, options: GGUFReadOptions = {}): Promise<GGUFFile> {
  const src = source instanceof ArrayBuffer || ArrayBuffer.isView(source) ? bytesSource(source) : source;
  const cur = new Cursor(src, Math.max(64, options.headerChunk ?? 256 << 10));

  if (src.size < 8) throw new GGUFError(`not a GGUF file: only ${src.size} bytes long`);
  await cur.need(8, 'magic and version');
  const magic = cur.u32();
  if (magic !== GGUF_MAGIC) {
    const legacy: Record<number, string> = { 0x67676d6c: 'GGML', 0x67676d66: 'GGMF', 0x67676a74: 'GGJT', 0x67676c61: 'GGLA' };
    if (legacy[magic]) throw new GGUFError(`this is a legacy ${legacy[magic]} file, not GGUF; convert it with a current llama.cpp`);
    const hex = [0, 1, 2, 3].map((i) => ((magic >>> (8 * i)) & 0xff).toString(16).padStart(2, '0')).join(' ');
    // A server that answers a wrong URL with a web page is the usual way to get here.
    const html = (magic & 0xff) === 0x3c ? ': it starts with "<", so it looks like an HTML or XML page' : '';
    throw new GGUFError(`not a GGUF file${html}: bad magic (bytes ${hex}, expected 47 47 55 46 "GGUF")`);
  }
  const version = cur.u32();
  if (!GGUF_SUPPORTED_VERSIONS.includes(version)) {
    const swapped = ((version & 0xff) << 24 | (version & 0xff00) << 8 | (version >>> 8) & 0xff00 | version >>> 24) >>> 0;
    if (GGUF_SUPPORTED_VERSIONS.includes(swapped)) throw new GGUFError(`big-endian GGUF v${swapped} files are not supported`);
    if (version === 1) throw new GGUFError('GGUF v1 is not supported (v2 and v3 are); re-convert the file with a current llama.cpp');
    throw new GGUFError(`unsupported GGUF version ${version} (v2 and v3 are supported)`);
  }

  const tensorCount = await cur.size('tensor count');
  const kvCount = await cur.size('metadata count');
  if (kvCount * MIN_KV_BYTES + tensorCount * MIN_TENSOR_INFO_BYTES > cur.remaining) {
    throw new GGUFError(`header claims ${kvCount} metadata entries and ${tensorCount} tensors, more than the ${cur.remaining} bytes left in the file can hold`);
  }

  const metadata = new Map<string, GGUFValue>();
  for (let i = 0; i < kvCount; i++) {
    const at = cur.pos;
    const key = await cur.string(`key of metadata entry ${i}`);
    if (metadata.has(key)) throw new GGUFError(`duplicate metadata key ${JSON.stringify(key)} at byte ${at}`);
    const type = await cur.uint32(`type of metadata ${key}`);
    metadata.set(key, await readValue(cur, type, `metadata ${key}`, 0));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const align = metadata.get('general.alignment');
  if (align !== undefined) {
    const a = typeof align.value === 'bigint' ? Number(align.value) : align.value;
    const integerTypes = [GGUFType.UINT8, GGUFType.UINT16, GGUFType.UINT32, GGUFType.UINT64, GGUFType.INT32, GGUFType.INT64];
    if (!integerTypes.includes(align.type) || typeof a !== 'number' || a <= 0 || a > 1 << 30 || (a & (a - 1)) !== 0) {
      throw new GGUFError(`general.alignment must be a power of two, got ${String(align.value)} (${ggufTypeName(align.type)})`);
    }
    alignment = a;
  }

  const infos: { name: string; dims: number[]; type: number; offset: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const at = cur.pos;
    const name = await cur.string(`name of tensor ${i}`);
    if (names.has(name)) throw new GGUFError(`duplicate tensor name ${JSON.stringify(name)} at byte ${at}`);
    names.add(name);
    const nDims = await cur.uint32(`dimension count of tensor ${name}`);
    if (nDims > GGML_MAX_DIMS) throw new GGUFError(`tensor ${name} has ${nDims} dimensions (at most ${GGML_MAX_DIMS})`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(await cur.size(`dimension ${d} of tensor ${name}`));
    const type = await cur.uint32(`type of tensor ${name}`);
    const offset = await cur.size(`data offset of tensor ${name}`);
    infos.push({ name, dims, type, offset });
  }

  const headerEnd = cur.pos;
  const dataOffset = Math.ceil(headerEnd / alignment) * alignment;
  const dataSize = Math.max(0, src.size - dataOffset);
  const tensors: GGUFTensorInfo[] = infos.map(({ name, dims, type, offset }) => {
    const elements = checkedProduct(dims, `tensor ${name}`);
    const layout = findTypeInfo(type);
    let nbytes: number | undefined;
    if (layout) {
      const cols = dims[0] ?? 1;
      if (cols % layout.blockSize !== 0) {
        throw new GGUFError(`tensor ${name}: rows of ${cols} elements are not a multiple of the ${layout.name} block size ${layout.blockSize}`);
      }
      nbytes = (cols / layout.blockSize) * layout.blockBytes * (cols === 0 ? 0 : elements / cols);
    }
    if (offset % alignment !== 0) {
      throw new GGUFError(`tensor ${name}: data offset ${offset} is not a multiple of the alignment ${alignment}`);
    }
    if (offset + (nbytes ?? 0) > dataSize) {
      throw new GGUFError(`file is truncated or corrupt: tensor ${name}: data at bytes ${dataOffset + offset}..${dataOffset + offset + (nbytes ?? 0)} is past the end of the file (${src.size} bytes)`);
    }
    return {
      name, dims, type, typeName: typeName(type), offset, fileOffset: dataOffset + offset, elements, nbytes,
    };
  });

  return new GGUFFile(src, version, metadata, tensors, alignment, dataOffset);
}
