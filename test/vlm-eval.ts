// The committed VLM's held-out set (models/vlm-eval) and greedy answering as tools/train/vlm.py's
// answer(): BOS, the image embeddings, the prompt, then at most 8 tokens up to EOS.
import { readFileSync } from 'node:fs';
import type { Session } from '../src/engine/session';
import type { Decoder } from '../src/models/decoder';
import type { VisionEncoder } from '../src/models/vision';
import type { Tokenizer } from '../src/tokenizer';

export interface VlmQuestion { image: number; type: string; question: string; answer: string; pytorch: string }
/** A request to describe an image: every object's colour, shape and side (scenes.py's describe). */
export interface VlmDescription { image: number; question: string; answer: string; pytorch: string }

export function loadVlmEvalSet() {
  const dir = new URL('../models/vlm-eval/', import.meta.url);
  const set = JSON.parse(readFileSync(new URL('questions.json', dir), 'utf8')) as { image_size: number; prompt: string; questions: VlmQuestion[]; descriptions: VlmDescription[] };
  const images = new Uint8Array(readFileSync(new URL('images.rgb', dir)));
  const bytes = set.image_size ** 2 * 3;
  return {
    questions: set.questions,
    descriptions: set.descriptions,
    image: (i: number) => images.subarray(i * bytes, (i + 1) * bytes),
    prompt: (question: string) => set.prompt.replace('{question}', question),
  };
}

/**
 * Greedy answer to `prompt` about `image` (uint8 RGB), on an empty session; with image null the
 * session already holds BOS and an image, and only the prompt is added.
 */
export async function answerAboutImage(
  vlm: { encoder: VisionEncoder; decoder: Decoder; tokenizer: Tokenizer; session: Session }, image: Uint8Array | null, prompt: string, maxTokens = 8,
): Promise<string> {
  const { encoder, tokenizer, session } = vlm;
  if (image) {
    session.truncate(0);
    await session.prefill([tokenizer.vocab.special.bos ?? 1]);
    await session.prefillEmbeddings((await encoder.encode(image)).embeddings);
  }
  const eos = tokenizer.vocab.special.eos;
  const generated: number[] = [];
  let token = await session.feedGreedy(tokenizer.encode(prompt, { addSpecial: false }));
  while (token !== eos && generated.length < maxTokens) {
    generated.push(token);
    if (generated.length < maxTokens) token = await session.feedGreedy([token]);
  }
  return tokenizer.decode(generated).trim();
}
