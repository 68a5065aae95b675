// Speculative decoding on the trained target model, in Node (Dawn) and in Chromium (the engine in
// its Web Worker): the runs of bench/speculative-run.ts, written to
// bench/results/speculative-<adapter>.md (Node) and speculative-<adapter>-chromium.md, each with a
// bar chart beside it (.svg).
//
//   npx tsx bench/speculative.ts [--tokens=96] [--model=models/target.q8_0.gguf] [--draft=models/draft.q8_0.gguf]
//                                [--big] [--sweep] [--node-only | --chromium-only] [--gpu]
//
// --big   adds Token Recycling's 63-node tree (for real GPUs)
// --sweep runs the sweeps instead (speed against fixed draft sizes beside the sizing's choice, A7;
//         against the thresholds η and τ, A8), written to speculative-sweep-<adapter>.md
// --gpu   Chromium on the machine's GPU and Node on the system's Vulkan driver instead of SwiftShader
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { launchChromium } from './chromium.mjs';
import { createServer } from 'vite';
import { createEngine } from '../src/engine/engine';
import type { ModelInfo } from '../src/engine/engine-core';
import { adapterSlug } from './model-report';
import { benchConfigs, runSpeculativeBench, sizingSummary, speculativeTable, sweepConfigs } from './speculative-run';
import { rowsFromTable, speculativePlot } from './speculative-plot';

const useSwiftShader = !process.argv.includes('--gpu');
if (useSwiftShader) process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const tokens = Number(arg('tokens', '96'));
const modelPath = arg('model', 'models/target.q8_0.gguf');
const draftPath = arg('draft', 'models/draft.q8_0.gguf');
const big = process.argv.includes('--big');
const sweep = process.argv.includes('--sweep');
const configs = sweep ? sweepConfigs(big) : benchConfigs(big);
const command = `npx tsx bench/speculative.ts --tokens=${tokens}${big ? ' --big' : ''}${sweep ? ' --sweep' : ''}${useSwiftShader ? '' : ' --gpu'}`;

function write(info: ModelInfo, runtime: string, report: { rows: string[]; ratios: number[] }, suffix: string) {
  const summary = sweep ? sizingSummary(configs, report.ratios) : undefined;
  const table = speculativeTable({ info, runtime, command, tokens, modelPath, draftPath, rows: report.rows, summary });
  const path = `bench/results/speculative${sweep ? '-sweep' : ''}-${adapterSlug(info.adapter)}${suffix}`;
  writeFileSync(`${path}.md`, table);
  writeFileSync(`${path}.svg`, speculativePlot(rowsFromTable(table), `Speculative decoding on ${info.adapter}, ${runtime.replace(/ .*/, '')}: decode speed against plain decoding`));
  console.log(`\nwrote ${path}.md and .svg`);
}

let lossless = true;
if (!process.argv.includes('--chromium-only')) {
  console.log('Node (Dawn):');
  const engine = createEngine({ worker: false });
  const info = await engine.load(readFileSync(modelPath), { prefillChunk: 64 });
  await engine.loadDraft(readFileSync(draftPath));
  const report = await runSpeculativeBench(engine, tokens, configs, console.log);
  await engine.dispose();
  lossless &&= report.lossless;
  write(info, `Node ${process.version} + Dawn, ${availableParallelism()} CPU cores`, report, '');
}

if (!process.argv.includes('--node-only')) {
  // Vite in this process: nothing is left running if the benchmark fails.
  // No file watching: editing the sources during a long run must not reload the page and restart it.
  const server = await createServer({ logLevel: 'error', server: { host: '127.0.0.1', port: 5181, strictPort: false, hmr: false, watch: { ignored: ['**/*'] } } });
  await server.listen();
  const browser = await launchChromium({ swiftShader: useSwiftShader });
  try {
    const page = await browser.newPage();
    page.on('console', (message) => {
      if (message.text().startsWith('bench: ')) console.log(message.text().slice(7));
    });
    const query = new URLSearchParams({ tokens: String(tokens), model: modelPath, draft: draftPath });
    if (big) query.set('big', '');
    if (sweep) query.set('sweep', '');
    const url = `${server.resolvedUrls!.local[0]}bench/speculative-page.html?${query}`;
    console.log(`Chromium: ${url}`);
    await page.goto(url);
    await page.waitForFunction(() => window.speculativeBench || window.speculativeBenchError, undefined, { timeout: 4 * 60 * 60_000, polling: 1000 });
    const error = await page.evaluate(() => window.speculativeBenchError);
    if (error) throw new Error(`browser speculative bench failed: ${error}`);
    const report = (await page.evaluate(() => window.speculativeBench))!;
    lossless &&= report.lossless;
    write(report.info, `${report.runtime}, ${availableParallelism()} CPU cores`, report, '-chromium');
  } finally {
    await browser.close();
    await server.close();
  }
}
if (!lossless) {
  console.error('a greedy strategy gave different tokens from plain decoding');
  process.exitCode = 1;
}
