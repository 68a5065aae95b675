// Hugging Face safetensors: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and data_offsets (plus an optional string map "__metadata__"), then the
// tensors' bytes, back to back. The header is read and checked as the reference implementation
// checks it (length at most 100 MB and inside the file, offsets contiguous from 0 to the end of
// the file with no overlap or hole, each span exactly shape x dtype bytes), so a hostile or
// truncated file fails with a SafetensorsError before anything large is allocated. Tensors are
// then read one at a time from the ByteSource. Sharded checkpoints (model.safetensors.index.json)
// open their files through a caller's function. F32, F16 and BF16 data is byte for byte the GGML
// type of the same name, so the kernels read it as it is.

import { type ByteSource, bytesSource } from './byte-source';
import { GGMLType, type GGMLTypeId } from './ggml-types';
import { quantize } from './quantize';

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

/** The reference implementation's limit on the JSON header (safetensors' MAX_HEADER_SIZE). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** Bits per element of every dtype the format defines. */
const DTYPE_BITS: Readonly<Record<string, number>> = {
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, I16: 16, U16: 16, F16: 16, BF16: 16,
  I32: 32, U32: 32, F32: 32, F64: 64, I64: 64, U64: 64, C64: 64, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
};

/** The dtypes whose bytes are a GGML type's bytes (what tokenwise can run). */
export const SAFETENSORS_GGML_TYPES: Readonly<Record<string, GGMLTypeId>> = { F32: GGMLType.F32, F16: GGMLType.F16, BF16: GGMLType.BF16 };

export interface SafetensorsTensorInfo {
  name: string;
  /** As stored: 'BF16', 'F32', 'I64', ... */
  dtype: string;
  /** Slowest dimension first (PyTorch order): a Linear weight is [out_features, in_features]. */
  shape: number[];
  /** The GGML type with the same bytes (F32, F16, BF16); undefined for other dtypes. */
  ggmlType: GGMLTypeId | undefined;
  elements: number;
  nbytes: number;
  /** Absolute offset of the data in its file. */
  fileOffset: number;
  /** The shard holding it, as the index names it; undefined for a single file. */
  file?: string;
}

/** Tensors by name, one file or several: what model loaders take. */
export interface SafetensorsTensors {
  readonly tensors: readonly SafetensorsTensorInfo[];
  /** "__metadata__" (all shards' entries, for a sharded checkpoint). */
  readonly metadata: Readonly<Record<string, string>>;
  tensor(name: string): SafetensorsTensorInfo | undefined;
  /** The raw bytes of one tensor, read from its source now; a view the caller must not write to. */
  readTensor(tensor: SafetensorsTensorInfo | string): Promise<Uint8Array>;
}

export class SafetensorsFile implements SafetensorsTensors {
  private readonly byName = new Map<string, SafetensorsTensorInfo>();

  constructor(
    readonly source: ByteSource,
    readonly metadata: Readonly<Record<string, string>>,
    readonly tensors: readonly SafetensorsTensorInfo[],
    /** Absolute offset of the data section (8 + header length). */
    readonly dataOffset: number,
  ) {
    for (const t of tensors) this.byName.set(t.name, t);
  }

  tensor(name: string): SafetensorsTensorInfo | undefined {
    return this.byName.get(name);
  }

  async readTensor(tensor: SafetensorsTensorInfo | string): Promise<Uint8Array> {
    const info = typeof tensor === 'string' ? this.byName.get(tensor) : tensor;
    if (!info) throw new SafetensorsError(`no tensor named ${JSON.stringify(tensor)} in this file`);
    const bytes = await this.source.read(info.fileOffset, info.nbytes);
    if (bytes.byteLength !== info.nbytes) throw new SafetensorsError(`short read of ${info.name}: wanted ${info.nbytes} bytes, got ${bytes.byteLength}`);
    return bytes;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses the header of a safetensors file. Tensor data is not read. */
export async function readSafetensors(source: ByteSource | ArrayBuffer | ArrayBufferView): Promise<SafetensorsFile> {
  const src = source instanceof ArrayBuffer || ArrayBuffer.isView(source) ? bytesSource(source) : source;
  if (src.size < 8) throw new SafetensorsError(`not a safetensors file: only ${src.size} bytes long`);
  const lengthBytes = await src.read(0, 8);
  const headerLength = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw new SafetensorsError(`not a safetensors file: header length ${headerLength} is over the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit`);
  }
  const n = Number(headerLength);
  if (n > src.size - 8) throw new SafetensorsError(`file is truncated: the header claims ${n} bytes, but only ${src.size - 8} follow its length`);
  if (n < 2) throw new SafetensorsError(`not a safetensors file: header length ${n} is too small for a JSON object`);

  let text: string;
  try {
    text = utf8.decode(await src.read(8, n));
  } catch (error) {
    if (error instanceof TypeError) throw new SafetensorsError('not a safetensors file: the header is not valid UTF-8');
    throw error;
  }
  if (!text.startsWith('{')) throw new SafetensorsError('not a safetensors file: the header does not start with "{"');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError(`the header is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(header)) throw new SafetensorsError('the header is not a JSON object');

  const dataOffset = 8 + n;
  const dataSize = src.size - dataOffset;
  let metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  const begins = new Map<SafetensorsTensorInfo, number>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(entry);
      continue;
    }
    const info = parseTensorEntry(name, entry, dataSize);
    begins.set(info, info.fileOffset);
    info.fileOffset += dataOffset;
    tensors.push(info);
  }
  checkLayout(tensors, begins, dataSize);
  return new SafetensorsFile(src, metadata, tensors, dataOffset);
}

function parseMetadata(entry: unknown): Record<string, string> {
  if (!isObject(entry)) throw new SafetensorsError('__metadata__ is not a JSON object');
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== 'string') throw new SafetensorsError(`__metadata__ ${JSON.stringify(key)} is not a string (the format allows only strings)`);
    out[key] = value;
  }
  return out;
}

/** One tensor's entry, checked; fileOffset is still relative to the data section. */
function parseTensorEntry(name: string, entry: unknown, dataSize: number): SafetensorsTensorInfo {
  const where = `tensor ${JSON.stringify(name)}`;
  if (!isObject(entry)) throw new SafetensorsError(`${where}: entry is not a JSON object`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string') throw new SafetensorsError(`${where}: no dtype`);
  const bits = Object.hasOwn(DTYPE_BITS, dtype) ? DTYPE_BITS[dtype]! : undefined;
  if (bits === undefined) throw new SafetensorsError(`${where}: unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_BITS).join(', ')})`);
  if (!Array.isArray(shape) || !shape.every(isCount)) throw new SafetensorsError(`${where}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)?.slice(0, 100)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw new SafetensorsError(`${where}: data_offsets must be two non-negative integers, got ${JSON.stringify(offsets)?.slice(0, 100)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw new SafetensorsError(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataSize) {
    throw new SafetensorsError(`${where}: data_offsets [${begin}, ${end}] run past the end of the file (${dataSize} bytes of data; truncated?)`);
  }
  let elements = 1;
  for (const d of shape as number[]) {
    elements *= d;
    if (!Number.isSafeInteger(elements)) throw new SafetensorsError(`${where}: shape [${shape.join(', ')}] has too many elements`);
  }
  const totalBits = elements * bits;
  if (!Number.isSafeInteger(totalBits) || totalBits % 8 !== 0) {
    throw new SafetensorsError(`${where}: shape [${shape.join(', ')}] of ${dtype} is not a whole number of bytes`);
  }
  const nbytes = totalBits / 8;
  if (end - begin !== nbytes) {
    throw new SafetensorsError(`${where}: shape [${shape.join(', ')}] of ${dtype} takes ${nbytes} bytes, but data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  return {
    name, dtype, shape: shape as number[], elements, nbytes, fileOffset: begin,
    ggmlType: Object.hasOwn(SAFETENSORS_GGML_TYPES, dtype) ? SAFETENSORS_GGML_TYPES[dtype] : undefined,
  };
}

/** The data section must be covered exactly: spans back to back from 0 to its end. */
function checkLayout(tensors: SafetensorsTensorInfo[], begins: Map<SafetensorsTensorInfo, number>, dataSize: number): void {
  const order = [...tensors].sort((a, b) => begins.get(a)! - begins.get(b)! || a.nbytes - b.nbytes);
  let end = 0;
  let previous: SafetensorsTensorInfo | undefined;
  for (const t of order) {
    const begin = begins.get(t)!;
    if (begin < end) throw new SafetensorsError(`tensors ${JSON.stringify(previous!.name)} and ${JSON.stringify(t.name)} overlap (bytes ${begin}..${end})`);
    if (begin > end) {
      throw new SafetensorsError(`${begin - end} bytes at ${end} belong to no tensor${previous ? ` (after ${JSON.stringify(previous.name)})` : ''}; the format allows no holes`);
    }
    end = begin + t.nbytes;
    previous = t;
  }
  if (end !== dataSize) throw new SafetensorsError(`${dataSize - end} bytes after the last tensor belong to no tensor; the format allows no holes`);
}

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints

/** Opens one file of a checkpoint by the name the index gives it (a URL, a File, a path...). */
export type OpenFile = (name: string) => Promise<ByteSource>;

export interface ShardedSafetensorsOptions {
  /** model.safetensors.index.json, already parsed; when absent, `indexFile` is opened and read. */
  index?: unknown;
  /** Default "model.safetensors.index.json". */
  indexFile?: string;
  /** Largest index file read (default 64 MiB; real ones are well under 1 MiB). */
  maxIndexBytes?: number;
}

/** A checkpoint in several files: tensors by name through the index's weight_map. */
export class ShardedSafetensors implements SafetensorsTensors {
  readonly tensors: readonly SafetensorsTensorInfo[];
  readonly metadata: Readonly<Record<string, string>>;
  private readonly byName: Map<string, SafetensorsTensorInfo>;

  constructor(readonly shards: ReadonlyMap<string, SafetensorsFile>, tensors: SafetensorsTensorInfo[]) {
    this.tensors = tensors;
    this.byName = new Map(tensors.map((t) => [t.name, t]));
    this.metadata = Object.assign({}, ...[...shards.values()].map((s) => s.metadata));
  }

  tensor(name: string): SafetensorsTensorInfo | undefined {
    return this.byName.get(name);
  }

  async readTensor(tensor: SafetensorsTensorInfo | string): Promise<Uint8Array> {
    const info = typeof tensor === 'string' ? this.byName.get(tensor) : tensor;
    const shard = info?.file === undefined ? undefined : this.shards.get(info.file);
    if (!info || !shard) throw new SafetensorsError(`no tensor named ${JSON.stringify(typeof tensor === 'string' ? tensor : tensor.name)} in this checkpoint`);
    return shard.readTensor(info);
  }
}

/**
 * Opens a sharded checkpoint: reads the index (weight_map: tensor name -> file name), opens each
 * file it names once, and checks every listed tensor is in its file.
 */
export async function readShardedSafetensors(open: OpenFile, options: ShardedSafetensorsOptions = {}): Promise<ShardedSafetensors> {
  const indexFile = options.indexFile ?? 'model.safetensors.index.json';
  const index = options.index ?? await readJson(await open(indexFile), indexFile, options.maxIndexBytes ?? 64 << 20);
  const weightMap = isObject(index) ? index['weight_map'] : undefined;
  if (!isObject(weightMap)) throw new SafetensorsError(`${indexFile}: no "weight_map" object`);
  const files = new Map<string, string[]>();
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || !isPlainRelativePath(file)) throw new SafetensorsError(`${indexFile}: tensor ${JSON.stringify(name)} maps to ${JSON.stringify(file)}, not a relative file name`);
    files.set(file, [...(files.get(file) ?? []), name]);
  }
  if (files.size === 0) throw new SafetensorsError(`${indexFile}: weight_map is empty`);

  const shards = new Map<string, SafetensorsFile>();
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [file, names] of files) {
    let shard: SafetensorsFile;
    try {
      shard = await readSafetensors(await open(file));
    } catch (error) {
      if (error instanceof SafetensorsError) throw new SafetensorsError(`${file}: ${error.message}`);
      throw error;
    }
    shards.set(file, shard);
    const missing = names.filter((n) => !shard.tensor(n));
    if (missing.length) throw new SafetensorsError(`${indexFile} puts ${missing.slice(0, 4).map((n) => JSON.stringify(n)).join(', ')}${missing.length > 4 ? ` and ${missing.length - 4} more` : ''} in ${file}, which lacks them`);
    for (const n of names) tensors.push({ ...shard.tensor(n)!, file });
  }
  return new ShardedSafetensors(shards, tensors);
}

/** No absolute paths, no "..": a hostile index cannot send the opener outside the checkpoint. */
function isPlainRelativePath(file: string): boolean {
  return file.length > 0 && !/^[/\\]|^[A-Za-z]:/.test(file) && !file.split(/[/\\]/).some((part) => part === '..' || part === '');
}

/** A small JSON file (config.json, an index) from a ByteSource. */
export async function readJson(source: ByteSource, what: string, maxBytes = 64 << 20): Promise<unknown> {
  if (source.size > maxBytes) throw new SafetensorsError(`${what} is ${source.size} bytes, over the ${maxBytes}-byte limit for a JSON file`);
  let text: string;
  try {
    text = utf8.decode(await source.read(0, source.size));
  } catch (error) {
    if (error instanceof TypeError) throw new SafetensorsError(`${what} is not valid UTF-8`);
    throw error;
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Writer (test fixtures, small conversions)

export type SafetensorsTensorSpec =
  /** Bytes already in `dtype`, row-major. */
  | { name: string; dtype: string; shape: readonly number[]; data: Uint8Array }
  /** f32 values to store as F32, F16 or BF16 (rounded to nearest even, as torch does). */
  | { name: string; dtype: 'F32' | 'F16' | 'BF16'; shape: readonly number[]; f32: Float32Array };

/** A whole safetensors file: the tensors back to back in the order given, the header padded to 8 bytes. */
export function encodeSafetensors(tensors: readonly SafetensorsTensorSpec[], metadata?: Readonly<Record<string, string>>): Uint8Array<ArrayBuffer> {
  const header: Record<string, unknown> = Object.create(null); // a tensor may be named "__proto__"
  if (metadata) header['__metadata__'] = metadata;
  const datas: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || Object.hasOwn(header, t.name)) throw new SafetensorsError(`duplicate or reserved tensor name ${JSON.stringify(t.name)}`);
    const bits = DTYPE_BITS[t.dtype];
    if (bits === undefined) throw new SafetensorsError(`tensor ${t.name}: unknown dtype ${t.dtype}`);
    const elements = t.shape.reduce((a, b) => a * b, 1);
    let data: Uint8Array;
    if ('f32' in t) {
      if (t.f32.length !== elements) throw new SafetensorsError(`tensor ${t.name}: ${t.f32.length} values for shape [${t.shape.join(', ')}]`);
      data = quantize(SAFETENSORS_GGML_TYPES[t.dtype]!, t.f32);
    } else {
      data = t.data;
    }
    if (data.byteLength * 8 !== elements * bits) throw new SafetensorsError(`tensor ${t.name}: ${data.byteLength} bytes for shape [${t.shape.join(', ')}] of ${t.dtype}`);
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + data.byteLength] };
    datas.push(data);
    offset += data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20); // spaces, as the reference writer pads
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let at = 8 + json.byteLength;
  for (const d of datas) {
    out.set(d, at);
    at += d.byteLength;
  }
  return out;
}
