// A seeded GGUF with SmolLM2-135M's shapes, for the model benchmark (Node only: writes a file).
// The test fixture writer (test/oracle/llama-fixture.ts) makes the layers; its 359-token
// vocabulary is widened to SmolLM2's 49152 with filler tokens so the embedding and the tied output
// head have the real size. Tokenizer content does not matter for speed; llama.cpp just has to load
// it. Seeding and quantizing ~135M values takes about 5 s per file, so the file is cached under
// bench/results/tmp/ (gitignored).
import { createWriteStream, existsSync, mkdirSync, renameSync } from 'node:fs';
import { once } from 'node:events';
import { GGMLType } from '../src/formats/ggml-types';
import { GGUFType, type GGUFValue, gv } from '../src/formats/gguf';
import { type GGUFTensorSpec, encodeGGUFParts } from '../src/formats/gguf-writer';
import { TokenType, llamaFixtureSpec, llamaFixtureVocab } from '../test/oracle/llama-fixture';
import { randomNormal } from '../test/random';
import { type BenchWeightType, modelFileName } from './model-plan';

/** SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json). */
export const smolLM2Shape = {
  nEmbd: 576, nLayer: 30, nHead: 9, nHeadKv: 3, nFf: 1536, nVocab: 49152,
  contextLength: 2048, ropeBase: 100000, rmsEps: 1e-5,
} as const;

/** Every matrix (embedding and tied output head included) in `type`; norms F32. */
export function smolLM2Spec(type: BenchWeightType, seed = 135) {
  const s = smolLM2Shape;
  const ggmlType = GGMLType[type];
  const { spec } = llamaFixtureSpec({
    seed, nEmbd: s.nEmbd, nHead: s.nHead, nHeadKv: s.nHeadKv, nLayer: s.nLayer, nFf: s.nFf,
    contextLength: s.contextLength, ropeBase: s.ropeBase, rmsEps: s.rmsEps, matrixType: ggmlType, tiedOutput: true,
  });
  const vocab = llamaFixtureVocab();
  for (let i = vocab.tokens.length; i < s.nVocab; i++) {
    vocab.tokens.push(`<filler_${i}>`);
    vocab.scores.push(-1000 - i);
    vocab.types.push(TokenType.NORMAL);
  }
  const replaced = new Map<string, GGUFValue>([
    ['llama.vocab_size', gv.u32(s.nVocab)],
    ['general.name', gv.str(`tokenwise-bench-smollm2-135m-shape-${type}-${seed}`)],
    ['tokenizer.ggml.tokens', gv.strings(vocab.tokens)],
    ['tokenizer.ggml.scores', gv.f32s(vocab.scores)],
    ['tokenizer.ggml.token_type', gv.array(GGUFType.INT32, Int32Array.from(vocab.types))],
  ]);
  const metadata = [...(spec.metadata as Iterable<readonly [string, GGUFValue]>)].map(([k, v]) => [k, replaced.get(k) ?? v] as const);
  const embedding: GGUFTensorSpec = { name: 'token_embd.weight', dims: [s.nEmbd, s.nVocab], type: ggmlType, f32: randomNormal(s.nEmbd * s.nVocab, seed + 1) };
  const tensors = spec.tensors!.map((t) => (t.name === 'token_embd.weight' ? embedding : t));
  return { metadata, tensors };
}

/**
 * The cached file's path, written first if missing (streamed: one quantized tensor at a time,
 * renamed into place when complete so an interrupted run leaves no half file).
 */
export async function ensureModelFile(type: BenchWeightType, dir = 'bench/results/tmp', log: (line: string) => void = () => {}): Promise<string> {
  const path = `${dir}/${modelFileName(type)}`;
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const started = performance.now();
  const spec = smolLM2Spec(type);
  const generated = performance.now();
  const partial = `${path}.partial`;
  const out = createWriteStream(partial);
  let bytes = 0;
  for (const part of encodeGGUFParts(spec)) {
    bytes += part.byteLength;
    if (!out.write(part)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  renameSync(partial, path);
  const done = performance.now();
  log(`wrote ${path} (${(bytes / 2 ** 20).toFixed(1)} MiB): seeded weights in ${((generated - started) / 1000).toFixed(1)} s, quantized and written in ${((done - generated) / 1000).toFixed(1)} s`);
  return path;
}
