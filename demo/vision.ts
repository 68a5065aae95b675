// The demo's Vision panel: the built-in VLM (language model + mmproj) in its own engine (a second
// Web Worker, so the text model above stays loaded), an uploaded image or a generated scene, a
// question, a pruning method and budget, speculative decoding if wanted; then the answer, the tokens kept, the timings, and which
// patches reached the model drawn over the image. Images go to the engine as PNG/JPEG data URLs in
// OpenAI-style content parts; decoding and resizing happen in the worker.
import { type ChatCompletion, type Engine, EngineError, type ImageStats, type LoadProgress, PRUNING_METHODS, type SpeculativeRequest, type VisionPruning, createEngine } from '../src/index';
import { GENERIC_QUESTIONS, IMAGE_SIZE, type Scene, makeScene, promptText } from './scenes';

const LM = 'models/vlm.f16.gguf';
const MMPROJ = 'models/vlm-mmproj.f16.gguf';
const PATCHES = 144;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
let engine: Engine | undefined;
let loading: Promise<void> | undefined;
/** The image to ask about, as a data URL, and a generated scene's questions with their answers. */
let image: { url: string; scene?: Scene } | undefined;

function showError(where: HTMLElement, error: unknown): void {
  where.className = 'error';
  where.textContent = error instanceof EngineError ? `${error.kind}: ${error.message}` : String(error instanceof Error ? error.message : error);
}

function loadVlm(): Promise<void> {
  loading ??= (async () => {
    const status = $('vision-status');
    status.className = '';
    status.textContent = 'Loading the VLM…';
    const progress = (p: LoadProgress) => {
      status.textContent = `Loading the VLM: ${p.phase} ${p.total ? Math.round((100 * p.loaded) / p.total) : 0}%`;
    };
    try {
      engine ??= createEngine();
      const info = await engine.load(new URL(LM, location.href).href, { mmproj: new URL(MMPROJ, location.href).href, onProgress: progress });
      const v = info.vision!;
      status.textContent = `${info.name} + ${v.name}: ${v.imageSize}x${v.imageSize} images in ${v.patches} patches of ${v.patchSize} px, a ${info.layers}-layer language model of width ${info.hidden}`;
      status.dataset.loaded = LM;
    } catch (error) {
      loading = undefined;
      showError(status, error);
      throw error;
    }
  })();
  return loading;
}

// ---- the image ----

/** Shows the image at the model's size (what the worker will make of it, near enough) and keeps its data URL. */
async function setImage(url: string, picture: Blob | ImageData, scene?: Scene): Promise<void> {
  const context = $<HTMLCanvasElement>('vision-image').getContext('2d')!;
  if (picture instanceof ImageData) {
    context.putImageData(picture, 0, 0);
  } else {
    const bitmap = await createImageBitmap(picture, { resizeWidth: IMAGE_SIZE, resizeHeight: IMAGE_SIZE, resizeQuality: 'high' });
    context.drawImage(bitmap, 0, 0);
    bitmap.close();
  }
  clearOverlay();
  image = { url, scene };
  const questions = scene ? scene.questions.map((q) => q.question) : GENERIC_QUESTIONS;
  $('vision-questions').replaceChildren(...questions.map((q) => Object.assign(document.createElement('option'), { value: q })));
  $<HTMLInputElement>('vision-question').value = questions[0];
  showExpected();
  $<HTMLButtonElement>('vision-ask').disabled = false;
}

function showExpected(): void {
  const question = $<HTMLInputElement>('vision-question').value;
  const known = image?.scene?.questions.find((q) => q.question === question);
  $('vision-expected').textContent = known ? `(the scene's answer: ${known.answer})` : '';
}

function scenePixels(scene: Scene): ImageData {
  const pixels = new ImageData(IMAGE_SIZE, IMAGE_SIZE);
  for (let p = 0; p < IMAGE_SIZE * IMAGE_SIZE; p++) {
    pixels.data.set(scene.rgb.subarray(p * 3, p * 3 + 3), p * 4);
    pixels.data[p * 4 + 3] = 255;
  }
  return pixels;
}

$('vision-scene').addEventListener('click', () => {
  const scene = makeScene();
  const pixels = scenePixels(scene);
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = IMAGE_SIZE;
  canvas.getContext('2d')!.putImageData(pixels, 0, 0);
  $('vision-image').dataset.seed = String(scene.seed);
  void setImage(canvas.toDataURL('image/png'), pixels, scene);
});

$('vision-file').addEventListener('change', () => {
  const file = $<HTMLInputElement>('vision-file').files?.[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => void setImage(reader.result as string, file).catch((error) => showError($('vision-answer'), error));
  reader.readAsDataURL(file);
});

$('vision-question').addEventListener('input', showExpected);

// ---- pruning ----

function pruning(): VisionPruning | undefined {
  const method = $<HTMLSelectElement>('vision-method').value;
  if (method === 'none') return undefined;
  return { method: method as VisionPruning['method'], budget: $<HTMLInputElement>('vision-budget').valueAsNumber };
}

function showBudget(): void {
  const ratio = $<HTMLInputElement>('vision-budget').valueAsNumber;
  const none = $<HTMLSelectElement>('vision-method').value === 'none';
  $<HTMLInputElement>('vision-budget').disabled = none;
  $('vision-budget-text').textContent = none ? `all ${PATCHES} tokens` : `${Math.round(ratio * 100)}%: ${Math.max(1, Math.floor(PATCHES * ratio))} of ${PATCHES} tokens`;
}

$('vision-method').replaceChildren(...['none', ...PRUNING_METHODS].map((m) => Object.assign(document.createElement('option'), { value: m, textContent: m })));
$('vision-method').addEventListener('change', showBudget);
$('vision-budget').addEventListener('input', showBudget);
showBudget();

// ---- speculative decoding ----

function speculative(): SpeculativeRequest | undefined {
  const strategy = $<HTMLSelectElement>('vision-spec').value;
  if (strategy === 'off') return undefined;
  return { strategy: strategy as SpeculativeRequest['strategy'], sizing: $<HTMLSelectElement>('vision-spec-sizing').value as 'auto' | 'fixed', maxNodes: 4 };
}

// ---- asking ----

async function askVlm(): Promise<void> {
  if (!image) return;
  const answer = $('vision-answer');
  answer.className = '';
  answer.textContent = '…';
  delete answer.dataset.finish;
  $<HTMLButtonElement>('vision-ask').disabled = true;
  try {
    await loadVlm();
    const reply: ChatCompletion = await engine!.chat.completions.create({
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: image.url } }, { type: 'text', text: promptText($<HTMLInputElement>('vision-question').value) }] }],
      temperature: 0, max_tokens: 48, vision: pruning(), speculative: speculative(), // a description runs to ~40 tokens; answers stop at EOS
    });
    answer.textContent = reply.choices[0].message.content.trim();
    answer.dataset.finish = reply.choices[0].finish_reason;
    const s = reply.usage.extra;
    const stats = s.images![0];
    answer.dataset.kept = String(stats.kept);
    answer.dataset.patches = String(stats.patches);
    $('vision-stat-kept').textContent = `${stats.kept} of ${stats.patches}`;
    $('vision-stat-encode').textContent = `${stats.encodeMs.toFixed(0)} ms${stats.cached ? ' (cached)' : ''}`;
    $('vision-stat-prefill').textContent = `${s.prefillMs.toFixed(0)} ms, ${s.promptTokens} rows`;
    $('vision-stat-ttft').textContent = `${s.timeToFirstTokenMs.toFixed(0)} ms`;
    const spec = s.speculative;
    $('vision-stat-spec').textContent = spec ? `${spec.tokensPerStep.toFixed(2)} (${spec.strategy}, ${spec.accepted} of ${spec.drafted} drafts accepted)` : '1 (plain decoding)';
    $('vision-stat-spec').dataset.tokensPerStep = String(spec?.tokensPerStep ?? 1);
    $('vision-stat-decode').textContent = `${s.decodeTokensPerSecond.toFixed(1)} tokens/s`;
    drawOverlay(stats);
  } catch (error) {
    showError(answer, error);
    answer.dataset.finish = 'error';
  } finally {
    $<HTMLButtonElement>('vision-ask').disabled = !image;
  }
}

$('vision-load').addEventListener('click', () => void loadVlm().catch(() => undefined));
$('vision-ask').addEventListener('click', () => void askVlm());

// ---- the kept patches ----

function clearOverlay(): void {
  const overlay = $<HTMLCanvasElement>('vision-overlay');
  overlay.getContext('2d')!.clearRect(0, 0, overlay.width, overlay.height);
  delete overlay.dataset.mapped;
}

/** Pruned patches dimmed; patches merged into one token share a colour; a kept patch of its own stays clear. */
function drawOverlay(stats: ImageStats): void {
  const overlay = $<HTMLCanvasElement>('vision-overlay');
  const context = overlay.getContext('2d')!;
  context.clearRect(0, 0, overlay.width, overlay.height);
  const grid = Math.round(Math.sqrt(stats.patches));
  const cell = overlay.width / grid;
  const groupSize = new Map<number, number>();
  for (const token of stats.patchMap) if (token >= 0) groupSize.set(token, (groupSize.get(token) ?? 0) + 1);
  stats.patchMap.forEach((token, p) => {
    const x = (p % grid) * cell, y = Math.floor(p / grid) * cell;
    if (token < 0) {
      context.fillStyle = 'rgba(0, 0, 0, 0.7)';
    } else if ((groupSize.get(token) ?? 0) > 1) {
      context.fillStyle = `hsla(${(token * 137.5) % 360}, 85%, 55%, 0.35)`;
    } else {
      return;
    }
    context.fillRect(x, y, cell, cell);
  });
  overlay.dataset.mapped = String(stats.patchMap.filter((t) => t >= 0).length);
  overlay.dataset.tokens = String(groupSize.size);
}
