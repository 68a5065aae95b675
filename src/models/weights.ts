// Decoder weights onto the GPU, one tensor at a time (never two copies of the model in JS memory),
// from any TensorSource: a GGUF file, or a Hugging Face checkpoint whose names models/huggingface
// maps to GGUF's. Matrices stay in their block format (GGUF's, or safetensors' F32/F16/BF16, which
// are the same bytes); norm weights and biases become f32. Every tensor is checked (present,
// shape, type) before anything is allocated.
import type { GGUFFile } from '../formats/gguf-reader';
import { isKernelType, typeName } from '../formats/ggml-types';
import { dequantize } from '../formats/quantize';
import type { Gpu } from '../gpu';
import { type QuantizedWeight, uploadWeight } from '../kernels/matmul';
import { ropeFrequencies, ropeTable } from '../kernels/rope';
import { type DecoderConfig, ModelFormatError } from './config';

export interface DecoderLayerWeights {
  attnNorm: GPUBuffer;
  wq: QuantizedWeight;
  wk: QuantizedWeight;
  wv: QuantizedWeight;
  /** qwen2's Q/K/V biases. */
  bq?: GPUBuffer;
  bk?: GPUBuffer;
  bv?: GPUBuffer;
  /** qwen3's per-head RMSNorm weights over headDim. */
  qNorm?: GPUBuffer;
  kNorm?: GPUBuffer;
  wo: QuantizedWeight;
  ffnNorm: GPUBuffer;
  gate: QuantizedWeight;
  up: QuantizedWeight;
  down: QuantizedWeight;
}

export interface DecoderWeights {
  embedding: QuantizedWeight;
  layers: DecoderLayerWeights[];
  outputNorm: GPUBuffer;
  /** The output head; the embedding table itself when the model ties them. */
  output: QuantizedWeight;
  /** RoPE frequency table (kernels/rope ropeTable), including llama3 frequency factors when present. */
  ropeTable: GPUBuffer;
  /** Bytes of GPU memory the weights take. */
  bytes: number;
}

/** One tensor as the loader sees it, whatever the file format. */
export interface SourceTensor {
  /** GGML type of the bytes read() gives; undefined when the file's type has none (I64, F8, ...). */
  type: number | undefined;
  /** The type for messages: 'GGML type Q2_K (10)', 'dtype I64'. */
  typeLabel: string;
  /** GGUF order, fastest first: [cols, rows] for a matrix. */
  dims: number[];
  elements: number;
  /** Bytes of data; undefined when the type is unknown. */
  nbytes: number | undefined;
  read(): Promise<Uint8Array>;
}

/** Tensors under the decoder's (GGUF) names. */
export interface TensorSource {
  tensor(name: string): SourceTensor | undefined;
  /** The name the file uses, for messages (default: the GGUF name). */
  nameInFile?(name: string): string;
}

export function ggufTensorSource(file: GGUFFile): TensorSource {
  return {
    tensor(name) {
      const info = file.tensor(name);
      if (!info) return undefined;
      return {
        type: info.type, typeLabel: `GGML type ${typeName(info.type)} (${info.type})`, dims: info.dims,
        elements: info.elements, nbytes: info.nbytes, read: () => file.readTensor(info),
      };
    },
  };
}

type Shape = { kind: 'matrix'; rows: number; cols: number } | { kind: 'vector'; n: number };

/** Every tensor the decoder reads, with the shape it must have, by GGUF name. */
function tensorPlan(c: DecoderConfig, file: TensorSource): Map<string, Shape> {
  const plan = new Map<string, Shape>();
  const matrix = (name: string, rows: number, cols: number) => plan.set(name, { kind: 'matrix', rows, cols });
  const vector = (name: string, n: number) => plan.set(name, { kind: 'vector', n });
  const qDim = c.heads * c.headDim;
  const kvDim = c.kvHeads * c.headDim;
  matrix('token_embd.weight', c.vocabSize, c.hidden);
  vector('output_norm.weight', c.hidden);
  if (file.tensor('output.weight')) matrix('output.weight', c.vocabSize, c.hidden);
  if (file.tensor('rope_freqs.weight')) vector('rope_freqs.weight', c.ropeDim / 2);
  for (let l = 0; l < c.layers; l++) {
    const p = `blk.${l}.`;
    vector(`${p}attn_norm.weight`, c.hidden);
    matrix(`${p}attn_q.weight`, qDim, c.hidden);
    matrix(`${p}attn_k.weight`, kvDim, c.hidden);
    matrix(`${p}attn_v.weight`, kvDim, c.hidden);
    if (c.architecture === 'qwen2') {
      vector(`${p}attn_q.bias`, qDim);
      vector(`${p}attn_k.bias`, kvDim);
      vector(`${p}attn_v.bias`, kvDim);
    }
    if (c.architecture === 'qwen3') {
      vector(`${p}attn_q_norm.weight`, c.headDim);
      vector(`${p}attn_k_norm.weight`, c.headDim);
    }
    matrix(`${p}attn_output.weight`, c.hidden, qDim);
    vector(`${p}ffn_norm.weight`, c.hidden);
    matrix(`${p}ffn_gate.weight`, c.ffn, c.hidden);
    matrix(`${p}ffn_up.weight`, c.ffn, c.hidden);
    matrix(`${p}ffn_down.weight`, c.hidden, c.ffn);
  }
  return plan;
}

/** Checks every tensor of the plan, so a bad file fails before any GPU memory is allocated. */
function checkTensors(file: TensorSource, plan: Map<string, Shape>, gpu: Gpu): number {
  let bytes = 0;
  const problems: string[] = [];
  for (const [planned, shape] of plan) {
    const name = file.nameInFile?.(planned) ?? planned;
    const info = file.tensor(planned);
    if (!info) {
      problems.push(`missing tensor ${name}`);
      continue;
    }
    const expected = shape.kind === 'matrix' ? [shape.cols, shape.rows] : [shape.n];
    const dims = info.dims.length > expected.length && info.dims.slice(expected.length).every((d) => d === 1) ? info.dims.slice(0, expected.length) : info.dims;
    if (dims.length !== expected.length || dims.some((d, i) => d !== expected[i])) {
      problems.push(`tensor ${name} has dims [${info.dims.join(', ')}], expected [${expected.join(', ')}]`);
    }
    if (info.type === undefined || !isKernelType(info.type)) problems.push(`tensor ${name} has ${info.typeLabel}, which tokenwise cannot run`);
    if (info.nbytes !== undefined) {
      bytes += shape.kind === 'matrix' ? info.nbytes : 4 * info.elements;
      if (shape.kind === 'vector' && 4 * info.elements > gpu.limits.maxStorageBufferBindingSize) problems.push(`tensor ${name} is too large for one binding`);
    }
  }
  if (problems.length) {
    const unsupported = problems.some((p) => p.includes('cannot run'));
    throw new ModelFormatError(unsupported ? 'unsupported-architecture' : 'bad-model', `cannot load this model: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? `; and ${problems.length - 8} more` : ''}`);
  }
  return bytes;
}

export interface LoadProgress {
  tensorsDone: number;
  tensorsTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export async function loadDecoderWeights(gpu: Gpu, file: TensorSource, c: DecoderConfig, onProgress?: (p: LoadProgress) => void): Promise<DecoderWeights> {
  const plan = tensorPlan(c, file);
  const bytesTotal = checkTensors(file, plan, gpu);
  const created: GPUBuffer[] = [];
  let tensorsDone = 0;
  let bytesDone = 0;
  const progress = (info: SourceTensor) => {
    tensorsDone++;
    bytesDone += info.nbytes ?? 0;
    onProgress?.({ tensorsDone, tensorsTotal: plan.size, bytesDone, bytesTotal });
  };

  const matrix = async (name: string): Promise<QuantizedWeight> => {
    const info = file.tensor(name)!;
    const shape = plan.get(name) as { rows: number; cols: number };
    const weight = uploadWeight(gpu, info.type!, shape.rows, shape.cols, await info.read(), { label: name });
    created.push(...weight.parts.map((p) => p.buffer));
    progress(info);
    return weight;
  };
  const vectorData = async (name: string): Promise<Float32Array> => {
    const info = file.tensor(name)!;
    const data = dequantize(info.type!, await info.read(), info.elements);
    progress(info);
    return data;
  };
  const vector = async (name: string): Promise<GPUBuffer> => {
    const buffer = gpu.upload(await vectorData(name), name);
    created.push(buffer);
    return buffer;
  };
  const optionalVector = (name: string) => (plan.has(name) ? vector(name) : Promise.resolve(undefined));

  try {
    const layers: DecoderLayerWeights[] = [];
    for (let l = 0; l < c.layers; l++) {
      const p = `blk.${l}.`;
      layers.push({
        attnNorm: await vector(`${p}attn_norm.weight`),
        wq: await matrix(`${p}attn_q.weight`),
        wk: await matrix(`${p}attn_k.weight`),
        wv: await matrix(`${p}attn_v.weight`),
        bq: await optionalVector(`${p}attn_q.bias`),
        bk: await optionalVector(`${p}attn_k.bias`),
        bv: await optionalVector(`${p}attn_v.bias`),
        qNorm: await optionalVector(`${p}attn_q_norm.weight`),
        kNorm: await optionalVector(`${p}attn_k_norm.weight`),
        wo: await matrix(`${p}attn_output.weight`),
        ffnNorm: await vector(`${p}ffn_norm.weight`),
        gate: await matrix(`${p}ffn_gate.weight`),
        up: await matrix(`${p}ffn_up.weight`),
        down: await matrix(`${p}ffn_down.weight`),
      });
    }
    const embedding = await matrix('token_embd.weight');
    const output = plan.has('output.weight') ? await matrix('output.weight') : embedding;
    const outputNorm = await vector('output_norm.weight');
    const freqFactors = plan.has('rope_freqs.weight') ? await vectorData('rope_freqs.weight') : undefined;
    const table = ropeTable(ropeFrequencies({ ropeDim: c.ropeDim, base: c.ropeBase, scaling: c.ropeScaling, freqFactors }));
    const ropeBuffer = gpu.upload(table, 'rope table');
    created.push(ropeBuffer);
    return { embedding, layers, outputNorm, output, ropeTable: ropeBuffer, bytes: created.reduce((sum, b) => sum + b.size, 0) };
  } catch (error) {
    for (const buffer of created) buffer.destroy();
    throw error;
  }
}

export function destroyDecoderWeights(w: DecoderWeights): void {
  const seen = new Set<GPUBuffer>();
  const all = [w.embedding, w.output, ...w.layers.flatMap((l) => [l.wq, l.wk, l.wv, l.wo, l.gate, l.up, l.down])].flatMap((q) => q.parts.map((p) => p.buffer));
  all.push(w.outputNorm, w.ropeTable, ...w.layers.flatMap((l) => [l.attnNorm, l.ffnNorm, l.bq, l.bk, l.bv, l.qNorm, l.kNorm].filter((b): b is GPUBuffer => !!b)));
  for (const b of all) if (!seen.has(b)) (seen.add(b), b.destroy());
}
