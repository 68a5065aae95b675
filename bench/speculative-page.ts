// Browser speculative-decoding benchmark page: the same runs as bench/speculative.ts in Node, with
// the engine in its Web Worker as an app would use it, the models fetched from the dev server.
// Query: ?tokens=<n>&model=<path>&draft=<path>[&big][&sweep].
import { createEngine } from '../src/engine/engine';
import type { ModelInfo } from '../src/engine/engine-core';
import { type SpeculativeBenchReport, benchConfigs, runSpeculativeBench, sweepConfigs } from './speculative-run';

declare global {
  interface Window {
    speculativeBench?: SpeculativeBenchReport & { info: ModelInfo; runtime: string };
    speculativeBenchError?: string;
  }
}

const log = document.getElementById('log')!;
const engine = createEngine();
try {
  const query = new URLSearchParams(location.search);
  const at = (path: string) => new URL(`/${path}`, location.href).href;
  const info = await engine.load(at(query.get('model')!), { prefillChunk: 64, cache: 'none' });
  await engine.loadDraft(at(query.get('draft')!), { cache: 'none' });
  const runtime = `Chromium ${navigator.userAgent.match(/Chrom(?:e|ium)\/([\d.]+)/)?.[1] ?? ''}, the engine in a Web Worker`;
  const configs = (query.has('sweep') ? sweepConfigs : benchConfigs)(query.has('big'));
  const report = await runSpeculativeBench(engine, Number(query.get('tokens')), configs, (row) => {
    log.textContent += `\n${row}`;
    console.log(`bench: ${row}`);
  });
  window.speculativeBench = { ...report, info, runtime };
} catch (error) {
  log.textContent += `\n${String(error)}`;
  window.speculativeBenchError = String(error);
} finally {
  await engine.dispose();
}
