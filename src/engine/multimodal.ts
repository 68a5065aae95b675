// Chat messages with images: OpenAI-style content parts, rendered into prompt pieces (token ids and
// images, in order) for prefillMultimodal; and which of a session's cached rows a new prompt can
// keep. An image's rows are reused only for the same pixels under the same pruning options.
import type { ChatMessage, Tokenizer } from '../tokenizer';
import { EngineError } from './errors';
import type { ImageInput } from './images';
import type { PromptPart } from './vision/prefill';
import type { ImageTokens, VisionPruning } from './vision/pruning';

/**
 * A part of a message's content, as in OpenAI's chat API: text, or an image by URL (http(s), a
 * URL relative to the page, a data: or blob: URL). `{ type: 'image', image }` is tokenwise's
 * extension for an image the page already holds: a Blob or File, an ImageBitmap, or raw pixels
 * `{ width, height, data }` (RGB or RGBA bytes; the only form that works in Node).
 */
export type ChatContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string; detail?: 'auto' | 'low' | 'high' } }
  | { type: 'image'; image: ImageInput };

/** A chat message whose content is text or a list of content parts. */
export interface ChatInputMessage {
  role: ChatMessage['role'];
  content: string | ChatContentPart[];
  [key: string]: unknown;
}

/** Prompt pieces in order: token ids, or an image still to be decoded. */
export type RenderedPiece = { tokens: number[] } | { image: ImageInput };

/** The image in a content part, or undefined for text; anything else is a bad request. */
function partImage(part: ChatContentPart, where: string): ImageInput | undefined {
  if (part?.type === 'text') {
    if (typeof part.text !== 'string') throw new EngineError('bad-request', `${where}: a text part needs a string text`);
    return undefined;
  }
  if (part?.type === 'image_url') {
    const url = part.image_url?.url as unknown;
    if (typeof url !== 'string' || !url) throw new EngineError('bad-request', `${where}: an image_url part needs image_url.url, a URL string (for a Blob use { type: 'image', image: blob })`);
    return url;
  }
  if (part?.type === 'image') {
    if (part.image === undefined || part.image === null) throw new EngineError('bad-request', `${where}: an image part needs an image`);
    return part.image;
  }
  throw new EngineError('bad-request', `${where}: unknown content part type ${JSON.stringify((part as { type?: unknown })?.type)} (text, image_url or image)`);
}

function checkMessages(messages: readonly ChatInputMessage[]): void {
  if (!Array.isArray(messages) || messages.length === 0) throw new EngineError('bad-request', 'messages must be a non-empty array');
  messages.forEach((m, i) => {
    if (typeof m?.content !== 'string' && !Array.isArray(m?.content)) throw new EngineError('bad-request', `message ${i}: content must be a string or an array of content parts`);
    if (Array.isArray(m.content)) m.content.forEach((p: ChatContentPart, j: number) => partImage(p, `message ${i}, part ${j}`));
  });
}

/** Whether any message holds an image part. */
export function hasImages(messages: readonly ChatInputMessage[]): boolean {
  checkMessages(messages);
  return messages.some((m) => Array.isArray(m.content) && m.content.some((p) => p.type !== 'text'));
}

/** Text-only messages as the chat template takes them: text parts joined. */
export function textMessages(messages: readonly ChatInputMessage[]): ChatMessage[] {
  return messages.map((m) => ({ ...m, content: typeof m.content === 'string' ? m.content : m.content.map((p) => (p.type === 'text' ? p.text : '')).join('') }));
}

const MARKER = '<__tokenwise_image_';
const MARKERS = /<__tokenwise_image_(\d+)__>/;

/**
 * The prompt for messages with images. With a chat template: each image part becomes a marker in
 * its message's text (the parts are concatenated), the template renders the conversation with the
 * generation prompt, and the text is split at the markers; the first piece gets BOS as
 * Tokenizer.encodeChat gives it, every piece is tokenized with special tokens parsed.
 *
 * `plain` (a model without a chat template): BOS, then every message's parts in order, messages
 * separated by a newline, roles not printed; text is tokenized as given. One user message
 * [image, "Question: ... Answer:"] is exactly the format the built-in VLM was trained on.
 */
export function renderMultimodal(tokenizer: Tokenizer, messages: readonly ChatInputMessage[], plain: boolean): RenderedPiece[] {
  checkMessages(messages);
  const images: ImageInput[] = [];
  const pieces: RenderedPiece[] = [];
  const text = (s: string, first: boolean) => {
    const ids = tokenizer.encode(s, { addSpecial: false, parseSpecial: !plain });
    if (first && tokenizer.vocab.addBos && tokenizer.bosId !== undefined && ids[0] !== tokenizer.bosId) ids.unshift(tokenizer.bosId);
    if (ids.length) pieces.push({ tokens: ids });
  };
  if (plain) {
    let pending = '';
    text('', true);
    messages.forEach((m, i) => {
      if (i > 0) pending += '\n';
      for (const part of typeof m.content === 'string' ? [{ type: 'text' as const, text: m.content }] : m.content) {
        const image = partImage(part, `message ${i}`);
        if (image === undefined) {
          pending += (part as { text: string }).text;
          continue;
        }
        if (pending) text(pending, false);
        pending = '';
        pieces.push({ image });
      }
    });
    if (pending) text(pending, false);
    return pieces;
  }
  const rendered = tokenizer.applyChatTemplate(messages.map((m, i) => {
    if (typeof m.content === 'string') {
      if (m.content.includes(MARKER)) throw new EngineError('bad-request', `message ${i} contains the reserved text ${MARKER}`);
      return { ...m, content: m.content };
    }
    const content = m.content.map((part) => {
      const image = partImage(part, `message ${i}`);
      if (image === undefined) {
        if ((part as { text: string }).text.includes(MARKER)) throw new EngineError('bad-request', `message ${i} contains the reserved text ${MARKER}`);
        return (part as { text: string }).text;
      }
      images.push(image);
      return `${MARKER}${images.length - 1}__>`;
    }).join('');
    return { ...m, content };
  }), { addGenerationPrompt: true });
  // split() with a capture group alternates text and image indices.
  rendered.split(MARKERS).forEach((piece, i) => {
    if (i % 2 === 0) text(piece, i === 0);
    else pieces.push({ image: images[Number(piece)] });
  });
  return pieces;
}

/** A piece ready to prefill: token ids, or a run of adjacent images with one identity key. */
export type PreparedPiece = { tokens: number[] } | { images: Uint8Array[]; key: string };

/** Rows [start, end) of a session's history that came from `images`, encoded under `key` (pixels and pruning). */
export interface CachedImages {
  start: number;
  end: number;
  key: string;
  images: ImageTokens[];
}

/** Adjacent token pieces joined and adjacent images grouped; `keys[i]` identifies image i's pixels. */
export function preparePieces(rendered: Array<{ tokens: number[] } | { rgb: Uint8Array; key: string }>, pruning: VisionPruning | undefined): PreparedPiece[] {
  const options = JSON.stringify(pruning ? { method: pruning.method, budget: pruning.budget, layer: pruning.layer } : null);
  const out: PreparedPiece[] = [];
  for (const piece of rendered) {
    const last = out.at(-1);
    if ('tokens' in piece) {
      if (last && 'tokens' in last) last.tokens = [...last.tokens, ...piece.tokens];
      else out.push({ tokens: [...piece.tokens] });
    } else if (last && 'images' in last) {
      last.images.push(piece.rgb);
      last.key += `|${piece.key}`;
    } else {
      out.push({ images: [piece.rgb], key: `${options}|${piece.key}` });
    }
  }
  return out;
}

/**
 * How many leading rows of the session's history the prompt can keep: tokens that match, and image
 * runs that `cached` says hold the same images under the same pruning. At most all but the
 * prompt's last token (it must run to give logits). Session.rollbackLimit then applies the
 * session's own limits (a compressed cache, a step FastV pruned).
 */
export function reusableRows(history: readonly number[], cached: readonly CachedImages[], pieces: readonly PreparedPiece[]): number {
  let common = 0;
  let total = 0;
  let matching = true;
  for (const piece of pieces) {
    if ('tokens' in piece) {
      for (const id of piece.tokens) {
        if (matching && common < history.length && history[common] === id) common++;
        else matching = false;
        total++;
      }
    } else {
      const run = matching ? cached.find((c) => c.start === common && c.key === piece.key) : undefined;
      if (run && run.end <= history.length) {
        common = run.end;
        total += run.end - run.start;
      } else {
        matching = false;
        total += 1; // at least one row; only its position before the last token matters
      }
    }
  }
  common = Math.min(common, total - 1);
  return Math.max(0, common);
}

/**
 * The parts still to prefill after `common` rows are kept (up to the prompt's last token: its
 * logits start the answer), the pieces they come from (for landedImages), and each image group of
 * the prompt in order (`reused` when the session holds it).
 */
export function remainingParts(pieces: readonly PreparedPiece[], cached: readonly CachedImages[], common: number): {
  parts: PromptPart[]; groups: PreparedPiece[]; imageGroups: Array<{ count: number; reused?: CachedImages }>;
} {
  const parts: PromptPart[] = [];
  const groups: PreparedPiece[] = [];
  const imageGroups: Array<{ count: number; reused?: CachedImages }> = [];
  let at = 0;
  for (const piece of pieces) {
    if ('tokens' in piece) {
      const skip = Math.max(0, Math.min(piece.tokens.length, common - at));
      at += piece.tokens.length;
      const rest = piece.tokens.slice(skip);
      if (rest.length) {
        parts.push({ tokens: rest });
        groups.push({ tokens: rest });
      }
      continue;
    }
    const reused = cached.find((c) => c.start === at && c.end <= common && c.key === piece.key);
    imageGroups.push({ count: piece.images.length, reused });
    if (reused) {
      at = reused.end;
      continue;
    }
    for (const image of piece.images) parts.push({ image });
    groups.push(piece);
    at = Number.POSITIVE_INFINITY; // nothing after a new image is cached
  }
  const tail = groups.at(-1);
  if (!tail || !('tokens' in tail)) throw new EngineError('bad-request', 'the prompt must end with text after its last image (the model answers after a token)');
  return { parts, groups, imageGroups };
}

/**
 * After prefilling `groups` from row `from`, where each image group landed in the history (runs of
 * IMAGE_TOKEN rows between the known text): the spans to remember. An unexpected history gives none
 * (never a wrong reuse). `images` are prefillMultimodal's results, in order.
 */
export function landedImages(history: readonly number[], from: number, groups: readonly PreparedPiece[], images: readonly ImageTokens[], imageRow: number): CachedImages[] {
  const spans: CachedImages[] = [];
  let at = from;
  let next = 0;
  for (const piece of groups) {
    if ('tokens' in piece) {
      if (piece.tokens.some((id, i) => history[at + i] !== id)) return [];
      at += piece.tokens.length;
      continue;
    }
    const start = at;
    while (at < history.length && history[at] === imageRow) at++;
    if (at === start) return [];
    spans.push({ start, end: at, key: piece.key, images: images.slice(next, next + piece.images.length) });
    next += piece.images.length;
  }
  return spans;
}
