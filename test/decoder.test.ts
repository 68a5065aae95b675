// The GPU decoder against llama.cpp on seeded llama GGUFs of every weight type: teacher-forced
// logits at every position of prompts of several lengths (longer than one prefill chunk, past
// several KV pages), and greedy continuations.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, typeName } from '../src/formats/ggml-types';
import { readGGUF } from '../src/formats/gguf-reader';
import { Session } from '../src/engine/session';
import { Decoder } from '../src/models/decoder';
import { hfFixture } from './oracle/hf-fixture';
import { llamaFixture } from './oracle/llama-fixture';
import { type LlamaOracle, openLlamaOracleOnBytes, oracleUnavailable } from './oracle/llama';
import { argmax, range, tieGap } from './logits';
import { rng, testGpu } from './util';

const shape = { nEmbd: 256, nHead: 4, nHeadKv: 2, nLayer: 2, nFf: 512, contextLength: 512 };

// Even with the same activation rounding, summation order differs, so on quantized weights a flip
// is allowed only at a near-tie of llama.cpp's own logits.
const NEAR_TIE = 0.01;

function prompt(length: number, vocab: number, seed: number): number[] {
  const r = rng(seed);
  // BOS, then ordinary tokens (past the 3 specials and 256 byte tokens).
  return [1, ...Array.from({ length: length - 1 }, () => 259 + Math.floor(r() * (vocab - 259)))];
}

const kQuantMix = (name: string) => (/ffn_down|attn_v|output/.test(name) ? GGMLType.Q6_K : GGMLType.Q4_K);

const cases: Array<{ name: string; matrixType: number | ((n: string) => number); exact: boolean; architecture?: 'llama' | 'qwen2' | 'qwen3'; tiedOutput?: boolean; minAgreement?: number }> = [
  { name: 'qwen2 F32 (QKV bias, NeoX RoPE)', matrixType: GGMLType.F32, exact: true, architecture: 'qwen2' },
  { name: 'qwen3 F32 (Q/K norm, tied output)', matrixType: GGMLType.F32, exact: true, architecture: 'qwen3', tiedOutput: true },
  { name: 'F32', matrixType: GGMLType.F32, exact: true },
  { name: 'F16', matrixType: GGMLType.F16, exact: true },
  { name: 'Q8_0', matrixType: GGMLType.Q8_0, exact: false },
  { name: 'Q4_0', matrixType: GGMLType.Q4_0, exact: false },
  // Measured 170/174 (97.7%): every flip at a near-tie of llama.cpp's logits. The 8-bit rounding is
  // llama.cpp's, but summation order moves a value across a rounding step now and then, and these
  // random weights put near-ties at a few percent of positions. The trained target model on
  // held-out text agrees at 99.7% in this mix (test/trained-models.test.ts).
  { name: 'Q4_K/Q6_K', matrixType: kQuantMix, exact: false, minAgreement: 0.97 },
];

describe.skipIf(process.platform !== 'linux' || process.arch !== 'x64')('llama decoder on the GPU vs llama.cpp', () => {
  for (const c of cases) {
    describe(c.name, () => {
      const gguf = llamaFixture({ ...shape, matrixType: c.matrixType, seed: 77, architecture: c.architecture, tiedOutput: c.tiedOutput });
      let oracle: LlamaOracle;
      let decoder: Decoder;
      beforeAll(async () => {
        const why = oracleUnavailable();
        if (why) throw new Error(why);
        oracle = await openLlamaOracleOnBytes(gguf, { contextSize: 512 });
        // Quantized weights: round the activations as llama.cpp does (8-bit blocks) so the two compute
        // the same thing; our default keeps them exact, which is more accurate and not comparable.
        decoder = await Decoder.load(await testGpu(), await readGGUF(gguf), undefined, { roundActivationsLikeLlamaCpp: !c.exact });
      });
      afterAll(async () => {
        await oracle?.close();
        decoder?.destroy();
      });

      it('teacher-forced logits agree at every position (prompts of 1, 23 and 150 tokens, prefill chunk 64)', async () => {
        const gpu = await testGpu();
        let worstRel = 0;
        let worstGap = 0;
        let agree = 0, total = 0;
        for (const [length, seed] of [[1, 1], [23, 2], [150, 3]]) {
          const tokens = prompt(length, decoder.config.vocabSize, seed);
          const want = await oracle.logits(tokens);
          const session = new Session(gpu, decoder, { contextLength: 256, prefillChunk: 64 });
          const got = await session.evaluate(tokens);
          session.destroy();
          got.forEach((row, i) => {
            let diff = 0;
            for (let j = 0; j < row.length; j++) diff = Math.max(diff, Math.abs(row[j] - want[i][j]));
            worstRel = Math.max(worstRel, diff / range(want[i]));
            total++;
            if (argmax(row) === argmax(want[i])) agree++;
            else worstGap = Math.max(worstGap, tieGap(want[i], argmax(row)));
          });
        }
        console.log(`${c.name}: max |Δlogit| / logit range = ${worstRel.toExponential(2)}, top-1 agreement ${agree}/${total}, widest flipped gap ${worstGap.toFixed(4)} of the range`);
        if (c.exact) {
          // F32: the same arithmetic up to f32 summation order. F16: llama.cpp also rounds the
          // activations to f16 before F16 dot products, which is most of the difference.
          expect(worstRel).toBeLessThan(1e-3);
          expect(agree).toBe(total);
        } else {
          expect(worstGap).toBeLessThan(NEAR_TIE);
          expect(agree / total).toBeGreaterThanOrEqual(c.minAgreement ?? 0.99);
        }
      });

      it('greedy continuations match llama.cpp', async () => {
        const gpu = await testGpu();
        const count = c.exact ? 64 : 32;
        let same = 0;
        let worstGap = 0;
        // Prompts ending inside a KV page and crossing several pages and a prefill chunk.
        const prompts = c.exact
          ? [prompt(5, decoder.config.vocabSize, 11), prompt(90, decoder.config.vocabSize, 13)]
          : [prompt(5, decoder.config.vocabSize, 11), prompt(40, decoder.config.vocabSize, 12), prompt(90, decoder.config.vocabSize, 13)];
        for (const tokens of prompts) {
          const want = await oracle.greedy(tokens, count);
          const session = new Session(gpu, decoder, { contextLength: 256, prefillChunk: 32 });
          const got: number[] = [];
          let logits = (await session.evaluate(tokens)).at(-1)!;
          while (got.length < want.length) {
            const id = argmax(logits);
            got.push(id);
            if (got.length < want.length) logits = (await session.evaluate([id]))[0];
          }
          session.destroy();
          if (got.join() === want.join()) {
            same++;
            continue;
          }
          const at = got.findIndex((t, i) => t !== want[i]);
          const context = [...tokens, ...want.slice(0, at)];
          const gap = tieGap((await oracle.logits(context)).at(-1)!, got[at]);
          worstGap = Math.max(worstGap, gap);
          console.log(`${c.name}: greedy differs from llama.cpp at token ${at} of ${want.length}, a near-tie (gap ${gap.toFixed(4)} of the range)`);
        }
        if (c.exact) expect(same).toBe(prompts.length);
        else {
          expect(same).toBeGreaterThanOrEqual(prompts.length - 1);
          expect(worstGap).toBeLessThan(NEAR_TIE);
        }
      });
    });
  }

  it('llama3 RoPE frequency factors (rope_freqs.weight): logits match llama.cpp', async () => {
    const gpu = await testGpu();
    const { gguf } = hfFixture({ ...shape, architecture: 'llama', dtype: 'F32', seed: 91, ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 } });
    const oracle = await openLlamaOracleOnBytes(gguf, { contextSize: 512 });
    const decoder = await Decoder.load(gpu, await readGGUF(gguf));
    try {
      expect(decoder.weights.ropeTable).toBeDefined();
      const tokens = prompt(120, decoder.config.vocabSize, 21);
      const want = await oracle.logits(tokens);
      const session = new Session(gpu, decoder, { contextLength: 256, prefillChunk: 64 });
      const got = await session.evaluate(tokens);
      session.destroy();
      let worst = 0;
      got.forEach((row, i) => row.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - want[i][j]) / range(want[i])))));
      console.log(`llama3 RoPE scaling: max |Δlogit| / logit range = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-3);
    } finally {
      await oracle.close();
      decoder.destroy();
    }
  });

  it('names the architecture or tensor type it cannot run', async () => {
    const gpu = await testGpu();
    const bytes = llamaFixture({ ...shape, seed: 5 });
    const file = await readGGUF(bytes);
    (file.metadata as Map<string, unknown>).set('general.architecture', { type: 8, value: 'mamba' });
    await expect(Decoder.load(gpu, file)).rejects.toThrow(/architecture "mamba" is not supported/);
    expect(typeName(GGMLType.Q2_K)).toBe('Q2_K');
  });
});
