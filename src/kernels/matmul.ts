import { type GGMLTypeId, GGMLTypeError, requireKernelType, rowBytes, typeInfo, typeName } from '../formats/ggml-types';
import { type Binding, type Gpu, GpuError, check, grid } from '../gpu';
import { GEMM_TILE, MATVEC_WORKGROUP, gemmWgsl, gemvWgsl, rowwiseWgsl } from '../shaders/matmul';

/** One buffer of a weight tensor: `rows` whole rows of GGUF bytes, starting at byte 0. */
export interface WeightPart {
  buffer: GPUBuffer;
  rows: number;
}

/**
 * A 2-D weight tensor on the GPU in its GGUF layout: `rows` rows (N, the output features) of
 * `cols` elements (K), each rowBytes(type, cols) bytes. Split by whole rows into parts when it
 * is over maxStorageBufferBindingSize; the parts' rows add up to `rows`.
 */
export interface QuantizedWeight {
  type: GGMLTypeId;
  rows: number;
  cols: number;
  parts: WeightPart[];
}

/**
 * Upload a tensor's GGUF bytes (rows x rowBytes(type, cols)) as a QuantizedWeight, split into
 * parts of at most `maxPartBytes` (default: what one storage binding may hold).
 */
export function uploadWeight(
  gpu: Gpu, type: GGMLTypeId, rows: number, cols: number, bytes: Uint8Array,
  options: { maxPartBytes?: number; label?: string } = {},
): QuantizedWeight {
  const label = options.label ?? 'weight';
  const bytesPerRow = checkedWeightShape(type, rows, cols, label);
  check(bytes.byteLength === rows * bytesPerRow, () => `${label}: ${typeName(type)} [${rows}][${cols}] takes ${rows * bytesPerRow} bytes, ${bytes.byteLength} given`);
  // Whole 4-byte words, so a part padded to 4 bytes by upload() still fits the limit.
  const maxPartBytes = Math.floor((options.maxPartBytes ?? Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize)) / 4) * 4;
  const rowsPerPart = Math.floor(maxPartBytes / bytesPerRow);
  if (rowsPerPart < 1) {
    throw new GpuError('too-large', `${label}: one ${typeName(type)} row of ${cols} is ${bytesPerRow} bytes, over the ${maxPartBytes} bytes one binding may hold`);
  }
  const parts: WeightPart[] = [];
  for (let row = 0; row < rows || parts.length === 0; row += rowsPerPart) {
    const partRows = Math.min(rowsPerPart, rows - row);
    const piece = bytes.subarray(row * bytesPerRow, (row + partRows) * bytesPerRow);
    parts.push({ buffer: gpu.upload(piece, parts.length ? `${label} part ${parts.length}` : label), rows: partRows });
  }
  return { type, rows, cols, parts };
}

/** Bytes per row, after checking the type is one the kernels read and the shape fits it. */
export function checkedWeightShape(type: GGMLTypeId, rows: number, cols: number, what: string): number {
  try {
    requireKernelType(type, what);
  } catch (error) {
    throw error instanceof GGMLTypeError ? new GpuError('unsupported', error.message) : error;
  }
  check(Number.isInteger(rows) && rows >= 0 && Number.isInteger(cols) && cols > 0, () => `${what}: bad shape [${rows}][${cols}]`);
  const { name, blockSize } = typeInfo(type);
  check(cols % blockSize === 0, () => `${what}: K = ${cols} is not a multiple of the ${name} block size ${blockSize}`);
  return rowBytes(type, cols);
}

/** Checks a weight descriptor: known type, block-aligned K, parts that add up to its rows. */
export function checkWeight(w: QuantizedWeight, what: string): number {
  const bytesPerRow = checkedWeightShape(w.type, w.rows, w.cols, what);
  const partRows = w.parts.reduce((sum, p) => sum + p.rows, 0);
  check(w.parts.length > 0 && partRows === w.rows, () => `${what}: parts hold ${partRows} rows, the weight has ${w.rows}`);
  for (const part of w.parts) {
    check(part.buffer.size >= part.rows * bytesPerRow, () => `${what}: a part of ${part.rows} rows needs ${part.rows * bytesPerRow} bytes, its buffer has ${part.buffer.size}`);
  }
  return bytesPerRow;
}

/** Bytes a binding covers. */
export function bindingBytes(b: Binding): number {
  if ('usage' in b) return b.size;
  return b.size ?? b.buffer.size - (b.offset ?? 0);
}

export type MatmulVariant = 'gemv' | 'gemm' | 'rowwise';

export interface MatmulArgs {
  /** f32 [M][K], row-major. */
  x: Binding;
  /** The weight, N rows of K. */
  w: QuantizedWeight;
  /** f32 [M][N], row-major. Must not alias x or bias. */
  y: Binding;
  M: number;
  /** f32 [N], added to every row of y. */
  bias?: Binding;
  /** Kernel to use; by default gemv for M <= 8, gemm above. */
  variant?: MatmulVariant;
  /** x rows per workgroup for gemv and rowwise (1, 2, 4 or 8; default: M rounded up to a power of two, at most 8). */
  xRows?: number;
}

/** Largest number of x rows gemv handles while reading each weight once; past it, gemm. */
export const GEMV_MAX_ROWS = 8;

/** On CPU-backed adapters, rowwise beats gemm up to this many x rows; at 32 they tie. */
export const ROWWISE_MAX_ROWS_ON_CPU = 16;

/**
 * The kernel matmul picks for M rows when no variant is given. On a CPU-backed adapter gemv's
 * workgroup reduction costs 4-15x rowwise's barrier-free loop (SwiftShader, 2 cores: a 256x128
 * F32 decode matmul 14.7 ms against 1.0 ms; 1024x512 Q8_0 54 against 22 ms).
 */
export function defaultMatmulVariant(M: number, cpuBacked = false): MatmulVariant {
  if (cpuBacked) return M <= ROWWISE_MAX_ROWS_ON_CPU ? 'rowwise' : 'gemm';
  return M <= GEMV_MAX_ROWS ? 'gemv' : 'gemm';
}

/**
 * y[M][N] = x[M][K] · Wᵀ (+ bias): records one dispatch per weight part into `pass`.
 * K is w.cols and N is w.rows. W stays in its GGUF layout and is dequantized in registers.
 */
export function matmul(gpu: Gpu, pass: GPUComputePassEncoder, args: MatmulArgs): void {
  const { x, w, y, M, bias } = args;
  const bytesPerRow = checkWeight(w, 'matmul weight');
  const N = w.rows;
  const K = w.cols;
  check(Number.isInteger(M) && M >= 0, () => `matmul: bad M ${M}`);
  check(bindingBytes(x) >= M * K * 4, () => `matmul: x holds ${bindingBytes(x)} bytes, [${M}][${K}] f32 needs ${M * K * 4}`);
  check(bindingBytes(y) >= M * N * 4, () => `matmul: y holds ${bindingBytes(y)} bytes, [${M}][${N}] f32 needs ${M * N * 4}`);
  if (bias) check(bindingBytes(bias) >= N * 4, () => `matmul: bias holds ${bindingBytes(bias)} bytes, ${N} f32 needs ${N * 4}`);
  const variant = args.variant ?? defaultMatmulVariant(M, gpu.cpuBacked);
  check(variant === 'gemv' || variant === 'gemm' || variant === 'rowwise', () => `matmul: unknown variant ${variant}`);
  const xRows = args.xRows ?? Math.min(GEMV_MAX_ROWS, nextPowerOfTwo(Math.max(M, 1)));
  check([1, 2, 4, 8].includes(xRows), () => `matmul: xRows must be 1, 2, 4 or 8, not ${xRows}`);
  if (M === 0 || N === 0) return;

  const name = typeName(w.type);
  const withBias = bias !== undefined;
  let pipeline: GPUComputePipeline;
  let rowsPerGroup: number; // weight rows per workgroup
  let mPerGroup: number; // x rows per workgroup
  if (variant === 'gemv') {
    // More weight rows per workgroup reuse each x chunk more; at 4+ x rows the accumulators
    // (rows * xRows per thread) would crowd registers, so take 2.
    const rows = xRows <= 2 ? 4 : 2;
    const subgroups = gpu.features.subgroups;
    const key = `matmul-gemv-${name}-x${xRows}-r${rows}${subgroups ? '-subgroups' : ''}${withBias ? '-bias' : ''}`;
    pipeline = gpu.pipeline(key, () => gemvWgsl(w.type, { xRows, rows, subgroups, bias: withBias }));
    rowsPerGroup = rows;
    mPerGroup = xRows;
  } else if (variant === 'gemm') {
    pipeline = gpu.pipeline(`matmul-gemm-${name}${withBias ? '-bias' : ''}`, () => gemmWgsl(w.type, { bias: withBias }));
    rowsPerGroup = GEMM_TILE.n;
    mPerGroup = GEMM_TILE.m;
  } else {
    pipeline = gpu.pipeline(`matmul-rowwise-${name}-x${xRows}${withBias ? '-bias' : ''}`, () => rowwiseWgsl(w.type, { xRows, bias: withBias }));
    rowsPerGroup = MATVEC_WORKGROUP;
    mPerGroup = xRows;
  }

  const maxGroups = gpu.limits.maxComputeWorkgroupsPerDimension;
  const mGroups = Math.ceil(M / mPerGroup);
  check(mGroups <= maxGroups, () => `matmul: M = ${M} needs ${mGroups} workgroups in z, over ${maxGroups}`);
  let nOffset = 0;
  for (const part of w.parts) {
    if (part.rows > 0) {
      // The WGSL Params struct: M, N (this part), K, row_bytes, n_offset, y_stride.
      const params = gpu.uniform(new Uint32Array([M, part.rows, K, bytesPerRow, nOffset, N]));
      const [gx, gy] = grid(Math.ceil(part.rows / rowsPerGroup), maxGroups);
      const bindings: Binding[] = withBias ? [x, part.buffer, y, bias!, params] : [x, part.buffer, y, params];
      gpu.dispatch(pass, pipeline, bindings, [gx, gy, mGroups]);
    }
    nOffset += part.rows;
  }
}

function nextPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}
