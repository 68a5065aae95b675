// Vision-token pruning on the committed VLM (src/engine/vision): every method keeps exactly its
// budget, in patch order, and at a budget of every token changes nothing; ToDRE's choice is the
// k-center reference's on the tower's own output; FastV's and ToDRE's second stage's logits are
// the float64 reference model's with the pruned image tokens hidden from the layers above K, chosen
// by the reference's own layer-K attention.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/engine/session';
import { prefillMultimodal } from '../src/engine/vision/prefill';
import { type PruningMethod, keptCount } from '../src/engine/vision/pruning';
import { readGGUF } from '../src/formats/gguf-reader';
import { Decoder } from '../src/models/decoder';
import { HIPRUNE_ANCHOR_SHARE, HIPRUNE_OBJECT_DEPTH, VisionEncoder, interpolatePositions, mergeSchedule } from '../src/models/vision';
import { visionForwardRef } from '../src/reference/vision';
import type { GGUFFile } from '../src/formats/gguf-reader';
import { encodeGGUF } from '../src/formats/gguf-writer';
import { type LlamaReferenceModel, llamaForward, loadLlamaReference } from '../src/reference/llama';
import { hipruneKeepRef, kCenterRef } from '../src/reference/vision-prune';
import { Tokenizer } from '../src/tokenizer';
import { loadVlmEvalSet } from './vlm-eval';
import { llamaFixture } from './oracle/llama-fixture';
import { expectClose, testGpu } from './util';

const models = new URL('../models/', import.meta.url);
const ENCODER_METHODS = ['cls', 'hiprune', 'todre'] as const satisfies readonly PruningMethod[];

describe('vision-token pruning', () => {
  let encoder: VisionEncoder;
  let decoder: Decoder;
  let tokenizer: Tokenizer;
  let reference: LlamaReferenceModel;
  let mmproj: GGUFFile;
  const set = loadVlmEvalSet();
  beforeAll(async () => {
    const gpu = await testGpu();
    mmproj = await readGGUF(readFileSync(new URL('vlm-mmproj.f16.gguf', models)));
    encoder = await VisionEncoder.load(gpu, mmproj);
    const lm = await readGGUF(readFileSync(new URL('vlm.f16.gguf', models)));
    decoder = await Decoder.load(gpu, lm);
    tokenizer = Tokenizer.fromGGUFMetadata(lm);
    reference = await loadLlamaReference(lm);
  });
  afterAll(() => {
    encoder?.destroy();
    decoder?.destroy();
  });

  it('budgets: a ratio of the image tokens or a count, checked', () => {
    expect(keptCount(0.25, 144)).toBe(36);
    expect(keptCount(1, 144)).toBe(144);
    expect(keptCount(0.001, 144)).toBe(1);
    expect(keptCount(20, 144)).toBe(20);
    expect(() => keptCount(200, 144)).toThrow(/at most 144/);
    expect(() => keptCount(2.5, 144)).toThrow(/whole count/);
    expect(() => keptCount(0, 144)).toThrow(/ratio/);
  });

  for (const method of ENCODER_METHODS) {
    it(`${method}: keeps its budget in patch order, the kept rows unchanged; all of them is the unpruned run`, async () => {
      const image = set.image(5);
      const full = await encoder.encode(image);
      const all = await encoder.encode(image, { method, keep: 144 });
      expect(all.embeddings).toEqual(full.embeddings);
      const pruned = await encoder.encode(image, { method, keep: 36 });
      const kept = [...pruned.patchMap.keys()].filter((p) => pruned.patchMap[p] >= 0);
      expect(kept.length).toBe(36);
      expect(kept.map((p) => pruned.patchMap[p])).toEqual(Array.from({ length: 36 }, (_, i) => i));
      const width = encoder.config.projection;
      kept.forEach((p, i) => expectClose(pruned.embeddings.subarray(i * width, (i + 1) * width), full.embeddings.subarray(p * width, (p + 1) * width), 1e-5, 1e-5, `patch ${p}`));
      if (method === 'todre') {
        const scores = kCenterRef(full.hidden, 144, encoder.config.hidden, 36, 1);
        expect(kept).toEqual([...scores.keys()].filter((p) => scores[p] > 0));
      }
    });
  }

  it('cls and hiprune keep what the float64 tower\'s own attention says', async () => {
    const image = set.image(9);
    const c = encoder.config;
    const N = c.patches, keep = 36;
    const ref = await visionForwardRef(mmproj, c, image);
    const kept = async (method: 'cls' | 'hiprune') => {
      const { patchMap } = await encoder.encode(image, { method, keep });
      return [...patchMap.keys()].filter((p) => patchMap[p] >= 0);
    };
    // Attention each patch gets at a layer, summed over heads, from the class token or from every token.
    const received = (layer: number, queries: number[]) => Array.from({ length: N }, (_, j) => ref.attention[layer].reduce((s, head) => s + queries.reduce((a, i) => a + head[i][1 + j], 0), 0));
    const everyToken = Array.from({ length: N + 1 }, (_, i) => i);
    const cls = received(c.blocks - 1, [0]);
    expect(await kept('cls')).toEqual([...cls.keys()].sort((a, b) => cls[b] - cls[a]).slice(0, keep).sort((a, b) => a - b));
    const objectScores = received(Math.floor(c.blocks * HIPRUNE_OBJECT_DEPTH), everyToken);
    const lastScores = received(c.blocks - 1, everyToken);
    const width = c.imageSize / c.patchSize;
    expect(await kept('hiprune')).toEqual(hipruneKeepRef(objectScores, lastScores, N, width, Math.max(1, Math.floor(HIPRUNE_ANCHOR_SHARE * keep)), keep));
  }, 60_000);

  for (const method of ['tome', 'pitome'] as const) {
    it(`${method}: merging inside the tower is the float64 reference's (where every patch goes, the hidden states); merging nothing is the unmerged run`, async () => {
      const image = set.image(11);
      const c = encoder.config;
      const full = await encoder.encode(image);
      expect((await encoder.encode(image, { method, keep: 144 })).embeddings).toEqual(full.embeddings);
      const keep = 36;
      const merges = mergeSchedule(c.patches, keep, c.blocks, method);
      expect(merges.reduce((a, b) => a + b, 0)).toBe(144 - keep);
      const got = await encoder.encode(image, { method, keep });
      const ref = await visionForwardRef(mmproj, c, image, { method, merges });
      // Every patch lands in one of the 36 tokens, as the reference's plans send it.
      const token = Array.from({ length: c.patches }, (_, p) => ref.plans.reduce((t, plan) => plan[t], p + 1) - 1);
      expect(Array.from(got.patchMap)).toEqual(token);
      expect(new Set(token).size).toBe(keep);
      expectClose(got.hidden, Float32Array.from(ref.hidden.flatMap((row) => [...row])), 1e-4, 1e-4, 'hidden states after merging');
      expect(got.embeddings.length).toBe(keep * c.projection);
    }, 60_000);
  }

  it('a SigLIP-style tower (no class token, a norm after the blocks) is the float64 reference\'s, and C1 falls back to every token\'s attention', async () => {
    const gpu = await testGpu();
    const D = encoder.config.hidden;
    // The committed mmproj without its class token, its pre-norm moved after the blocks.
    const tensors = await Promise.all(mmproj.tensors.filter((t) => t.name !== 'v.class_embd').map(async (t) => {
      let data = await mmproj.readTensor(t);
      let dims = t.dims;
      if (t.name === 'v.position_embd.weight') {
        expect(t.typeName).toBe('F32');
        data = data.slice(D * 4);
        dims = [D, dims[1] - 1];
      }
      return { name: t.name.replace('v.pre_ln', 'v.post_ln'), dims, type: t.type, data };
    }));
    const siglip = await readGGUF(encodeGGUF({ metadata: mmproj.metadata, tensors }));
    const tower = await VisionEncoder.load(gpu, siglip);
    try {
      expect(tower.config.classToken).toBe(false);
      const image = set.image(3);
      const ref = await visionForwardRef(siglip, tower.config, image);
      const got = await tower.encode(image);
      expectClose(got.hidden, Float32Array.from(ref.hidden.flatMap((row) => [...row])), 1e-4, 1e-4, 'hidden states');
      const N = tower.config.patches;
      const received = Array.from({ length: N }, (_, j) => ref.attention[tower.config.blocks - 1].reduce((s, head) => s + head.reduce((a, row) => a + row[j], 0), 0));
      const { patchMap } = await tower.encode(image, { method: 'cls', keep: 30 });
      expect([...patchMap.keys()].filter((p) => patchMap[p] >= 0)).toEqual([...received.keys()].sort((a, b) => received[b] - received[a]).slice(0, 30).sort((a, b) => a - b));
      const merges = mergeSchedule(N, 30, tower.config.blocks, 'tome', 0);
      const merged = await tower.encode(image, { method: 'tome', keep: 30 });
      const refMerged = await visionForwardRef(siglip, tower.config, image, { method: 'tome', merges });
      expect(Array.from(merged.patchMap)).toEqual(Array.from({ length: N }, (_, p) => refMerged.plans.reduce((t, plan) => plan[t], p)));
    } finally {
      tower.destroy();
    }
  }, 60_000);

  it('position embeddings interpolate bicubically to another patch grid, as a direct 2-D evaluation of PyTorch\'s formula', () => {
    const width = 3;
    const grid = (n: number, f: (x: number, y: number, d: number) => number) => Float32Array.from({ length: n * n * width }, (_, e) => f(Math.floor(e / width) % n, Math.floor(e / width / n), e % width));
    const table = grid(12, (x, y, d) => Math.sin(x * 0.7 + d) * Math.cos(y * 0.4) + 0.1 * x * y);
    expect(interpolatePositions(table, 12, 12, width)).toEqual(table);
    expectClose(interpolatePositions(grid(12, (_x, _y, d) => d + 0.5), 12, 16, width), grid(16, (_x, _y, d) => d + 0.5), 1e-6, 0, 'a constant grid');
    // interpolate(mode='bicubic', align_corners=False): source (i + 0.5)·from/to − 0.5, Keys' cubic with a = −0.75, clamped taps.
    const keys = (t: number) => {
      const a = -0.75, u = Math.abs(t);
      return u <= 1 ? (a + 2) * u ** 3 - (a + 3) * u ** 2 + 1 : u < 2 ? a * u ** 3 - 5 * a * u ** 2 + 8 * a * u - 4 * a : 0;
    };
    for (const [from, to] of [[12, 16], [12, 7]]) {
      const source = grid(from, (x, y, d) => Math.sin(x * 0.7 + d) * Math.cos(y * 0.4) + 0.1 * x * y);
      const got = interpolatePositions(source, from, to, width);
      const clamp = (i: number) => Math.min(from - 1, Math.max(0, i));
      for (let y = 0; y < to; y++) for (let x = 0; x < to; x++) for (let d = 0; d < width; d++) {
        const [sy, sx] = [((y + 0.5) * from) / to - 0.5, ((x + 0.5) * from) / to - 0.5];
        let want = 0;
        for (let m = -1; m <= 2; m++) for (let n = -1; n <= 2; n++) {
          const [ty, tx] = [Math.floor(sy) + m, Math.floor(sx) + n];
          want += keys(sy - ty) * keys(sx - tx) * source[(clamp(ty) * from + clamp(tx)) * width + d];
        }
        expect(got[(y * to + x) * width + d]).toBeCloseTo(want, 5);
      }
    }
  });

  it('the tower runs at another image size (64 px: 64 patches) as the float64 reference does', async () => {
    const gpu = await testGpu();
    await expect(VisionEncoder.load(gpu, mmproj, { imageSize: 100 })).rejects.toThrow(/not a positive multiple of the patch size 8/);
    const small = await VisionEncoder.load(gpu, mmproj, { imageSize: 64 });
    try {
      expect(small.config).toMatchObject({ imageSize: 64, patches: 64 });
      const image = Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => set.image(2)[Math.floor(i / (64 * 3)) * 96 * 3 + (i % (64 * 3))]); // a 64x64 crop
      const ref = await visionForwardRef(mmproj, small.config, image);
      const got = await small.encode(image);
      expectClose(got.hidden, Float32Array.from(ref.hidden.flatMap((row) => [...row])), 1e-4, 1e-4, 'hidden states at 64 px');
    } finally {
      small.destroy();
    }
  }, 60_000);

  it('merging too far is refused with the smallest count it can reach', () => {
    expect(() => mergeSchedule(144, 4, 4, 'tome')).toThrow(/cannot merge 144 patches down to 4 in 4 blocks \(at least 9\)/);
  });

  it('the methods disagree: each follows its own evidence', async () => {
    const image = set.image(7);
    const chosen = await Promise.all(ENCODER_METHODS.map(async (method) => (await encoder.encode(image, { method, keep: 20 })).patchMap.join()));
    expect(new Set(chosen).size).toBe(ENCODER_METHODS.length);
  });

  /**
   * FastV or ToDRE through prefillMultimodal against the float64 reference language model: pass 1
   * sees everything and records layer K's attention to the image from the prompt's last token
   * (FastV) or all its tokens (ToDRE); pass 2 hides the pruned image tokens from the layers above
   * K, and every image token from the layers above `noneAfter` (ToDRE in a deep enough model).
   */
  async function checkInDecoder(method: 'fastv' | 'todre', lm: { decoder: Decoder; reference: LlamaReferenceModel }, prompt: number[], expected: { K: number; noneAfter?: number }) {
    const gpu = await testGpu();
    const { decoder } = lm;
    const q = set.questions[4];
    const bos = 1;
    const { embeddings } = await encoder.encode(set.image(q.image), method === 'todre' ? { method, keep: 36 } : undefined);
    const hidden = decoder.config.hidden;
    const N = embeddings.length / hidden;
    const keep = method === 'fastv' ? 36 : 18;
    const session = new Session(gpu, decoder, { contextLength: 256, prefillChunk: 192 });
    try {
      const [image] = await prefillMultimodal(session, encoder, [{ tokens: [bos] }, { image: set.image(q.image) }, { tokens: prompt }], { method, budget: 36 });
      expect(image.deep).toMatchObject({ kept: keep, layer: expected.K, noneAfter: expected.noneAfter });
      // The image rows the language model read (FastV: every patch; ToDRE: the tower's 36) that its deep layers kept.
      const row = (p: number) => (method === 'fastv' ? p : image.patchMap[p]);
      const kept = [...image.deep!.patchMap.keys()].filter((p) => image.deep!.patchMap[p] >= 0).map(row);
      expect(kept.length).toBe(keep);
      const after = await gpu.readF32(session.scratch.logits, decoder.config.vocabSize);
      const next = await session.feedGreedy([argmaxOf(after)]);

      const sequence = [bos, ...new Array(N).fill(0), ...prompt, argmaxOf(after)];
      const input = (pos: number) => (pos >= 1 && pos <= N ? embeddings.subarray((pos - 1) * hidden, pos * hidden) : undefined);
      const last = N + prompt.length;
      const mass = new Float64Array(N);
      llamaForward(lm.reference, sequence.slice(0, last + 1), {
        input,
        observe: (layer, pos, _keys, probs) => {
          if (layer === expected.K && (pos === last || (method === 'todre' && pos > N))) for (const p of probs) for (let j = 0; j < N; j++) mass[j] += p[1 + j];
        },
      });
      const order = [...mass.keys()].sort((a, b) => mass[b] - mass[a] || a - b);
      expect(kept).toEqual(order.slice(0, keep).sort((a, b) => a - b));
      const pruned = new Set(order.slice(keep).map((j) => 1 + j));
      const isImage = (t: number) => t >= 1 && t <= N;
      const want = llamaForward(lm.reference, sequence, {
        input,
        visible: (layer, pos) => {
          const hide = (t: number) => t !== pos && layer > expected.K && (pruned.has(t) || (expected.noneAfter !== undefined && layer > expected.noneAfter && isImage(t)));
          const keys = Array.from({ length: pos + 1 }, (_, t) => t).filter((t) => !hide(t));
          return { keys, positions: keys };
        },
      });
      expectClose(after, want[last], 2e-3, 2e-3, 'logits after the prompt');
      expect(next).toBe(argmaxOf(want[last + 1]));
      // Decoding after the pruning keeps the deep layers' shorter caches: the next step's logits agree too.
      expectClose(await gpu.readF32(session.scratch.logits, decoder.config.vocabSize), want[last + 1], 2e-3, 2e-3, 'logits of the next step');
    } finally {
      session.destroy();
    }
  }

  // FastV scores by the prompt's last token (budget 36 after layer 0 of the VLM's 2); ToDRE's second
  // stage by every text token (half of the 36 diverse tokens the tower kept).
  for (const method of ['fastv', 'todre'] as const) {
    it(`${method}: logits and kept tokens are the reference model's with the pruned image tokens hidden above layer K`, async () => {
      const prompt = tokenizer.encode(set.prompt(set.questions[4].question), { addSpecial: false });
      await checkInDecoder(method, { decoder, reference }, prompt, { K: 0 });
    }, 120_000);
  }

  it('todre in a 4-layer language model: half the tokens above layer 1, none above layer 2, as the reference', async () => {
    const gpu = await testGpu();
    const bytes = llamaFixture({ nEmbd: 128, nHead: 4, nHeadKv: 2, nLayer: 4, nFf: 256, contextLength: 256, seed: 21 });
    const file = await readGGUF(bytes);
    const deeper = await Decoder.load(gpu, file);
    try {
      await checkInDecoder('todre', { decoder: deeper, reference: await loadLlamaReference(file) }, [5, 17, 9, 33, 2, 41, 8], { K: 1, noneAfter: 2 });
    } finally {
      deeper.destroy();
    }
  }, 120_000);

  it('FastV keeping every image token answers as the unpruned run; a rollback cannot split the pruned step', async () => {
    const gpu = await testGpu();
    const q = set.questions[0];
    const prompt = tokenizer.encode(set.prompt(q.question), { addSpecial: false });
    const bos = tokenizer.vocab.special.bos ?? 1;
    const parts = [{ tokens: [bos] }, { image: set.image(q.image) }, { tokens: prompt }];
    const logits = async (pruning?: { method: 'fastv'; budget: number }) => {
      const session = new Session(gpu, decoder, { contextLength: 256, prefillChunk: 192 });
      try {
        await prefillMultimodal(session, encoder, parts, pruning);
        if (pruning) {
          expect(() => session.truncate(50)).toThrow(/pruned together/);
          expect(session.rollbackLimit(50)).toBe(1); // back to BOS: the pruned step goes whole
        }
        return await gpu.readF32(session.scratch.logits, decoder.config.vocabSize);
      } finally {
        session.destroy();
      }
    };
    expectClose(await logits({ method: 'fastv', budget: 1 }), await logits(), 1e-4, 1e-4, 'logits');
  }, 60_000);
});

function argmaxOf(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
