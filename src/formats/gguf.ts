// GGUF: the file format of llama.cpp. One header (magic, version, metadata key/values, tensor
// infos), then aligned tensor data. This module holds what reader and writer share: value types,
// typed metadata values and small constructors for them.
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_SUPPORTED_VERSIONS: readonly number[] = [2, 3];

/** Metadata value types as stored in the file (uint32). */
export enum GGUFType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Bytes of one fixed-size value; undefined for STRING and ARRAY. */
export function ggufScalarSize(type: GGUFType): number | undefined {
  switch (type) {
    case GGUFType.UINT8: case GGUFType.INT8: case GGUFType.BOOL: return 1;
    case GGUFType.UINT16: case GGUFType.INT16: return 2;
    case GGUFType.UINT32: case GGUFType.INT32: case GGUFType.FLOAT32: return 4;
    case GGUFType.UINT64: case GGUFType.INT64: case GGUFType.FLOAT64: return 8;
    default: return undefined;
  }
}

export function ggufTypeName(type: number): string {
  return GGUFType[type] ?? `unknown(${type})`;
}

type NumberType = GGUFType.UINT8 | GGUFType.INT8 | GGUFType.UINT16 | GGUFType.INT16 | GGUFType.UINT32 |
  GGUFType.INT32 | GGUFType.FLOAT32 | GGUFType.FLOAT64;
type BigIntType = GGUFType.UINT64 | GGUFType.INT64;

/**
 * Items of an array value. Numeric arrays are typed arrays (so a 150k-entry `tokenizer.ggml.scores`
 * costs one allocation); 64-bit integers are BigInt64Array / BigUint64Array.
 */
export type GGUFArrayItems =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array
  | BigUint64Array | BigInt64Array
  | boolean[] | string[] | GGUFArray[];

export interface GGUFArray {
  itemType: GGUFType;
  items: GGUFArrayItems;
}

/** A metadata value together with its stored type, so that a file round-trips exactly. */
export type GGUFValue =
  | { type: NumberType; value: number }
  | { type: BigIntType; value: bigint }
  | { type: GGUFType.BOOL; value: boolean }
  | { type: GGUFType.STRING; value: string }
  | { type: GGUFType.ARRAY; value: GGUFArray };

/** A value without its type: what most callers want. Arrays become their items. */
export type GGUFPlainValue = number | bigint | boolean | string | GGUFPlainArray;
export type GGUFPlainArray = Exclude<GGUFArrayItems, GGUFArray[]> | GGUFPlainArray[];

export function plainValue(v: GGUFValue): GGUFPlainValue {
  return v.type === GGUFType.ARRAY ? plainArray(v.value) : v.value;
}

function plainArray(a: GGUFArray): GGUFPlainArray {
  if (a.itemType === GGUFType.ARRAY) return (a.items as GGUFArray[]).map(plainArray);
  return a.items as Exclude<GGUFArrayItems, GGUFArray[]>;
}

/** Typed array constructor for a numeric item type. */
export function typedArrayFor(type: GGUFType) {
  switch (type) {
    case GGUFType.UINT8: return Uint8Array;
    case GGUFType.INT8: return Int8Array;
    case GGUFType.UINT16: return Uint16Array;
    case GGUFType.INT16: return Int16Array;
    case GGUFType.UINT32: return Uint32Array;
    case GGUFType.INT32: return Int32Array;
    case GGUFType.FLOAT32: return Float32Array;
    case GGUFType.FLOAT64: return Float64Array;
    case GGUFType.UINT64: return BigUint64Array;
    case GGUFType.INT64: return BigInt64Array;
    default: return undefined;
  }
}

/** Constructors for typed metadata values, for writing files: `gv.u32(4096)`, `gv.strings(vocab)`. */
export const gv = {
  u8: (value: number): GGUFValue => ({ type: GGUFType.UINT8, value }),
  i8: (value: number): GGUFValue => ({ type: GGUFType.INT8, value }),
  u16: (value: number): GGUFValue => ({ type: GGUFType.UINT16, value }),
  i16: (value: number): GGUFValue => ({ type: GGUFType.INT16, value }),
  u32: (value: number): GGUFValue => ({ type: GGUFType.UINT32, value }),
  i32: (value: number): GGUFValue => ({ type: GGUFType.INT32, value }),
  f32: (value: number): GGUFValue => ({ type: GGUFType.FLOAT32, value }),
  f64: (value: number): GGUFValue => ({ type: GGUFType.FLOAT64, value }),
  u64: (value: bigint | number): GGUFValue => ({ type: GGUFType.UINT64, value: BigInt(value) }),
  i64: (value: bigint | number): GGUFValue => ({ type: GGUFType.INT64, value: BigInt(value) }),
  bool: (value: boolean): GGUFValue => ({ type: GGUFType.BOOL, value }),
  str: (value: string): GGUFValue => ({ type: GGUFType.STRING, value }),
  array: (itemType: GGUFType, items: GGUFArrayItems): GGUFValue => ({ type: GGUFType.ARRAY, value: { itemType, items } }),
  strings: (items: readonly string[]): GGUFValue => gv.array(GGUFType.STRING, [...items]),
  f32s: (items: ArrayLike<number>): GGUFValue => gv.array(GGUFType.FLOAT32, Float32Array.from(items)),
  i32s: (items: ArrayLike<number>): GGUFValue => gv.array(GGUFType.INT32, Int32Array.from(items)),
  u32s: (items: ArrayLike<number>): GGUFValue => gv.array(GGUFType.UINT32, Uint32Array.from(items)),
};

/** Every error about a malformed or unsupported GGUF file. */
export class GGUFError extends Error {
  constructor(message: string) {
    super(`GGUF: ${message}`);
    this.name = 'GGUFError';
  }
}
