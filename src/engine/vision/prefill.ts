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
 * ToDRE's second stage (ours: the paper's abstract gives no numbers): in the middle of the
 * language model, half of the tower's diverse tokens go on, those the text attends to most; from
 * three quarters of the depth on, none (where the model has layers enough for both).
 */
const TODRE_DECODER_SHARE = 0.5;
const todreLayer = (layers: number) => Math.max(0, Math.floor(layers / 2) - 1);
const todreDropLayer = (layers: number, layer: number) => {
  const drop = Math.floor((3 * layers) / 4) - 1;
  return drop > layer && drop <= layers - 2 ? drop : undefined;
};

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
  for (const [i, part] of parts.entries()) {
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
    const inDecoder = pruning?.method === 'fastv' ? { keep, queries: 'last' as const, layer: FASTV_DEFAULT_LAYER }
      : pruning?.method === 'todre' && layers >= 2 ? { keep: Math.max(1, Math.round(keep * TODRE_DECODER_SHARE)), queries: 'text' as const, layer: todreLayer(layers) }
        : null;
    if (inDecoder) {
      // The image and the text after it as one step, so the text can score the image tokens.
      const next = parts[i + 1];
      const text = next && 'tokens' in next ? next.tokens.slice(0, session.stepTokens - embeddings.length / session.hidden) : [];
      const layer = Math.min(pruning!.layer ?? inDecoder.layer, layers - 2);
      const dropAllAfter = pruning!.method === 'todre' && text.length > 0 ? todreDropLayer(layers, layer) : undefined;
      const survivors = await session.prefillPruned(embeddings, text, { layer, keep: inDecoder.keep, queries: inDecoder.queries, dropAllAfter }, signal);
      skip = text.length;
      // patchMap: patch → the tower's kept token → the deep layers' kept token.
      const deepIndex = new Map([...survivors].map((row, i) => [row, i]));
      const deepMap = patchMap.map((t) => (t >= 0 ? deepIndex.get(t) ?? -1 : -1));
      images.push({ patches: N, kept: keep, patchMap: pruning!.method === 'fastv' ? deepMap : patchMap, deep: { layer, kept: inDecoder.keep, patchMap: deepMap, noneAfter: dropAllAfter }, encodeMs });
    } else {
      await session.prefillEmbeddings(embeddings, signal);
      images.push({ patches: N, kept: keep, patchMap, encodeMs });
    }
  }
  return images;
}
