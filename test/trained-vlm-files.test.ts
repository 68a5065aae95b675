// The committed vision-language model's files, as later issues will use them: the mmproj GGUF in
// llama.cpp's CLIP layout with the metadata a loader reads, the language model it feeds, the
// held-out evaluation set, and the PyTorch reference outputs. (The vision encoder's numerics are
// checked against those references when the runtime gains its ViT.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readGGUF } from '../src/formats/gguf-reader';
import { decoderConfigFromGGUF } from '../src/models/config';
import { Tokenizer } from '../src/tokenizer';

const MODELS = fileURLToPath(new URL('../models', import.meta.url));
const read = (path: string) => readFileSync(join(MODELS, path));

describe('trained VLM files', () => {
  it('the mmproj is a CLIP GGUF with a LLaVA MLP projector that feeds the language model', async () => {
    const mmproj = await readGGUF(read('vlm-mmproj.f16.gguf'));
    const lm = await readGGUF(read('vlm.f16.gguf'));
    expect(mmproj.getString('general.architecture')).toBe('clip');
    expect(mmproj.getBool('clip.has_vision_encoder')).toBe(true);
    expect(mmproj.getString('clip.projector_type')).toBe('mlp');
    const size = mmproj.getNumber('clip.vision.image_size')!;
    const patch = mmproj.getNumber('clip.vision.patch_size')!;
    const dim = mmproj.getNumber('clip.vision.embedding_length')!;
    const blocks = mmproj.getNumber('clip.vision.block_count')!;
    const patches = (size / patch) ** 2;
    expect(patches).toBeGreaterThanOrEqual(64);
    expect(patches).toBeLessThanOrEqual(256);
    expect(mmproj.tensor('v.class_embd')!.dims).toEqual([dim]);
    expect(mmproj.tensor('v.position_embd.weight')!.dims).toEqual([dim, patches + 1]);
    expect(mmproj.tensor('v.patch_embd.weight')!.dims).toEqual([patch, patch, 3, dim]);
    for (let b = 0; b < blocks; b++) {
      for (const name of ['attn_q', 'attn_k', 'attn_v', 'attn_out', 'ln1', 'ln2', 'ffn_up', 'ffn_down']) {
        expect(mmproj.tensor(`v.blk.${b}.${name}.weight`), `v.blk.${b}.${name}`).toBeDefined();
      }
    }
    expect(mmproj.tensor(`v.blk.${blocks}.attn_q.weight`)).toBeUndefined();
    const config = decoderConfigFromGGUF(lm);
    expect(mmproj.getNumber('clip.vision.projection_dim')).toBe(config.hidden);
    expect(mmproj.tensor('mm.2.weight')!.dims).toEqual([config.hidden, config.hidden]);
    expect(mmproj.tensor('mm.0.weight')!.dims[0]).toBe(dim);
  });

  it('the held-out set: images, questions whose answers the tokenizer can spell, and PyTorch far above chance', async () => {
    const set = JSON.parse(read('vlm-eval/questions.json').toString());
    const images = read(`vlm-eval/${set.images_file}`);
    const size = set.image_size;
    const count = images.byteLength / (size * size * 3);
    expect(Number.isInteger(count)).toBe(true);
    expect(set.questions.length).toBeGreaterThanOrEqual(count * 2);
    const tokenizer = Tokenizer.fromGGUFMetadata(await readGGUF(read('vlm.f16.gguf')));
    for (const q of set.questions) {
      expect(q.image).toBeLessThan(count);
      expect(tokenizer.decode(tokenizer.encode(` ${q.answer}`, { addSpecial: false })).trim()).toBe(q.answer);
    }
    const figures = JSON.parse(read('figures.json').toString()).vlm;
    expect(figures.eval_questions).toBe(set.questions.length);
    const correct = set.questions.filter((q: { pytorch: string; answer: string }) => q.pytorch === q.answer).length;
    expect(correct / set.questions.length).toBeCloseTo(figures.accuracy, 10);
    // Measured 70.3% against 36.9% by chance; shapes, which need a colour tied to its shape, at
    // 71% against 33%. "Is there a ...?" is still at chance (51%); see docs/MODELS.md.
    expect(figures.accuracy).toBeGreaterThan(figures.chance + 0.25);
    for (const type of ['color', 'shape', 'count']) expect(figures.accuracy_by_type[type], type).toBeGreaterThan(figures.chance_by_type[type] + 0.3);
    expect(figures.descriptions_exact).toBeCloseTo(set.descriptions.filter((d: { pytorch: string; answer: string }) => d.pytorch === d.answer).length / set.descriptions.length, 10);
  });

  it('the PyTorch reference outputs have the shapes the encoder produces', () => {
    const ref = JSON.parse(read('reference/vlm.json').toString());
    const floats = (file: string) => read(`reference/${file}`).byteLength / 4;
    expect(floats(ref.hidden_file)).toBe(ref.hidden_shape.reduce((a: number, b: number) => a * b, 1));
    expect(floats(ref.embeddings_file)).toBe(ref.embeddings_shape.reduce((a: number, b: number) => a * b, 1));
    expect(ref.hidden_shape[1]).toBe(ref.embeddings_shape[1] + 1); // the class token is dropped before the projector
  });
});
