// A prompt of text and images into a session: each image through the vision tower (pruned or
// merged as asked), its embeddings spliced in where the prompt puts it.
import { GpuError } from '../../gpu';
import type { VisionEncoder } from '../../models/vision';
import { AbortError } from '../generate';
import type { Session } from '../session';
import { type ImageTokens, type VisionPruning, checkPruning, keptCount } from './pruning';

/** Token ids, or an image as uint8 RGB at the encoder's image size (row-major, 3 bytes a pixel). */
export type PromptPart = { tokens: number[] } | { image: Uint8Array };

/** FastV's layer when none is given: the commonly cited K = 2. */
export const FASTV_DEFAULT_LAYER = 2;

/**
 * Prefills `parts` in order after what the session holds. Returns what happened to each image.
 * The last row's logits land in the session's scratch, as with Session.prefill. With FastV, an
 * image and the text right after it (as much as fits one prefill step) run as one step, so the
 * text's last token can score the image tokens.
 */
export async function prefillMultimodal(
  session: Session, encoder: VisionEncoder, parts: PromptPart[], pruning?: VisionPruning, signal?: AbortSignal,
): Promise<ImageTokens[]> {
  checkPruning(pruning);
  const images: ImageTokens[] = [];
  const N = encoder.config.patches;
  const keep = pruning ? keptCount(pruning.budget, N) : N;
  const layers = session.layers;
  if (pruning?.method === 'fastv' && layers < 2) throw new GpuError('unsupported', `FastV needs a language model of at least 2 layers (this one has ${layers})`);
  let skip = 0; // tokens of the next text part already fed with FastV's image step
  for (const part of parts) {
    if (signal?.aborted) throw new AbortError();
    if ('tokens' in part) {
      const rest = part.tokens.slice(skip);
      skip = 0;
      if (rest.length) await session.prefill(rest, signal);
      continue;
    }
    const started = performance.now();
    const inTower = pruning && pruning.method !== 'fastv' ? { method: pruning.method, keep } : undefined;
    const { embeddings, patchMap } = await encoder.encode(part.image, inTower);
    const encodeMs = performance.now() - started;
    if (pruning?.method === 'fastv') {
      const next = parts[parts.indexOf(part) + 1];
      const text = next && 'tokens' in next ? next.tokens.slice(0, session.stepTokens - N) : [];
      const layer = Math.min(pruning.layer ?? FASTV_DEFAULT_LAYER, layers - 2);
      const kept = await session.prefillPruned(embeddings, text, { layer, keep }, signal);
      skip = text.length;
      const map = new Int32Array(N).fill(-1);
      kept.forEach((patch, i) => { map[patch] = i; });
      images.push({ patches: N, kept: keep, patchMap: map, encodeMs });
    } else {
      await session.prefillEmbeddings(embeddings, signal);
      images.push({ patches: N, kept: keep, patchMap, encodeMs });
    }
  }
  return images;
}
