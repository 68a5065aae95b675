// The committed trained models (models/, made by tools/train) against the PyTorch that trained
// them: the tokenizer gives SentencePiece's ids, our F16 logits equal PyTorch's (computed with the
// same f16-rounded weights), greedy continuations are the same tokens, Q8_0/Q4_0 stay close to F16,
// and llama.cpp loads the files and agrees with PyTorch too. On held-out text, every quantized
// form of the target model (Q8_0, Q4_0 and a Q4_K/Q6_K mix) predicts llama.cpp's next token.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, type GGMLTypeId } from '../src/formats/ggml-types';
import { readGGUF } from '../src/formats/gguf-reader';
import { encodeGGUF, type GGUFTensorSpec } from '../src/formats/gguf-writer';
import { dequantize } from '../src/formats/quantize';
import { Session } from '../src/engine/session';
import { Decoder } from '../src/models/decoder';
import { Tokenizer } from '../src/tokenizer';
import { argmax, relativeDiff, tieGap } from './logits';
import { type LlamaOracle, openLlamaOracle, openLlamaOracleOnBytes, oracleUnavailable } from './oracle/llama';
import { testGpu } from './util';

const MODELS = fileURLToPath(new URL('../models', import.meta.url));

interface Reference {
  model: string;
  vocab_size: number;
  prompts: Array<{ text: string; ids: number[]; greedy: number[] }>;
  /** Per prompt, [positions][vocab]. */
  logits: Float32Array[][];
}

function loadReference(name: string): Reference {
  const json = JSON.parse(readFileSync(join(MODELS, 'reference', `${name}.json`), 'utf8'));
  const bytes = readFileSync(join(MODELS, 'reference', json.logits_file));
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  let row = 0;
  const logits = json.prompts.map((p: { ids: number[] }) =>
    p.ids.map(() => all.subarray(row * json.vocab_size, ++row * json.vocab_size)));
  expect(row * json.vocab_size).toBe(all.length);
  return { ...json, logits };
}

async function loadModel(file: string): Promise<{ decoder: Decoder; tokenizer: Tokenizer }> {
  const gguf = await readGGUF(readFileSync(join(MODELS, file)));
  return { decoder: await Decoder.load(await testGpu(), gguf), tokenizer: Tokenizer.fromGGUFMetadata(gguf) };
}

async function evaluate(decoder: Decoder, ids: number[], prefillChunk = 16): Promise<Float32Array[]> {
  const session = new Session(await testGpu(), decoder, { contextLength: 256, prefillChunk });
  try {
    return await session.evaluate(ids);
  } finally {
    session.destroy();
  }
}

/** Greedy tokens after `ids`, the argmax taken on the GPU (only ids are read back). */
async function greedy(decoder: Decoder, ids: number[], count: number): Promise<number[]> {
  const session = new Session(await testGpu(), decoder, { contextLength: 256, prefillChunk: 16 });
  try {
    const out = [await session.feedGreedy(ids)];
    while (out.length < count) out.push(await session.feedGreedy([out.at(-1)!]));
    return out;
  } finally {
    session.destroy();
  }
}

for (const name of ['target', 'draft']) {
  describe(`trained ${name} model`, () => {
    const reference = loadReference(name);
    let f16: { decoder: Decoder; tokenizer: Tokenizer };
    beforeAll(async () => {
      f16 = await loadModel(`${name}.f16.gguf`);
    });
    afterAll(() => f16?.decoder.destroy());

    it('tokenizes the reference prompts exactly as SentencePiece did', () => {
      for (const p of reference.prompts) expect(f16.tokenizer.encode(p.text, { addSpecial: true })).toEqual(p.ids);
    });

    it('F16 logits equal PyTorch\'s at every position', async () => {
      let worst = 0;
      for (const [i, p] of reference.prompts.entries()) {
        const got = await evaluate(f16.decoder, p.ids);
        got.forEach((row, j) => {
          worst = Math.max(worst, relativeDiff(row, reference.logits[i][j]));
          expect(argmax(row)).toBe(argmax(reference.logits[i][j]));
        });
      }
      console.log(`${name} F16 vs PyTorch: max |Δlogit| / range = ${worst.toExponential(2)}`);
      // Same f16-rounded weights on both sides; what remains is f32 summation order.
      expect(worst).toBeLessThan(1e-4);
    });

    it('greedy continuations are PyTorch\'s tokens', async () => {
      for (const p of reference.prompts) {
        const want = p.greedy.slice(0, 32); // PyTorch's reference has 48; 32 keep the test short on a software adapter
        expect(await greedy(f16.decoder, p.ids, want.length)).toEqual(want);
      }
    }, 300_000);

    for (const [variant, minAgreement] of [['q8_0', 0.97], ['q4_0', 0.8]] as const) {
      it(`${variant.toUpperCase()} agrees with F16 on the next token (teacher-forced over prompts and continuations)`, async () => {
        const { decoder } = await loadModel(`${name}.${variant}.gguf`);
        let agree = 0, total = 0, worst = 0;
        try {
          for (const [i, p] of reference.prompts.entries()) {
            const ids = [...p.ids, ...p.greedy];
            const quantized = await evaluate(decoder, ids);
            const full = await evaluate(f16.decoder, ids);
            quantized.forEach((row, j) => {
              total++;
              if (argmax(row) === argmax(full[j])) agree++;
              if (j < p.ids.length) worst = Math.max(worst, relativeDiff(row, reference.logits[i][j]));
            });
          }
        } finally {
          decoder.destroy();
        }
        console.log(`${name} ${variant}: top-1 agreement with F16 ${agree}/${total}, max |Δlogit| / range vs PyTorch ${worst.toExponential(2)}`);
        expect(agree / total).toBeGreaterThanOrEqual(minAgreement);
      }, 300_000);
    }

    describe.skipIf(!!oracleUnavailable())('in llama.cpp', () => {
      let oracle: LlamaOracle;
      beforeAll(async () => {
        oracle = await openLlamaOracle(join(MODELS, `${name}.f16.gguf`), { contextSize: 256 });
      });
      afterAll(async () => oracle?.close());

      it('llama.cpp tokenizes like SentencePiece and its logits agree with PyTorch\'s', async () => {
        let worst = 0;
        for (const [i, p] of reference.prompts.entries()) {
          expect(oracle.tokenize(p.text)).toEqual(p.ids);
          const got = await oracle.logits(p.ids);
          got.forEach((row, j) => {
            worst = Math.max(worst, relativeDiff(row, reference.logits[i][j]));
            expect(argmax(row)).toBe(argmax(reference.logits[i][j]));
          });
        }
        console.log(`${name} llama.cpp F16 vs PyTorch: max |Δlogit| / range = ${worst.toExponential(2)}`);
        // llama.cpp rounds activations to f16 before F16 dot products: about 1e-3 of the range.
        expect(worst).toBeLessThan(1e-2);
      });
    });
  });
}

/**
 * The F16 target re-typed in the manner of llama-quantize's Q4_K_M: Q6_K for attn_v, ffn_down
 * and output (Q4_K_M gives attn_v and ffn_down Q6_K in some layers; here in all), Q4_K for the
 * other matrices, and Q8_0 (llama.cpp's fallback for Q6_K) where rows are not whole 256-value
 * super-blocks (ffn_down's 704 columns).
 */
async function kQuantMix(file: string): Promise<Uint8Array> {
  const source = await readGGUF(readFileSync(join(MODELS, file)));
  const tensors: GGUFTensorSpec[] = [];
  for (const info of source.tensors) {
    const bytes = await source.readTensor(info);
    const f32 = dequantize(info.type, bytes, info.dims.reduce((a, b) => a * b, 1));
    let type: GGMLTypeId = GGMLType.F32;
    if (info.dims.length >= 2) {
      if (info.dims[0] % 256 !== 0) type = GGMLType.Q8_0;
      else type = /attn_v|ffn_down|^output/.test(info.name) ? GGMLType.Q6_K : GGMLType.Q4_K;
    }
    tensors.push({ name: info.name, dims: info.dims, type, f32 });
  }
  return encodeGGUF({ metadata: new Map(source.metadata), tensors });
}

// The seeded fixtures of test/decoder.test.ts have near-ties at a few percent of positions, where
// summation order alone can move llama.cpp's 8-bit activation rounding; real text on a trained
// model is what the 99% of issue 3 is about.
describe.skipIf(!!oracleUnavailable())('trained target, quantized, against llama.cpp on held-out text', () => {
  const passages: string[] = JSON.parse(readFileSync(join(MODELS, 'reference', 'held-out.json'), 'utf8')).passages;
  const variants: Array<[string, () => Promise<Uint8Array>]> = [
    ['Q8_0', async () => readFileSync(join(MODELS, 'target.q8_0.gguf'))],
    ['Q4_0', async () => readFileSync(join(MODELS, 'target.q4_0.gguf'))],
    ['Q4_K/Q6_K', () => kQuantMix('target.f16.gguf')],
  ];
  for (const [name, bytes] of variants) {
    it(`${name}: teacher-forced top-1 agreement of at least 99%, flips only at near-ties, and llama.cpp's greedy continuations`, async () => {
      const gguf = await bytes();
      const gpu = await testGpu();
      const file = await readGGUF(gguf);
      // Activations rounded as llama.cpp rounds them, so both compute the same thing.
      const decoder = await Decoder.load(gpu, file, undefined, { roundActivationsLikeLlamaCpp: true });
      const oracle = await openLlamaOracleOnBytes(gguf, { contextSize: 256 });
      const tokenizer = Tokenizer.fromGGUFMetadata(file);
      let agree = 0, total = 0, widestGap = 0, sameGreedy = 0;
      try {
        for (const text of passages) {
          const ids = tokenizer.encode(text, { addSpecial: true });
          const want = await oracle.logits(ids);
          const got = await evaluate(decoder, ids, 64);
          got.forEach((row, i) => {
            total++;
            if (argmax(row) === argmax(want[i])) agree++;
            else widestGap = Math.max(widestGap, tieGap(want[i], argmax(row)));
          });
        }
        for (const text of passages.slice(0, 3)) {
          const ids = tokenizer.encode(text.split(' ').slice(0, 12).join(' '), { addSpecial: true });
          if ((await greedy(decoder, ids, 32)).join() === (await oracle.greedy(ids, 32)).join()) sameGreedy++;
        }
      } finally {
        decoder.destroy();
        await oracle.close();
      }
      console.log(`target ${name} vs llama.cpp on held-out text: top-1 ${agree}/${total} (${(100 * agree / total).toFixed(2)}%), widest flipped gap ${widestGap.toFixed(4)} of the range, greedy ${sameGreedy}/3 identical`);
      expect(total).toBeGreaterThan(1000);
      expect(agree / total).toBeGreaterThanOrEqual(0.99);
      expect(widestGap).toBeLessThan(0.01);
      expect(sameGreedy).toBeGreaterThanOrEqual(2);
    }, 300_000);
  }
});
