// The vision tower and projector against PyTorch: the committed VLM's mmproj on the first three
// held-out images gives the ViT's hidden states and the image embeddings that PyTorch computed with
// the same (F16-rounded) weights (models/reference/vlm.json). Also: preprocessing, and clear errors
// for what the loader does not support.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGGUF } from '../src/formats/gguf-reader';
import { gv } from '../src/formats/gguf';
import { encodeGGUF } from '../src/formats/gguf-writer';
import { VisionEncoder, imagePatches, visionConfigFromGGUF } from '../src/models/vision';
import { testGpu } from './util';

const models = new URL('../models/', import.meta.url);
const reference = JSON.parse(readFileSync(new URL('reference/vlm.json', models), 'utf8')) as {
  images: number[]; hidden_shape: [number, number, number]; embeddings_shape: [number, number, number];
};
const f32 = (name: string) => new Float32Array(readFileSync(new URL(`reference/${name}`, models)).buffer.slice(0));

/** Largest |difference| over the largest |reference| value of each image's rows. */
function relativeError(got: Float32Array, want: Float32Array): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}

describe('vision encoder (CLIP mmproj)', () => {
  let encoder: VisionEncoder;
  let images: Uint8Array;
  beforeAll(async () => {
    encoder = await VisionEncoder.load(await testGpu(), await readGGUF(readFileSync(new URL('vlm-mmproj.f16.gguf', models))));
    images = new Uint8Array(readFileSync(new URL('vlm-eval/images.rgb', models)));
  });
  afterAll(() => encoder?.destroy());

  it('reads its configuration from the mmproj metadata', () => {
    expect(encoder.config).toMatchObject({ imageSize: 96, patchSize: 8, hidden: 128, heads: 4, blocks: 4, ffn: 512, projection: 128, patches: 144, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  });

  it('hidden states and image embeddings match PyTorch on the reference images', async () => {
    const [, tokens, width] = reference.hidden_shape;
    const [, patches, projection] = reference.embeddings_shape;
    const hidden = f32('vlm-vision-hidden.f32');
    const embeddings = f32('vlm-image-embeddings.f32');
    const bytes = 96 * 96 * 3;
    for (const [i, image] of reference.images.entries()) {
      const got = await encoder.encode(images.subarray(image * bytes, (image + 1) * bytes));
      const hiddenError = relativeError(got.hidden, hidden.subarray(i * tokens * width, (i + 1) * tokens * width));
      const embeddingError = relativeError(got.embeddings, embeddings.subarray(i * patches * projection, (i + 1) * patches * projection));
      console.log(`image ${image}: hidden states ${hiddenError.toExponential(2)}, image embeddings ${embeddingError.toExponential(2)} of the largest value`);
      expect(hiddenError).toBeLessThan(1e-4);
      expect(embeddingError).toBeLessThan(1e-4);
    }
  });

  it('cuts a normalised image into patch rows in the conv kernel\'s order', () => {
    const config = { ...encoder.config, imageSize: 4, patchSize: 2, patches: 4 };
    const rgb = Uint8Array.from({ length: 4 * 4 * 3 }, (_, i) => i * 5);
    const rows = imagePatches(config, rgb);
    // Patch 1 (top right), channel 2, pixel (x 1, y 0) of the patch: image pixel (3, 0).
    expect(rows[1 * 12 + (2 * 2 + 0) * 2 + 1]).toBeCloseTo((rgb[(0 * 4 + 3) * 3 + 2] / 255 - 0.5) / 0.5, 6);
    expect(() => imagePatches(config, new Uint8Array(10))).toThrow(/not 4x4 RGB/);
  });

  it('refuses a file that is not a CLIP tower with an MLP projector', async () => {
    const write = (entries: Record<string, string>) => readGGUF(encodeGGUF({ metadata: Object.entries(entries).map(([key, value]) => [key, gv.str(value)] as const) }));
    const llama = await write({ 'general.architecture': 'llama' });
    const resampler = await write({ 'general.architecture': 'clip', 'clip.projector_type': 'resampler' });
    expect(() => visionConfigFromGGUF(llama)).toThrow(/architecture "llama" is not clip/);
    expect(() => visionConfigFromGGUF(resampler)).toThrow(/projector type "resampler" is not supported/);
  });
});
