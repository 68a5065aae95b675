// KV-cache compression on the trained target model and its held-out text, in Node (Dawn):
// 1. quality against memory: perplexity and top-1 agreement with the full cache, per policy, at
//    4x and 8x less KV memory than the full window, and with int8/int4 caches;
// 2. retrieval: a phrase planted far back and repeated at the end, where the model can only
//    predict it by copying from the cache; accuracy against distance and budget;
// 3. attention time and KV bytes of one decoding step against context length, full vs compressed,
//    and the step of the selection policies (TokenSelect scores every key, then reads its budget).
// Writes bench/results/kv-<adapter>.md and a plot of top-1 agreement against memory (.svg, bench/kv-plot.ts).
//
//   npx tsx bench/kv.ts [--windows=1] [--trials=1] [--only=<regex>] [--model=models/target.q8_0.gguf]
//
// With --only the results go to kv-<adapter>-only.md (or kv-<adapter>-<name>.md with --name=<name>).
//
// About an hour on SwiftShader with 2 cores (each configuration teacher-forces every window).
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Session, type SessionOptions } from '../src/engine/session';
import { readGGUF } from '../src/formats/gguf-reader';
import { requestGpu } from '../src/gpu';
import { attention, attentionMass } from '../src/kernels/attention';
import { selectTopK } from '../src/kernels/select';
import { type KvFormat, PAGE, createKvCache, destroyKvCache, identityPageTable, kvWrite } from '../src/kernels/kv-cache';
import { Decoder } from '../src/models/decoder';
import { Tokenizer } from '../src/tokenizer';
import { adapterSlug } from './model-report';
import { kvPlot, pointsFromTable } from './kv-plot';
import { timeGpu } from './timing';

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const windows = Number(arg('windows', '1'));
const modelPath = arg('model', 'models/target.q8_0.gguf');

const gpu = await requestGpu();
const file = await readGGUF(new Uint8Array(readFileSync(modelPath)));
const decoder = await Decoder.load(gpu, file);
const tokenizer = Tokenizer.fromGGUFMetadata(file);
const c = decoder.config;
const WINDOW = Math.min(c.contextLength, 512);
// Evaluation steps of 16 queries: the cache's room beyond the budget, so budget + 16 is its whole size.
const STEP = 16;
const text = tokenizer.encode(readFileSync('bench/data/held-out.txt', 'utf8'), { addSpecial: false });
if (text.length < 4 * 512) throw new Error(`bench/data/held-out.txt gives only ${text.length} tokens`);
const log = (line: string) => console.log(line);

/** ratio: KV memory saved, or for a selection policy (which keeps the whole cache), context over tokens attended. */
interface Config { label: string; options: SessionOptions; ratio: number; selection?: boolean }
const full: SessionOptions = { contextLength: WINDOW, prefillChunk: STEP };
const budgetFor = (ratio: number) => WINDOW / ratio - STEP;
const configs: Config[] = [{ label: 'full cache, f32', options: full, ratio: 1 }];
for (const ratio of [4, 8]) {
  const budget = budgetFor(ratio);
  const sinks = 4;
  configs.push(
    { label: `StreamingLLM, ${sinks} sinks`, options: { prefillChunk: STEP, kv: { policy: 'streaming-llm', budget, sinks } }, ratio },
    { label: `LM-Infinite, ${sinks} global`, options: { prefillChunk: STEP, kv: { policy: 'lm-infinite', budget, sinks } }, ratio },
    { label: 'H2O, half recent', options: { prefillChunk: STEP, kv: { policy: 'h2o', budget } }, ratio },
    { label: 'Keyformer, half recent, τ 1→2 over 512', options: { prefillChunk: STEP, kv: { policy: 'keyformer', budget, horizon: 512 } }, ratio },
    { label: 'SnapKV, window 16, pool 7', options: { prefillChunk: STEP, kv: { policy: 'snapkv', budget } }, ratio },
  );
  // Selection policies attend to WINDOW / ratio tokens per step (4 sinks, a quarter recent, the rest
  // top-k tokens, or for InfLLM units of 16 tokens at 4x and 8 at 8x).
  for (const [policy, label] of [['tokenselect', 'TokenSelect'], ['tidaldecode', 'TidalDecode'], ['infllm', 'InfLLM']] as const) {
    configs.push({ label: `${label}, attends ${WINDOW / ratio}`, options: { contextLength: WINDOW, prefillChunk: STEP, kv: { policy, budget: WINDOW / ratio } }, ratio, selection: true });
  }
}
for (const format of ['f16', 'int8', 'int4'] as KvFormat[]) configs.push({ label: `full cache, ${format}`, options: { ...full, kvFormat: format }, ratio: ratioOf(format) });
configs.push(
  { label: 'StreamingLLM + int8', options: { prefillChunk: STEP, kvFormat: 'int8', kv: { policy: 'streaming-llm', budget: budgetFor(2) } }, ratio: 2 * ratioOf('int8') },
  { label: 'H2O + int8', options: { prefillChunk: STEP, kvFormat: 'int8', kv: { policy: 'h2o', budget: budgetFor(2) } }, ratio: 2 * ratioOf('int8') },
);

// --only=<regex>: just the configurations whose label matches (and the full cache, the baseline).
const only = arg('only', '');
if (only) configs.splice(1, configs.length, ...configs.slice(1).filter((x) => new RegExp(only).test(x.label)));

/** Compression of a cache format against f32 (int8/int4 carry an f16 scale and min per 32 values). */
function ratioOf(format: KvFormat): number {
  const bitsPerValue = { f32: 32, f16: 16, int8: 8 + 32 / 32, int4: 4 + 32 / 32 }[format];
  return 32 / bitsPerValue;
}

const argmax = (row: Float32Array) => {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
};
const logProb = (row: Float32Array, token: number) => {
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  return row[token] - max - Math.log(sum);
};

async function evaluate(options: SessionOptions, tokens: number[]): Promise<Float32Array[]> {
  const session = new Session(gpu, decoder, options);
  try {
    return await session.evaluate(tokens);
  } finally {
    session.destroy();
  }
}

// 1. Quality against memory.
const started = performance.now();
const pieces = Array.from({ length: windows }, (_, w) => text.slice(w * WINDOW, (w + 1) * WINDOW));
const fullArgmax: number[][] = [];
const quality: string[] = [];
const selectionQuality: string[] = [];
let fullPerplexity = 0;
for (const config of configs) {
  let nll = 0, count = 0, agree = 0;
  for (const [w, piece] of pieces.entries()) {
    const rows = await evaluate(config.options, piece);
    rows.slice(0, -1).forEach((row, i) => {
      nll -= logProb(row, piece[i + 1]);
      count++;
      if (config === configs[0]) (fullArgmax[w] ??= []).push(argmax(row));
      else if (argmax(row) === fullArgmax[w][i]) agree++;
    });
  }
  const perplexity = Math.exp(nll / count);
  if (config === configs[0]) fullPerplexity = perplexity;
  const increase = perplexity / fullPerplexity - 1;
  const kv = config.options.kv;
  const table = config.selection ? selectionQuality : quality;
  table.push(`| ${config.label} | ${kv ? kv.budget : WINDOW} | ${config.ratio.toFixed(2)}x | ${perplexity.toFixed(2)} | ${config === configs[0] ? '-' : `${increase >= 0 ? '+' : ''}${(increase * 100).toFixed(1)}%`} | ${config === configs[0] ? '-' : `${((agree / count) * 100).toFixed(1)}%`} |`);
  log(table.at(-1)!);
}

// 2. Retrieval: a phrase of 12 held-out tokens, then `distance` tokens of other held-out text, then
// the phrase again; accuracy = top-1 predictions of its tokens after the first two, the second time.
const retrieval: string[] = [];
const distances = [96, 448];
const trials = Number(arg('trials', '1'));
// Phrases from the second half of the sample, fillers from its first (the quality windows use its start).
const phraseAt = Math.floor(text.length / 2);
// LM-Infinite keeps what StreamingLLM keeps (only positions differ), so it is left out here to save time.
const retrievalConfigs = configs.filter((x) => x.ratio === 1 || (x.ratio === 4 && x.options.kv && x.options.kv.policy !== 'lm-infinite'));
for (const config of retrievalConfigs) {
  const cells: string[] = [];
  for (const distance of distances) {
    let hits = 0, total = 0;
    for (let trial = 0; trial < trials; trial++) {
      const phrase = text.slice(phraseAt + trial * 997, phraseAt + trial * 997 + 12);
      const filler = text.slice(2_000 + trial * 1_511, 2_000 + trial * 1_511 + distance);
      const tokens = [tokenizer.vocab.special.bos ?? 1, ...phrase, ...filler, ...phrase];
      const rows = await evaluate(config.ratio === 1 ? { ...config.options, contextLength: Math.max(WINDOW, tokens.length + PAGE) } : config.options, tokens);
      const start = 1 + phrase.length + filler.length;
      for (let i = 2; i < phrase.length; i++) {
        total++;
        if (argmax(rows[start + i - 1]) === phrase[i]) hits++;
      }
    }
    cells.push(`${((hits / total) * 100).toFixed(0)}%`);
  }
  retrieval.push(`| ${config.label} | ${config.options.kv?.budget ?? '-'} | ${cells.join(' | ')} |`);
  log(retrieval.at(-1)!);
}

// 3. One decoding step's attention (all heads of one layer) against context length: the full
// cache reads every token, a compressed one its budget + room (here 112 + 16). A selection step
// keeps the full cache: TokenSelect's layers score every key (K only), select 128 and attend to
// them; TidalDecode's sparse layers only attend to the 128 their selection layer chose.
const timing: string[] = [];
const ATTENDED = 128;
for (const context of [512, 2048, 8192]) {
  const row: string[] = [];
  for (const kvLen of [context, ATTENDED]) {
    const capacity = Math.ceil(kvLen / PAGE) * PAGE;
    const pageTable = gpu.upload(identityPageTable(capacity));
    const cache = createKvCache(gpu, { capacity, kvHeads: c.kvHeads, headDim: c.headDim, format: 'f32', pageTable });
    const values = gpu.upload(Float32Array.from({ length: kvLen * c.kvHeads * c.headDim }, (_, i) => Math.sin(i)));
    const slots = gpu.upload(Uint32Array.from({ length: kvLen }, (_, i) => i));
    await gpu.run((pass) => kvWrite(gpu, pass, { cache, k: values, v: values, slots, count: kvLen }));
    const q = gpu.upload(Float32Array.from({ length: c.heads * c.headDim }, (_, i) => Math.cos(i)));
    const out = gpu.buffer(c.heads * c.headDim * 4);
    const step = { q, cache, T: 1, numHeads: c.heads, kvLen, queryStart: kvLen - 1, scale: 1 / Math.sqrt(c.headDim) };
    const t = await timeGpu(gpu, (pass) => attention(gpu, pass, { ...step, out, mask: { kind: 'causal' } }), { samples: 3 });
    row.push(t.ms.toFixed(3), `${((cache.bytes * c.layers) / 1024).toFixed(0)} KiB`);
    if (kvLen === context) {
      const mass = gpu.buffer(c.kvHeads * kvLen * 4);
      const lists = gpu.buffer(c.kvHeads * ATTENDED * 4);
      const counts = gpu.buffer(c.kvHeads * 4);
      const sparse = { kind: 'block-sparse', blocks: lists, counts, blockSize: 1, maxBlocks: ATTENDED } as const;
      const select = (pass: GPUComputePassEncoder) => {
        attentionMass(gpu, pass, { ...step, mask: { kind: 'causal' }, mass });
        selectTopK(gpu, pass, { x: mass, rows: c.kvHeads, n: kvLen, k: ATTENDED - 36, first: 4, last: 32, out: lists, counts, outStride: ATTENDED });
      };
      await gpu.run(select);
      const tokenSelect = await timeGpu(gpu, (pass) => { select(pass); attention(gpu, pass, { ...step, out, mask: sparse }); }, { samples: 3 });
      const tidalSparse = await timeGpu(gpu, (pass) => attention(gpu, pass, { ...step, out, mask: sparse }), { samples: 3 });
      row.push(tokenSelect.ms.toFixed(3), tidalSparse.ms.toFixed(3));
      for (const b of [mass, lists, counts]) b.destroy();
    }
    destroyKvCache(cache);
    for (const b of [pageTable, values, slots, q, out]) b.destroy();
  }
  const [fullMs, fullKv, tokenSelectMs, tidalMs, compressedMs, compressedKv] = row;
  const ratio = (a: string, b: string) => `${(Number(a) / Number(b)).toFixed(1)}x`;
  timing.push(`| ${context} | ${fullMs} | ${fullKv} | ${compressedMs} | ${compressedKv} | ${ratio(fullMs, compressedMs)} | ${tokenSelectMs} (${ratio(fullMs, tokenSelectMs)}) | ${tidalMs} (${ratio(fullMs, tidalMs)}) |`);
  log(timing.at(-1)!);
}
decoder.destroy();

const slug = adapterSlug(gpu.adapterDescription);
const seconds = (performance.now() - started) / 1000;
const markdown = `# KV-cache compression on ${gpu.adapterDescription}

Measured ${new Date().toISOString().slice(0, 10)} with \`npx tsx bench/kv.ts --windows=${windows} --trials=${trials}${only ? ` --only='${only}' --name=${arg('name', 'only')}` : ''}\`, Node ${process.version} + Dawn, ${availableParallelism()} CPU cores, ${(seconds / 60).toFixed(0)} minutes.
Model: \`${modelPath}\` (${c.layers} layers, ${c.heads} heads, ${c.kvHeads} KV heads of ${c.headDim}). Text: ${windows} windows of ${WINDOW} tokens of
held-out chapters (bench/data/held-out.txt), teacher-forced in steps of ${STEP} tokens.

## Quality against memory

Memory: the full ${WINDOW}-token f32 cache over what the session allocates (a policy's cache holds its budget plus one
${STEP}-token step; int8/int4 carry an f16 scale and minimum per 32 values). Perplexity of the held-out tokens; top-1: the
argmax agrees with the full f32 cache's. The goal: 4x smaller at no more than +2% perplexity, 8x at no more than +5%.

| cache | budget (tokens) | memory saved | perplexity | vs full | top-1 agreement |
|---|---:|---:|---:|---:|---:|
${quality.join('\n')}

### Selection policies

TokenSelect and TidalDecode keep the whole cache (no memory saved) and attend to their budget of it per step: 4 sinks, a
recent quarter of the budget (at least the step's own ${STEP} tokens), and the top-k keys by attention mass, per kv head.
"Attended" is the context over the tokens attended at the end of the window.

| policy | attended per step | context / attended | perplexity | vs full | top-1 agreement |
|---|---:|---:|---:|---:|---:|
${selectionQuality.join('\n')}

## Retrieval

A 12-token held-out phrase, then N tokens of other held-out text, then the phrase again: top-1 accuracy on its tokens after
the first two the second time (${trials} phrase${trials > 1 ? 's' : ''} each), which the model can only get by copying from the cache. Policies at 4x.

| cache | budget | ${distances.map((d) => `N = ${d}`).join(' | ')} |
|---|---:|${distances.map(() => '---:').join('|')}|
${retrieval.join('\n')}

## One decoding step's attention against context length

One layer's attention for one query (all ${c.heads} heads), f32 cache; KV bytes for all ${c.layers} layers. A compressed cache
reads its budget and room (128 tokens here) whatever the context. Selection policies keep the full cache: a TokenSelect layer
scores every key (reading K, not V), selects 128 and attends to them; a TidalDecode sparse layer attends to the 128 its
selection layer chose (its selection layers cost a full attention plus the scoring).

| context | full: ms | full: KV | compressed: ms | compressed: KV | full / compressed time | TokenSelect layer: ms (speed-up) | TidalDecode sparse layer: ms (speed-up) |
|---|---:|---:|---:|---:|---:|---:|---:|
${timing.join('\n')}
`;
const out = `bench/results/kv-${slug}${only ? `-${arg('name', 'only')}` : ''}`;
writeFileSync(`${out}.md`, markdown);
const points = pointsFromTable(markdown);
if (points.length) writeFileSync(`${out}.svg`, kvPlot(points, `KV-cache compression on ${gpu.adapterDescription}: top-1 agreement against memory saved`));
console.log(`\nwrote ${out}.md${points.length ? ' and .svg' : ''}`);
gpu.destroy();
