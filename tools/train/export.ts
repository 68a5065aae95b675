// Writes the committed model files under models/ from the F32 GGUFs that train.py leaves in
// tools/train/out/: the language models in F16, Q8_0 and Q4_0, the VLM's language model and its
// mmproj in F16. Tensors are re-typed with tokenwise's own quantizers, which are byte-exact with
// ggml's, so these files are what llama.cpp's llama-quantize would write from the same F32 file.
//
//   npx tsx tools/train/export.ts [target] [draft] [vlm]     (default: all three)

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readGGUF } from '../../src/formats/gguf-reader';
import { gv } from '../../src/formats/gguf';
import { encodeGGUF, type GGUFTensorSpec } from '../../src/formats/gguf-writer';
import { GGMLType } from '../../src/formats/ggml-types';

const OUT = join(import.meta.dirname, 'out');
const MODELS = join(import.meta.dirname, '..', '..', 'models');

/** llama.cpp's general.file_type values. */
const FILE_TYPE = { F16: 1, Q4_0: 2, Q8_0: 7 } as const;
type Variant = keyof typeof FILE_TYPE;

/** F16 files keep 1-D tensors (norms, biases) and position embeddings in F32, as llama.cpp's converters do;
 * quantized files quantize every matrix whose rows are whole blocks and keep the rest F16/F32. */
function typeFor(name: string, dims: number[], variant: Variant): number {
  if (dims.length < 2 || name === 'v.position_embd.weight') return GGMLType.F32;
  if (variant !== 'F16' && dims[0] % 32 === 0) return GGMLType[variant];
  return GGMLType.F16;
}

async function convert(from: string, to: string, variant: Variant): Promise<void> {
  const file = await readGGUF(readFileSync(join(OUT, from)));
  const metadata = new Map(file.metadata);
  metadata.set('general.file_type', gv.u32(FILE_TYPE[variant]));
  const tensors: GGUFTensorSpec[] = [];
  for (const info of file.tensors) {
    if (info.type !== GGMLType.F32) throw new Error(`${from}: ${info.name} is ${info.typeName}, expected F32 from train.py`);
    const bytes = await file.readTensor(info);
    const f32 = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    tensors.push({ name: info.name, dims: info.dims, type: typeFor(info.name, info.dims, variant), f32 });
  }
  const encoded = encodeGGUF({ metadata, tensors });
  writeFileSync(join(MODELS, to), encoded);
  console.log(`${to}: ${(encoded.byteLength / 2 ** 20).toFixed(2)} MiB`);
}

const wanted = process.argv.slice(2).length ? process.argv.slice(2) : ['target', 'draft', 'vlm'];
for (const name of wanted.filter((n) => n === 'target' || n === 'draft')) {
  for (const variant of ['F16', 'Q8_0', 'Q4_0'] as const) {
    await convert(`${name}.f32.gguf`, `${name}.${variant.toLowerCase()}.gguf`, variant);
  }
}
if (wanted.includes('vlm')) {
  await convert('vlm.f32.gguf', 'vlm.f16.gguf', 'F16');
  await convert('vlm-mmproj.f32.gguf', 'vlm-mmproj.f16.gguf', 'F16');
}
