// The VLM end to end against PyTorch: the committed language model reads BOS, the vision tower's
// 144 image embeddings, then "Question: ... Answer:", and answers greedily (at most 8 tokens, up
// to EOS), as tools/train/vlm.py's answer() does. On the first held-out images the answers must
// be PyTorch's, word for word (bench/vlm-pruning.ts runs the whole set), and so must the
// descriptions of the first two images (up to 48 tokens each: a longer greedy run).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/engine/session';
import { readGGUF } from '../src/formats/gguf-reader';
import { Decoder } from '../src/models/decoder';
import { VisionEncoder } from '../src/models/vision';
import { Tokenizer } from '../src/tokenizer';
import { answerAboutImage, loadVlmEvalSet } from './vlm-eval';
import { testGpu } from './util';

const models = new URL('../models/', import.meta.url);

describe('VLM (mmproj + language model)', () => {
  let encoder: VisionEncoder;
  let decoder: Decoder;
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    const gpu = await testGpu();
    encoder = await VisionEncoder.load(gpu, await readGGUF(readFileSync(new URL('vlm-mmproj.f16.gguf', models))));
    const lm = await readGGUF(readFileSync(new URL('vlm.f16.gguf', models)));
    decoder = await Decoder.load(gpu, lm);
    tokenizer = Tokenizer.fromGGUFMetadata(lm);
  });
  afterAll(() => {
    encoder?.destroy();
    decoder?.destroy();
  });

  it('answers the first held-out questions as PyTorch does, word for word', async () => {
    const gpu = await testGpu();
    const set = loadVlmEvalSet();
    const questions = set.questions.filter((q) => q.image < 3);
    expect(questions.length).toBe(9);
    const session = new Session(gpu, decoder, { contextLength: 256, prefillChunk: 64 });
    try {
      for (const q of questions) {
        const got = await answerAboutImage({ encoder, decoder, tokenizer, session }, set.image(q.image), set.prompt(q.question));
        expect(got, `image ${q.image}: ${q.question}`).toBe(q.pytorch);
      }
    } finally {
      session.destroy();
    }
  }, 300_000);

  it('describes the first held-out images as PyTorch does, token for token (up to 48 tokens)', async () => {
    const gpu = await testGpu();
    const set = loadVlmEvalSet();
    const session = new Session(gpu, decoder, { contextLength: 256, prefillChunk: 64 });
    try {
      for (const d of set.descriptions.slice(0, 2)) {
        const got = await answerAboutImage({ encoder, decoder, tokenizer, session }, set.image(d.image), set.prompt(d.question), 48);
        expect(got, `image ${d.image}: ${d.question}`).toBe(d.pytorch);
      }
    } finally {
      session.destroy();
    }
  }, 300_000);

  it('the image embeddings take IMAGE_TOKEN places in the history, and a second prompt reuses the image', async () => {
    const gpu = await testGpu();
    const set = loadVlmEvalSet();
    const session = new Session(gpu, decoder, { contextLength: 256, prefillChunk: 64 });
    try {
      const [first, second] = set.questions.filter((q) => q.image === 0);
      await answerAboutImage({ encoder, decoder, tokenizer, session }, set.image(0), set.prompt(first.question));
      expect(session.tokens.slice(1, 145).every((t) => t === -1)).toBe(true);
      // Rolling back to the image keeps its embeddings: the second question gets PyTorch's answer without encoding again.
      session.truncate(145);
      expect(await answerAboutImage({ encoder, decoder, tokenizer, session }, null, set.prompt(second.question))).toBe(second.pytorch);
    } finally {
      session.destroy();
    }
  });
});
