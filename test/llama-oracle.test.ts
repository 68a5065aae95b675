// The llama.cpp oracle, proven on a seeded llama GGUF written by our writer: llama.cpp loads it,
// tokenizes with it, returns logits of the right shape that are far from flat, and those logits
// match our plain float64 reference forward pass. This is the template for GPU model tests.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, typeName } from '../src/formats/ggml-types';
import { readGGUF } from '../src/formats/gguf-reader';
import { type LlamaReferenceModel, llamaForward, loadLlamaReference } from '../src/reference/llama';
import { llamaFixture, llamaFixtureVocab } from './oracle/llama-fixture';
import { type LlamaOracle, openLlamaOracleOnBytes, oracleUnavailable } from './oracle/llama';

const linuxX64 = process.platform === 'linux' && process.arch === 'x64';

/** Max |a - b| over all positions and tokens. */
function maxAbsDiff(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  a.forEach((row, i) => {
    expect(row.length).toBe(b[i]!.length);
    for (let j = 0; j < row.length; j++) worst = Math.max(worst, Math.abs(row[j]! - b[i]![j]!));
  });
  return worst;
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

// Elsewhere than linux-x64 the oracle is not set up, and these tests skip; on linux-x64 a missing
// install is a failure (tools/llama-oracle/install.mjs puts it there).
describe.skipIf(!linuxX64)('llama.cpp oracle on a seeded llama GGUF', () => {
  const gguf = llamaFixture();
  const vocab = llamaFixtureVocab();
  let oracle: LlamaOracle;
  let reference: LlamaReferenceModel;

  beforeAll(async () => {
    const why = oracleUnavailable();
    if (why) throw new Error(why);
    oracle = await openLlamaOracleOnBytes(gguf);
    reference = await loadLlamaReference(await readGGUF(gguf));
  });
  afterAll(async () => { await oracle?.close(); });

  it('the fixture is a well-formed llama GGUF', async () => {
    const file = await readGGUF(gguf);
    expect(file.getString('general.architecture')).toBe('llama');
    expect(file.tensors).toHaveLength(2 + 9 * reference.config.nLayer + 1);
    expect(file.tensor('token_embd.weight')!.dims).toEqual([64, vocab.tokens.length]);
    expect(file.tensor('blk.0.attn_k.weight')!.dims).toEqual([64, 32]); // GQA: 2 KV heads of 16
    expect(file.tensor('blk.1.ffn_down.weight')!.dims).toEqual([128, 64]);
  });

  it('loads in llama.cpp and tokenizes with the GGUF vocabulary, byte fallback included', () => {
    expect(oracle.nVocab).toBe(vocab.tokens.length);
    const id = (piece: string) => vocab.tokens.indexOf(piece);
    const hello = oracle.tokenize('the cat sat');
    expect(hello).toEqual([1, id('▁the'), id('▁cat'), id('▁sat')]);
    expect(oracle.detokenize(hello.slice(1)).trim()).toBe('the cat sat');
    // "é" is not in the vocabulary: UTF-8 bytes C3 A9 as <0xC3> <0xA9>.
    expect(oracle.tokenize('é', { addBos: false })).toEqual([id('▁'), id('<0xC3>'), id('<0xA9>')]);
    expect(oracle.tokenize('é', { addBos: false }).every((t) => t >= 0)).toBe(true);
    expect(oracle.detokenize(oracle.tokenize('a é!', { addBos: false })).trim()).toBe('a é!');
  });

  it('returns logits for every position, of vocabulary width, far from flat', async () => {
    const tokens = oracle.tokenize('hello world, the cat sat on the mat.');
    const logits = await oracle.logits(tokens);
    expect(logits).toHaveLength(tokens.length);
    for (const row of logits) {
      expect(row).toHaveLength(vocab.tokens.length);
      expect(row.every(Number.isFinite)).toBe(true);
      const mean = row.reduce((a, b) => a + b, 0) / row.length;
      const std = Math.sqrt(row.reduce((a, b) => a + (b - mean) ** 2, 0) / row.length);
      expect(std).toBeGreaterThan(1); // like a trained model's spread, not a near-uniform distribution
    }
    expect(new Set(logits.map(argmax)).size).toBeGreaterThan(3);
  });

  it('agrees with the float64 reference forward pass', async () => {
    const tokens = oracle.tokenize("hello world, the cat sat on the mat. It is a cat's world é!");
    const expected = llamaForward(reference, tokens);
    const actual = await oracle.logits(tokens);
    const diff = maxAbsDiff(actual, expected);
    const scale = Math.max(...expected.flatMap((r) => [...r].map(Math.abs)));
    console.log(`llama.cpp vs f64 reference: max |logit diff| ${diff.toExponential(2)} over ${tokens.length} positions (max |logit| ${scale.toFixed(1)})`);
    expect(diff).toBeLessThan(1e-4);
  });

  it('greedy continuation matches argmax of the reference', async () => {
    const prompt = oracle.tokenize('the cat');
    const continuation = await oracle.greedy(prompt, 8);
    const seq = [...prompt];
    for (let i = 0; i < continuation.length; i++) {
      const logits = llamaForward(reference, seq);
      seq.push(argmax(logits.at(-1)!));
    }
    expect(continuation.length).toBeGreaterThan(0);
    expect(continuation).toEqual(seq.slice(prompt.length));
  });

  describe('quantized fixtures', () => {
    const text = "hello world, the cat sat on the mat. It is a cat's world é!";

    async function compare(overrides: Parameters<typeof llamaFixture>[0]) {
      const bytes = llamaFixture(overrides);
      const ref = await loadLlamaReference(await readGGUF(bytes));
      const o = await openLlamaOracleOnBytes(bytes);
      try {
        const tokens = o.tokenize(text);
        const expected = llamaForward(ref, tokens);
        const actual = await o.logits(tokens);
        const agree = actual.filter((row, i) => argmax(row) === argmax(expected[i]!)).length / actual.length;
        return { diff: maxAbsDiff(actual, expected), agree };
      } finally {
        await o.close();
      }
    }

    // token_embd is read by get_rows, which dequantizes exactly (no activation rounding), so a
    // quantized embedding with f32 everything else must agree as closely as the f32 model: this
    // checks that llama.cpp reads the bytes quantize.ts writes as quantize.ts's dequantizer does.
    const types = [GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0,
      GGMLType.Q5_1, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K];
    for (const type of types) {
      it(`llama.cpp dequantizes our ${typeName(type)} bytes exactly as quantize.ts does`, async () => {
        const { diff } = await compare({ nEmbd: 256, nFf: 256, embeddingType: type });
        expect(diff, `max |logit diff| with a ${typeName(type)} embedding`).toBeLessThan(1e-4);
      });
    }

    // With quantized matrices llama.cpp also rounds the activations (to Q8_0/Q8_K, or f16/bf16)
    // before each matmul, which the f64 reference does not: agreement is to that rounding (measured
    // 0.3-0.6 on logits up to ~16), the same argmax nearly everywhere, not to 1e-5.
    it('a mixed Q4_K/Q6_K file like llama.cpp\'s Q4_K_M agrees to activation rounding', async () => {
      const q4km = (name: string) => (/attn_v|ffn_down|^output/.test(name) ? GGMLType.Q6_K : GGMLType.Q4_K);
      const { diff, agree } = await compare({ nEmbd: 256, nFf: 512, matrixType: q4km });
      console.log(`Q4_K_M-like: max |logit diff| ${diff.toFixed(3)}, argmax agreement ${(agree * 100).toFixed(0)}%`);
      expect(diff).toBeLessThan(1.5);
      expect(agree).toBeGreaterThanOrEqual(0.9);
    });
  });
});
