// GGML tensor types as in ggml.h: ids, names, and block layouts (elements per block, bytes per
// block), for every type a GGUF file can name. Which of them tokenwise can convert, dequantize
// or run kernels on is listed here too, so every caller refuses the same types with the same
// words. A leaf module: no GPU, no I/O.

/** GGML type ids (`enum ggml_type` in ggml.h). Ids 4, 5 and 31-33, 36-38 were removed upstream. */
export const GGMLType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
  NVFP4: 40,
  Q1_0: 41,
  Q2_0: 42,
} as const;

export type GGMLTypeName = keyof typeof GGMLType;
/** A GGML type id. Plain number: GGUF files may name ids this table does not know. */
export type GGMLTypeId = number;

export interface GGMLTypeInfo {
  id: GGMLTypeId;
  /** Upper-case name as llama.cpp prints it ('Q4_K', 'BF16'). */
  name: GGMLTypeName;
  /** Elements per block: 1 for plain types, 32 or 256 (QK_K) for block-quantized ones. */
  blockSize: number;
  /** Bytes per block (ggml's type_size). */
  blockBytes: number;
}

// [name, elements per block, bytes per block], from the block structs in ggml-common.h.
const LAYOUTS: Array<[GGMLTypeName, number, number]> = [
  ['F32', 1, 4],
  ['F16', 1, 2],
  ['Q4_0', 32, 18], // f16 d, 16 bytes of nibbles
  ['Q4_1', 32, 20], // f16 d, f16 m, 16 bytes of nibbles
  ['Q5_0', 32, 22], // f16 d, 4 bytes of 5th bits, 16 bytes of nibbles
  ['Q5_1', 32, 24], // f16 d, f16 m, 4 bytes of 5th bits, 16 bytes of nibbles
  ['Q8_0', 32, 34], // f16 d, 32 int8
  ['Q8_1', 32, 36], // f16 d, f16 s, 32 int8
  ['Q2_K', 256, 84],
  ['Q3_K', 256, 110],
  ['Q4_K', 256, 144], // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
  ['Q5_K', 256, 176], // as Q4_K plus 32 bytes of 5th bits
  ['Q6_K', 256, 210], // 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales, f16 d
  ['Q8_K', 256, 292],
  ['IQ2_XXS', 256, 66],
  ['IQ2_XS', 256, 74],
  ['IQ3_XXS', 256, 98],
  ['IQ1_S', 256, 50],
  ['IQ4_NL', 32, 18],
  ['IQ3_S', 256, 110],
  ['IQ2_S', 256, 82],
  ['IQ4_XS', 256, 136],
  ['I8', 1, 1],
  ['I16', 1, 2],
  ['I32', 1, 4],
  ['I64', 1, 8],
  ['F64', 1, 8],
  ['IQ1_M', 256, 56],
  ['BF16', 1, 2],
  ['TQ1_0', 256, 54],
  ['TQ2_0', 256, 66],
  ['MXFP4', 32, 17],
  ['NVFP4', 64, 36],
  ['Q1_0', 128, 18],
  ['Q2_0', 64, 18],
];

const INFO = new Map<GGMLTypeId, GGMLTypeInfo>(
  LAYOUTS.map(([name, blockSize, blockBytes]) => [GGMLType[name], { id: GGMLType[name], name, blockSize, blockBytes }]),
);

/** Types whose f32 data tokenwise can write (quantize.ts follows llama.cpp's reference quantizers). */
export const QUANTIZABLE_TYPES: readonly GGMLTypeId[] = [
  GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1,
  GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K,
];

/** Types the GPU kernels (matmul, embedding) read directly, and quantize.ts dequantizes. */
export const KERNEL_TYPES: readonly GGMLTypeId[] = QUANTIZABLE_TYPES;

/** Raised for a type id that is unknown or that the requested operation does not support. */
export class GGMLTypeError extends Error {
  constructor(
    readonly kind: 'unsupported' | 'bad-argument',
    message: string,
  ) {
    super(message);
    this.name = 'GGMLTypeError';
  }
}

/** The layout of a type, or undefined for an id this table does not know. */
export function findTypeInfo(type: GGMLTypeId): GGMLTypeInfo | undefined {
  return INFO.get(type);
}

/** The layout of a type; throws GGMLTypeError('unsupported') for an unknown id. */
export function typeInfo(type: GGMLTypeId): GGMLTypeInfo {
  const info = INFO.get(type);
  if (!info) throw new GGMLTypeError('unsupported', `unknown GGML type ${type}`);
  return info;
}

/** 'Q4_K', or 'type 99' for an unknown id (for messages). */
export function typeName(type: GGMLTypeId): string {
  return INFO.get(type)?.name ?? `type ${type}`;
}

export function isKernelType(type: GGMLTypeId): boolean {
  return KERNEL_TYPES.includes(type);
}

export function isQuantizable(type: GGMLTypeId): boolean {
  return QUANTIZABLE_TYPES.includes(type);
}

/** A message naming the type, what refused it, and what is supported instead. */
export function unsupportedTypeMessage(type: GGMLTypeId, what: string, supported: readonly GGMLTypeId[] = KERNEL_TYPES): string {
  const named = INFO.has(type) ? `GGML type ${typeName(type)} (${type})` : `unknown GGML type ${type}`;
  return `${what}: ${named} is not supported; supported types are ${supported.map(typeName).join(', ')}`;
}

/** Throws GGMLTypeError('unsupported') unless the kernels can read `type`. `what` names the tensor or operation. */
export function requireKernelType(type: GGMLTypeId, what = 'tensor'): GGMLTypeInfo {
  if (!isKernelType(type)) throw new GGMLTypeError('unsupported', unsupportedTypeMessage(type, what));
  return INFO.get(type)!;
}

/** Bytes of one row of `cols` elements. Throws unless cols is a whole number of blocks. */
export function rowBytes(type: GGMLTypeId, cols: number): number {
  const { name, blockSize, blockBytes } = typeInfo(type);
  if (!Number.isInteger(cols) || cols < 0) throw new GGMLTypeError('bad-argument', `${name}: bad row length ${cols}`);
  if (cols % blockSize !== 0) {
    throw new GGMLTypeError('bad-argument', `${name}: a row of ${cols} elements is not a multiple of the ${name} block size ${blockSize}`);
  }
  return (cols / blockSize) * blockBytes;
}

/**
 * Bytes of a tensor with GGUF dims `dims` (dims[0] is the row length, the fastest-varying
 * dimension), or of `dims` elements in rows of `dims` when given a single number.
 */
export function tensorBytes(type: GGMLTypeId, dims: readonly number[] | number): number {
  const shape = typeof dims === 'number' ? [dims] : dims;
  if (shape.length === 0) return rowBytes(type, 1);
  let rows = 1;
  for (let i = 1; i < shape.length; i++) rows *= shape[i]!;
  return rowBytes(type, shape[0]!) * rows;
}
