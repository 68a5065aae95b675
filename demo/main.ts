// The demo page: the engine in a Web Worker, the built-in model loaded on open (or a URL, a picked
// or dropped file), streaming generation as text completion or chat, sampling options, and live
// stats. Everything goes through the public createEngine() API, as a web app would use it.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { type ChatMessage, type CompletionResult, createEngine, EngineError, type KvOptions, type LoadProgress, type ModelInfo, type ModelSource, type SpeculativeRequest } from '../src/index';
import { startKernelBench } from './kernel-bench';
import './vision';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const engine = createEngine();
let session: string | undefined;
let messages: ChatMessage[] = [];
let running: AbortController | undefined;
let loaded = false;
let modelInfo: ModelInfo | undefined;

// ---- loading ----

function showProgress(p: LoadProgress): void {
  const bar = $<HTMLProgressElement>(`progress-${p.phase}`);
  bar.value = p.total > 0 ? p.loaded / p.total : 0;
  const mib = (n: number) => (n / 2 ** 20).toFixed(1);
  $(`progress-${p.phase}-text`).textContent = p.phase === 'compile'
    ? (p.loaded === p.total ? 'done' : 'compiling shaders…')
    : `${mib(p.loaded)} / ${mib(p.total)} MiB${p.fromCache ? ' (from cache)' : ''}`;
}

function showError(where: HTMLElement, error: unknown): void {
  where.className = 'error';
  where.textContent = error instanceof EngineError ? `${error.kind}: ${error.message}` : String(error instanceof Error ? error.message : error);
}

async function load(source: ModelSource, label: string): Promise<void> {
  const status = $('model-status');
  for (const phase of ['download', 'upload', 'compile']) showProgress({ phase: phase as LoadProgress['phase'], loaded: 0, total: 0 });
  status.className = '';
  status.textContent = `Loading ${label}…`;
  setBusy(true);
  try {
    const info = await engine.load(source, { onProgress: showProgress });
    loaded = true;
    draftLoaded = false; // a new target drops the draft
    modelInfo = info;
    await newConversation();
    status.textContent = `${info.name}: ${info.architecture}, ${info.layers} layers, hidden ${info.hidden}, ${info.heads}/${info.kvHeads} heads, vocabulary ${info.vocabSize}, ` +
      `context ${info.sessionContext}; ${(info.weightBytes / 2 ** 20).toFixed(1)} MiB of weights on ${info.adapter}` + (info.hasChatTemplate ? '; has a chat template' : '; no chat template (a text model)');
    status.dataset.loaded = label;
    const mode = info.hasChatTemplate ? 'chat' : 'complete';
    document.querySelector<HTMLInputElement>(`input[name=mode][value=${mode}]`)!.checked = true;
  } catch (error) {
    showError(status, error);
  } finally {
    setBusy(false);
  }
}

$('load-builtin').addEventListener('click', () => {
  const path = $<HTMLSelectElement>('builtin').value;
  void load(new URL(path, location.href).href, path);
});
$('load-url').addEventListener('click', () => {
  const url = $<HTMLInputElement>('url').value.trim();
  if (url) void load(url, url);
});
$('file').addEventListener('change', () => {
  const file = $<HTMLInputElement>('file').files?.[0];
  if (file) void load(file, file.name);
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const file = e.dataTransfer?.files[0];
  if (file) void load(file, file.name);
});

// ---- generation ----

function number(id: string): number | undefined {
  const value = $<HTMLInputElement>(id).valueAsNumber;
  return Number.isFinite(value) ? value : undefined;
}

function setBusy(busy: boolean): void {
  $<HTMLButtonElement>('send').disabled = busy || !loaded;
  $<HTMLButtonElement>('stop').disabled = !busy || !running;
  for (const id of ['load-builtin', 'load-url']) $<HTMLButtonElement>(id).disabled = busy;
}

function addTurn(role: string, text: string): HTMLElement {
  const turn = document.createElement('div');
  turn.className = `turn ${role}`;
  turn.textContent = text;
  $('transcript').append(turn);
  return turn;
}

async function send(): Promise<void> {
  const text = $<HTMLTextAreaElement>('prompt').value;
  if (!text || !session) return;
  const chat = document.querySelector<HTMLInputElement>('input[name=mode]:checked')!.value === 'chat';
  running = new AbortController();
  setBusy(true);
  const sampling = {
    maxTokens: number('max-tokens'), temperature: number('temperature'), topK: number('top-k'), topP: number('top-p'),
    minP: number('min-p'), repetitionPenalty: number('repetition-penalty'), seed: number('seed'),
  };
  if (chat) messages.push({ role: 'user', content: text });
  addTurn('user', text);
  const reply = addTurn('assistant', '');
  reply.classList.add('streaming');
  const times: number[] = [];
  let last = performance.now();
  const speculative = await speculativeRequest();
  // Speculative sampling cannot apply a repetition penalty (each tree row has its own history).
  if (speculative && (sampling.temperature ?? 0) > 0) sampling.repetitionPenalty = 1;
  // With speculation the text arrives through onToken, accepted drafts marked, and each verify
  // step's accepted drafts go to the acceptance chart.
  const accepted: number[] = [];
  let acceptedInStep = 0;
  const onToken = speculative && ((piece: string, drafted?: boolean) => {
    const span = document.createElement('span');
    if (drafted) span.className = 'drafted';
    span.textContent = piece;
    reply.append(span);
    if (drafted) {
      acceptedInStep++;
    } else {
      accepted.push(acceptedInStep);
      acceptedInStep = 0;
      plotAcceptance(accepted);
    }
  });
  const stream = engine.generate({ ...sampling, session, signal: running.signal, speculative, onToken, ...(chat ? { messages } : { prompt: text }) });
  try {
    for await (const piece of stream) {
      if (!speculative) reply.textContent += piece;
      const now = performance.now();
      times.push(now - last);
      last = now;
      plotTokenTimes(times);
      plotKvLive(times.length);
    }
    const result = await stream.result;
    reply.dataset.tokens = JSON.stringify(result.tokens);
    reply.dataset.finish = result.finishReason;
    if (chat) messages.push({ role: 'assistant', content: result.text });
    showStats(result);
    showKv(result);
  } catch (error) {
    showError(reply, error);
  } finally {
    reply.classList.remove('streaming');
    running = undefined;
    setBusy(false);
  }
}

$('send').addEventListener('click', () => void send());
$('stop').addEventListener('click', () => running?.abort());
/** A new session with the KV panel's settings (a bad setting shows its error there and keeps the old session). */
async function newConversation(): Promise<void> {
  running?.abort();
  const status = $('kv-status');
  try {
    const kv = kvOptions();
    // A compressed cache holds its budget plus one prefill step: small steps keep it close to the budget.
    const next = await engine.createSession({ kv, prefillChunk: kv.policy === 'full' ? undefined : 16 });
    if (session) await engine.deleteSession(session).catch(() => undefined);
    session = next;
    status.className = '';
    status.textContent = '';
  } catch (error) {
    showError(status, error);
    return;
  }
  messages = [];
  kvSeen = 0;
  kvHistory.length = 0;
  $('transcript').replaceChildren();
}

$('new-conversation').addEventListener('click', () => void newConversation());

// ---- speculative decoding ----

const DRAFT = 'models/draft.q8_0.gguf';
let draftLoaded = false;

async function speculativeRequest(): Promise<SpeculativeRequest | undefined> {
  const strategy = $<HTMLSelectElement>('spec-strategy').value;
  if (strategy === 'off') return undefined;
  if (strategy === 'draft-model' && !draftLoaded) {
    $('spec-status').textContent = 'loading the draft model…';
    await engine.loadDraft(new URL(DRAFT, location.href).href);
    draftLoaded = true;
    $('spec-status').textContent = `draft: ${DRAFT}`;
  }
  return { strategy: strategy as SpeculativeRequest['strategy'], sizing: $<HTMLSelectElement>('spec-sizing').value as 'auto' | 'fixed', maxNodes: number('spec-nodes'), branching: number('spec-branching'), minConfidence: number('spec-confidence'), minPathValue: number('spec-path-value') };
}

// ---- KV-cache compression ----

function kvOptions(): KvOptions {
  const policy = $<HTMLSelectElement>('kv-policy').value as NonNullable<KvOptions['policy']>;
  return { policy, budget: number('kv-budget'), quantization: $<HTMLSelectElement>('kv-quantization').value as KvOptions['quantization'] };
}
for (const id of ['kv-policy', 'kv-budget', 'kv-quantization']) $(id).addEventListener('change', () => void newConversation());

/** Tokens the conversation has seen, and per reply: tokens seen, KV MiB held, MiB a full f32 cache would hold. */
let kvSeen = 0;
const kvHistory: Array<{ seen: number; held: number | null; full: number }> = [];

function fullCacheMiB(tokens: number): number {
  const info = modelInfo!;
  return (tokens * info.layers * info.kvHeads * (info.hidden / info.heads) * 2 * 4) / 2 ** 20;
}

/** Live while streaming: the tokens seen grow; what the session holds is what it held after the last reply (flat under a policy). */
function plotKvLive(streamed: number): void {
  const last = kvHistory.at(-1);
  const seen = kvSeen + streamed;
  plotKv([...kvHistory, { seen, held: last?.held ?? null, full: fullCacheMiB(seen) }]);
}

function plotKv(points: typeof kvHistory): void {
  const data: uPlot.AlignedData = [points.map((p) => p.seen), points.map((p) => p.held), points.map((p) => p.full)];
  if (kvChart) return kvChart.setData(data);
  kvChart = new uPlot({
    width: Math.min(880, $('kv-chart').clientWidth || 880), height: 160,
    scales: { x: { time: false } }, axes: [{ label: 'tokens seen' }, { label: 'KV MiB' }],
    series: [{}, { label: 'this session', stroke: '#4e9a06', width: 2, points: { show: true } }, { label: 'full f32 cache', stroke: '#888', dash: [4, 4] }],
  }, data, $('kv-chart'));
}
let kvChart: uPlot | undefined;

function showKv(r: CompletionResult): void {
  const s = r.stats;
  kvSeen = s.kv ? s.kv.keptTokens + s.kv.evictedTokens : s.sessionTokens;
  kvHistory.push({ seen: kvSeen, held: s.kvBytes / 2 ** 20, full: fullCacheMiB(kvSeen) });
  plotKv(kvHistory);
  const selected = s.kv?.selected;
  $('kv-status').textContent = !s.kv
    ? `full cache: ${s.sessionTokens} tokens, ${(s.kvBytes / 2 ** 20).toFixed(2)} MiB`
    : selected
      ? `${s.kv.policy}: ${s.kv.keptTokens} tokens cached, the last step attended to ${selected.positions.length}; ${selected.sparseSteps} of ${selected.steps} steps sparse${selected.cache ? `, scores reused in ${selected.cache.hits} of ${selected.cache.hits + selected.cache.misses} layer-steps` : ''}; ${(s.kvBytes / 2 ** 20).toFixed(2)} MiB`
      : `${s.kv.policy}: ${s.kv.keptTokens} tokens kept, ${s.kv.evictedTokens} evicted in ${s.kv.evictions} evictions; ${(s.kvBytes / 2 ** 20).toFixed(2)} MiB`;
  const canvas = $<HTMLCanvasElement>('kv-positions');
  const context = canvas.getContext('2d')!;
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.fillStyle = '#ddd';
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.fillStyle = '#4e9a06';
  const kept = selected?.positions.length ? selected.positions : s.kv && !selected ? s.kv.keptPositions : Array.from({ length: s.sessionTokens }, (_, i) => i);
  const scale = canvas.width / Math.max(1, kvSeen);
  for (const position of kept) context.fillRect(position * scale, 0, Math.max(1, scale), canvas.height);
  canvas.dataset.kept = String(kept.length);
}

// ---- stats ----

function showStats(r: CompletionResult): void {
  const s = r.stats;
  $('stat-prefill').textContent = `${s.prefillTokensPerSecond.toFixed(1)} tok/s`;
  $('stat-decode').textContent = `${s.decodeTokensPerSecond.toFixed(1)} tok/s`;
  $('stat-ttft').textContent = `${s.timeToFirstTokenMs.toFixed(0)} ms`;
  $('stat-kv').textContent = `${(s.kvBytes / 2 ** 20).toFixed(2)} MiB, ${s.sessionTokens} tokens`;
  $('stat-prompt').textContent = `${s.promptTokens} / ${s.cachedPromptTokens} reused`;
  $('stat-generated').textContent = `${s.generatedTokens} (${r.finishReason})`;
  $('stat-spec-tokens').textContent = s.speculative ? `${s.speculative.tokensPerStep.toFixed(2)} (${s.speculative.strategy})` : '1 (plain decoding)';
  $('stat-spec-accept').textContent = s.speculative ? `${(s.speculative.acceptanceRate * 100).toFixed(0)}% of ${s.speculative.drafted}` : '–';
}

/** A line chart of values against their 1-based index in element `id`, made on the first call and updated after. */
function seriesChart(id: string, options: { height: number; x: string; y: string; series: uPlot.Series; scales?: uPlot.Scales }) {
  let chart: uPlot | undefined;
  return (values: number[]): void => {
    const data: uPlot.AlignedData = [values.map((_, i) => i + 1), values];
    if (chart) return chart.setData(data);
    chart = new uPlot({
      width: Math.min(880, $(id).clientWidth || 880), height: options.height,
      scales: { x: { time: false }, ...options.scales },
      axes: [{ label: options.x }, { label: options.y }],
      series: [{}, options.series],
    }, data, $(id));
  };
}

const plotTokenTimes = seriesChart('chart', {
  height: 180, x: 'token', y: 'ms since the previous token', series: { label: 'ms/token', stroke: '#3465a4', width: 1.5 },
});

const plotAcceptance = seriesChart('spec-chart', {
  height: 140, x: 'verify step', y: 'accepted drafts', scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
  series: { label: 'accepted drafts', stroke: '#4e9a06', width: 1.5, points: { show: true } },
});

// ---- start ----

void startKernelBench();
$('load-builtin').click();
