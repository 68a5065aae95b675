// Images through the Engine: the committed VLM loaded with its mmproj, questions about held-out
// images as chat.completions content parts (raw RGB: the form Node can take) answered as the
// direct path (test/vlm.test.ts, PyTorch's answers) answers them; session reuse only for the same
// image; clear errors after which the engine still answers; the prompt pieces around images; the
// JS resize.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEngine, type Engine } from '../src/engine/engine';
import { EngineError } from '../src/engine/errors';
import { resizeRgb } from '../src/engine/images';
import { type CachedImages, type ChatInputMessage, preparePieces, renderMultimodal, reusableRows } from '../src/engine/multimodal';
import { readGGUF } from '../src/formats/gguf-reader';
import { VisionEncoder } from '../src/models/vision';
import { CHATML_TEMPLATE, Tokenizer } from '../src/tokenizer';
import { llamaFixture } from './oracle/llama-fixture';
import { loadVlmEvalSet } from './vlm-eval';

const models = new URL('../models/', import.meta.url);
const lm = new Uint8Array(readFileSync(new URL('vlm.f16.gguf', models)));
const mmproj = new Uint8Array(readFileSync(new URL('vlm-mmproj.f16.gguf', models)));
const set = loadVlmEvalSet();
const raw = (i: number) => ({ width: 96, height: 96, data: set.image(i) });

function ask(image: number, question: string, extra: Record<string, unknown> = {}) {
  const messages: ChatInputMessage[] = [{ role: 'user', content: [{ type: 'image', image: raw(image) }, { type: 'text', text: set.prompt(question) }] }];
  return { messages, temperature: 0, max_tokens: 8, ...extra };
}

async function kindOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(EngineError);
    return `${(error as EngineError).kind}: ${(error as EngineError).message}`;
  }
  throw new Error('expected an error');
}

describe('Engine with a VLM (in-thread)', () => {
  let engine: Engine;
  /** Loads the VLM unless it is loaded (each test runs alone too). */
  const loaded = async () => {
    if (!(await engine.info())?.vision) await engine.load(lm, { mmproj });
  };
  beforeAll(async () => {
    engine = createEngine({ worker: false });
  });
  afterAll(async () => {
    await engine?.dispose();
  });

  it('loads the language model with its mmproj and reports the vision tower', async () => {
    const phases = new Map<string, { loaded: number; total: number }>();
    const info = await engine.load(lm, { mmproj, onProgress: (p) => phases.set(p.phase, p) });
    expect(info.vision).toMatchObject({ imageSize: 96, patchSize: 8, patches: 144, fileBytes: mmproj.byteLength });
    expect(info.hasChatTemplate).toBe(false);
    const upload = phases.get('upload')!;
    expect(upload.loaded).toBe(upload.total);
  });

  it('chat.completions with an image part answers as the direct path (PyTorch\'s answers), with per-image stats', async () => {
    await loaded();
    const questions = set.questions.filter((q) => q.image < 2).slice(0, 4);
    for (const q of questions) {
      const reply = await engine.chat.completions.create(ask(q.image, q.question, { session: await engine.createSession() }));
      expect(reply.choices[0].message.content.trim(), `image ${q.image}: ${q.question}`).toBe(q.pytorch);
      const { extra } = reply.usage;
      expect(extra.images).toHaveLength(1);
      const [image] = extra.images!;
      expect(image).toMatchObject({ patches: 144, kept: 144, cached: false });
      expect(Array.from(image.patchMap)).toEqual(Array.from({ length: 144 }, (_, i) => i));
      expect(image.encodeMs).toBeGreaterThan(0);
      expect(extra.cachedPromptTokens).toBe(0);
      expect(extra.timeToFirstTokenMs).toBeGreaterThanOrEqual(image.encodeMs);
      expect(extra.prefillMs).toBe(extra.timeToFirstTokenMs);
    }
  }, 300_000);

  it('generate() takes the same messages, and its prompt is BOS + 144 image rows + the question\'s tokens', async () => {
    await loaded();
    const q = set.questions[0];
    const tokenizer = Tokenizer.fromGGUFMetadata(await readGGUF(lm));
    const result = await engine.generate({ ...ask(q.image, q.question), maxTokens: 8, session: await engine.createSession() }).result;
    expect(result.text.trim()).toBe(q.pytorch);
    expect(result.stats.promptTokens).toBe(1 + 144 + tokenizer.encode(set.prompt(q.question), { addSpecial: false }).length);
  });

  it('a session reuses an image only for the same pixels: a second question keeps it, another image does not', async () => {
    await loaded();
    const session = await engine.createSession();
    const [first, second] = set.questions.filter((q) => q.image === 0);
    const other = set.questions.find((q) => q.image === 1)!;
    const a = await engine.chat.completions.create(ask(0, first.question, { session }));
    expect(a.choices[0].message.content.trim()).toBe(first.pytorch);
    const b = await engine.chat.completions.create(ask(0, second.question, { session }));
    expect(b.choices[0].message.content.trim()).toBe(second.pytorch);
    expect(b.usage.extra.cachedPromptTokens).toBeGreaterThanOrEqual(145);
    expect(b.usage.extra.images![0]).toMatchObject({ cached: true, encodeMs: 0, kept: 144 });
    // Another image after the same BOS: only BOS is kept, the image is encoded, and the answer is that image's.
    const c = await engine.chat.completions.create(ask(1, other.question, { session }));
    expect(c.usage.extra.cachedPromptTokens).toBe(1);
    expect(c.usage.extra.images![0].cached).toBe(false);
    expect(c.choices[0].message.content.trim()).toBe(other.pytorch);
    // A text-only request after it never reuses the image rows either.
    const text = await engine.generate({ tokens: [1, 4034, 4095], maxTokens: 2, temperature: 0, session }).result;
    expect(text.stats.cachedPromptTokens).toBe(1);
  }, 120_000);

  it('pruning options reach the image: the budget\'s count of tokens, and the same image under other pruning is not reused', async () => {
    await loaded();
    const session = await engine.createSession();
    const q = set.questions[0];
    const plain = await engine.chat.completions.create(ask(0, q.question, { session }));
    expect(plain.usage.extra.images![0].kept).toBe(144);
    for (const method of ['cls', 'fastv'] as const) {
      const pruned = await engine.chat.completions.create(ask(0, q.question, { session, vision: { method, budget: 0.25 } }));
      const [image] = pruned.usage.extra.images!;
      expect(image, method).toMatchObject({ patches: 144, kept: 36, cached: false });
      expect(image.patchMap.filter((t) => t >= 0).length, method).toBe(36);
      expect(pruned.usage.extra.cachedPromptTokens, method).toBe(1);
      expect(pruned.choices[0].message.content.trim().length, method).toBeGreaterThan(0);
    }
    // Asking again under the same pruning reuses the image; FastV pruned the image with the
    // question after it, so a new question encodes it again (the session keeps all or none of that span).
    const cls = await engine.chat.completions.create(ask(0, q.question, { session, vision: { method: 'cls', budget: 0.25 } }));
    const again = await engine.chat.completions.create(ask(0, set.questions[1].question, { session, vision: { method: 'cls', budget: 0.25 } }));
    expect(again.usage.extra.images![0]).toMatchObject({ kept: 36, cached: true, encodeMs: 0 });
    expect(Array.from(again.usage.extra.images![0].patchMap)).toEqual(Array.from(cls.usage.extra.images![0].patchMap));
    expect(again.usage.extra.cachedPromptTokens).toBeGreaterThanOrEqual(1 + 36);
    await engine.chat.completions.create(ask(0, q.question, { session, vision: { method: 'fastv', budget: 0.25 } }));
    const fastv = await engine.chat.completions.create(ask(0, set.questions[1].question, { session, vision: { method: 'fastv', budget: 0.25 } }));
    expect(fastv.usage.extra.images![0]).toMatchObject({ kept: 36, cached: false });
    expect(fastv.usage.extra.cachedPromptTokens).toBe(1);
  }, 120_000);

  it('speculative decoding after an image gives the plain greedy answer with every strategy, in a new session and one that reuses the image', async () => {
    await loaded();
    // The VLM's language model is its own draft here: the draft reads the text around the image only.
    await engine.loadDraft(lm);
    // A question (a short answer) and a description of the same image (some 30 tokens).
    const first = set.questions.find((q) => q.image === 0)!;
    const second = set.descriptions.find((d) => d.image === 0)!;
    const plain: number[][] = [];
    for (const q of [first, second]) plain.push((await engine.generate({ ...ask(0, q.question), maxTokens: 48, session: await engine.createSession() }).result).tokens);
    expect(plain[1].length).toBeGreaterThan(20);
    for (const strategy of ['prompt-lookup', 'token-recycling', 'draft-model', 'layer-skip'] as const) {
      const session = await engine.createSession();
      for (const [i, q] of [first, second].entries()) {
        // Fixed sizing: on a software adapter the sizing would switch speculation off, leaving nothing to check.
        const result = await engine.generate({ ...ask(0, q.question), maxTokens: 48, session, speculative: { strategy, sizing: 'fixed', maxNodes: 4 } }).result;
        expect(result.tokens, `${strategy}, question ${i}`).toEqual(plain[i]);
        const stats = result.stats.speculative!;
        expect(stats.strategy).toBe(strategy);
        console.log(`after an image, ${strategy}, question ${i}: ${result.tokens.length} tokens in ${stats.steps} steps, ${stats.accepted} of ${stats.drafted} drafts accepted`);
        // The first token comes from the prompt's logits; each step emits its accepted drafts and one more.
        expect(1 + stats.steps + stats.accepted).toBeGreaterThanOrEqual(result.tokens.length);
        if (q === second) expect(stats.accepted, `${strategy} accepts drafts in a description`).toBeGreaterThan(0);
        expect(result.stats.images![0].cached).toBe(i === 1);
      }
    }
    // Sampling after an image: a seed reproduces the answer.
    const sampled = { ...ask(0, first.question), temperature: 0.8, topK: 20, seed: 3, maxTokens: 8, speculative: { strategy: 'layer-skip' as const, sizing: 'fixed' as const } };
    const again = async () => (await engine.generate({ ...sampled, session: await engine.createSession() }).result).tokens;
    const [a, b] = [await again(), await again()];
    expect(a.length).toBeGreaterThan(0);
    expect(b).toEqual(a);
  }, 300_000);

  it('bad images and bad requests fail with clear kinds, and the engine still answers', async () => {
    await loaded();
    const q = set.questions[0];
    const withImage = (image: unknown) => engine.chat.completions.create({ messages: [{ role: 'user', content: [{ type: 'image', image } as never, { type: 'text', text: set.prompt(q.question) }] }], max_tokens: 4 });
    expect(await kindOf(withImage({ width: 96, height: 96, data: new Uint8Array(10) }))).toMatch(/^bad-request: .*27648 bytes \(RGB\)/);
    expect(await kindOf(withImage({ width: 0, height: 96, data: new Uint8Array(0) }))).toMatch(/^bad-request: .*at least 1/);
    expect(await kindOf(withImage(42))).toMatch(/^bad-request/);
    expect(await kindOf(withImage(new Blob([new Uint8Array(8)])))).toMatch(/^unsupported: .*raw pixels/);
    const dataUrl = { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }, { type: 'text', text: 'x' }] }] } as const;
    expect(await kindOf(engine.chat.completions.create(dataUrl as never))).toMatch(/^unsupported: .*createImageBitmap/);
    expect(await kindOf(engine.chat.completions.create({ messages: [{ role: 'user', content: [{ type: 'video', video: 1 } as never] }] }))).toMatch(/^bad-request: .*unknown content part type "video"/);
    expect(await kindOf(engine.chat.completions.create({ messages: [{ role: 'user', content: [{ type: 'text', text: 'Question: x' }, { type: 'image', image: raw(0) }] }] }))).toMatch(/^bad-request: .*must end with text/);
    expect(await kindOf(engine.chat.completions.create({ ...ask(0, q.question), vision: { method: 'nope' as 'cls', budget: 0.5 } }))).toMatch(/^bad-request: .*unknown pruning method/);
    expect(await kindOf(engine.chat.completions.create({ ...ask(0, q.question), vision: { method: 'cls', budget: 1000 } }))).toMatch(/^bad-request: .*budget/);
    expect(await kindOf(engine.generate({ tokens: [1, -1, 5] }).result)).toMatch(/^bad-request/);
    // An mmproj that is not one, and one for another model (its projection width patched to 64).
    expect(await kindOf(engine.load(lm, { mmproj: lm }))).toMatch(/^bad-request: .*architecture is "llama", expected "clip"/);
    expect(await kindOf(engine.load(lm, { mmproj: patchU32(mmproj, 'clip.vision.projection_dim', 64) }))).toMatch(/^bad-request: .*width 64.*hidden size is 128/);
    const reply = await engine.chat.completions.create(ask(q.image, q.question));
    expect(reply.choices[0].message.content.trim()).toBe(q.pytorch);
  }, 120_000);

  it('unload frees the vision tower with the model', async () => {
    await loaded();
    const destroy = vi.spyOn(VisionEncoder.prototype, 'destroy');
    try {
      await engine.unload();
      expect(destroy).toHaveBeenCalledTimes(1);
      expect(await engine.info()).toBeUndefined();
    } finally {
      destroy.mockRestore();
    }
  });

  it('a model without an mmproj refuses images', async () => {
    const text = createEngine({ worker: false });
    try {
      await text.load(llamaFixture({ nEmbd: 128, nHead: 4, nHeadKv: 2, nLayer: 2, nFf: 256, contextLength: 256, seed: 5 }));
      expect((await text.info())!.vision).toBeUndefined();
      expect(await kindOf(text.chat.completions.create(ask(0, 'What?')))).toMatch(/^bad-request: .*no vision tower/);
      expect((await text.chat.completions.create({ messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }] }], max_tokens: 2 })).usage.completion_tokens).toBeGreaterThan(0);
    } finally {
      await text.dispose();
    }
  });

  it('runs the tower at another image size when asked: 64 px images in 64 tokens', async () => {
    const small = createEngine({ worker: false });
    try {
      const info = await small.load(lm, { mmproj, imageSize: 64 });
      expect(info.vision).toMatchObject({ imageSize: 64, patches: 64 });
      const reply = await small.chat.completions.create(ask(0, set.questions[0].question));
      expect(reply.usage.extra.images![0]).toMatchObject({ patches: 64, kept: 64 });
      expect(reply.usage.extra.promptTokens).toBe(1 + 64 + Tokenizer.fromGGUFMetadata(await readGGUF(lm)).encode(set.prompt(set.questions[0].question), { addSpecial: false }).length);
    } finally {
      await small.dispose();
    }
  });
});

describe('Engine with a VLM in a Node worker thread', () => {
  it('takes raw RGB across the thread and answers as in-thread', async () => {
    const engine = createEngine();
    try {
      await engine.load(lm, { mmproj });
      const q = set.questions[1];
      const reply = await engine.chat.completions.create(ask(q.image, q.question));
      expect(reply.choices[0].message.content.trim()).toBe(q.pytorch);
      expect(reply.usage.extra.images![0].patchMap).toHaveLength(144);
    } finally {
      await engine.dispose();
    }
  }, 120_000);
});

describe('prompt pieces around images', () => {
  it('plain rendering (no chat template) is BOS, the image, then the text as given', async () => {
    const tokenizer = Tokenizer.fromGGUFMetadata(await readGGUF(lm));
    const image = raw(0);
    const pieces = renderMultimodal(tokenizer, [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'Question: Hi? Answer:' }] }], true);
    expect(pieces).toEqual([{ tokens: [1] }, { image }, { tokens: tokenizer.encode('Question: Hi? Answer:', { addSpecial: false }) }]);
  });

  it('with a chat template, the rendered conversation is split at the images', async () => {
    const tokenizer = Tokenizer.fromGGUFMetadata(await readGGUF(lm));
    Object.defineProperty(tokenizer.vocab, 'chatTemplate', { value: CHATML_TEMPLATE });
    const image = raw(0);
    const messages: ChatInputMessage[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Look: ' }, { type: 'image', image }, { type: 'text', text: ' What?' }] }];
    const pieces = renderMultimodal(tokenizer, messages, false);
    const encode = (s: string) => tokenizer.encode(s, { addSpecial: false, parseSpecial: true });
    expect(pieces).toEqual([
      { tokens: [1, ...encode('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nLook: ')] },
      { image },
      { tokens: encode(' What?<|im_end|>\n<|im_start|>assistant\n') },
    ]);
  });

  it('an image run is reused only under the same key (pixels and pruning options)', () => {
    const pixels = new Uint8Array(3);
    const pieces = (key: string, pruning?: { method: 'cls'; budget: number }) => preparePieces([{ tokens: [1] }, { rgb: pixels, key }, { tokens: [7, 8, 9] }], pruning);
    const history = [1, -1, -1, -1, 7, 8, 9];
    const cached: CachedImages[] = [{ start: 1, end: 4, key: (pieces('a')[1] as { key: string }).key, images: [] }];
    expect(reusableRows(history, cached, pieces('a'))).toBe(6); // all but the last token
    expect(reusableRows(history, cached, pieces('b'))).toBe(1); // another image: BOS only
    expect(reusableRows(history, cached, pieces('a', { method: 'cls', budget: 0.5 }))).toBe(1); // other pruning
    expect(reusableRows(history, [], pieces('a'))).toBe(1); // an image the engine did not record
  });
});

describe('resizeRgb', () => {
  it('keeps the pixels at the same size and drops alpha', () => {
    const rgba = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 7);
    const out = resizeRgb(rgba, 2, 3, 4, 2, 3);
    expect(Array.from(out)).toEqual(Array.from({ length: 6 }, (_, p) => [0, 1, 2].map((c) => rgba[p * 4 + c])).flat());
  });

  it('keeps a flat image flat at any size, and interpolates between pixel centres', () => {
    const flat = new Uint8Array(5 * 7 * 3).fill(200);
    expect(resizeRgb(flat, 5, 7, 3, 96, 96).every((v) => v === 200)).toBe(true);
    expect(resizeRgb(flat, 5, 7, 3, 2, 3).every((v) => v === 200)).toBe(true);
    // A 2x1 image of 0 and 255 widened to 4x1: centres at 0.25, 0.75, 1.25, 1.75 source pixels.
    const ramp = resizeRgb(Uint8Array.of(0, 0, 0, 255, 255, 255), 2, 1, 3, 4, 1);
    expect(Array.from(ramp.filter((_, i) => i % 3 === 0))).toEqual([0, 64, 191, 255]);
  });

  it('averages every source pixel when shrinking', () => {
    // 4x4 in 2x2 blocks of 0, 100, 200, 40: each output pixel sees its block and, with a triangle of radius 2, its neighbours.
    const src = new Uint8Array(4 * 4 * 3);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) src.fill([0, 100, 200, 40][(y >> 1) * 2 + (x >> 1)], (y * 4 + x) * 3, (y * 4 + x) * 3 + 3);
    const out = resizeRgb(src, 4, 4, 3, 2, 2);
    const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;
    expect(mean(out)).toBeCloseTo(mean(src), 0);
    expect(out[0]).toBeLessThan(out[3]); // the 0 block stays darker than the 100 block
    expect(out[6]).toBeGreaterThan(out[9]); // the 200 block stays brighter than the 40 block
    const big = resizeRgb(new Uint8Array(640 * 480 * 3).fill(9), 640, 480, 3, 96, 96);
    expect(big.every((v) => v === 9)).toBe(true);
  });
});

/** The GGUF with the u32 value of metadata `key` replaced. */
function patchU32(file: Uint8Array, key: string, value: number): Uint8Array {
  const bytes = file.slice();
  const name = new TextEncoder().encode(key);
  for (let i = 8; i < bytes.length - name.length; i++) {
    if (name.every((b, j) => bytes[i + j] === b) && new DataView(bytes.buffer).getBigUint64(i - 8, true) === BigInt(name.length)) {
      const view = new DataView(bytes.buffer, i + name.length);
      expect(view.getUint32(0, true)).toBe(4); // GGUF type UINT32
      view.setUint32(4, value, true);
      return bytes;
    }
  }
  throw new Error(`no key ${key}`);
}
