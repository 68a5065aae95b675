// Browser model benchmark page: the same runs as bench/model-node.ts in the page's own WebGPU, the
// GGUFs fetched over HTTP (Range requests) from bench/results/tmp/, where model-node.ts wrote them.
// Query: ?quick.
import { urlSource } from '../src/formats/byte-source';
import { requestGpu } from '../src/gpu';
import { benchPlan, benchWeightTypes, modelFileName } from './model-plan';
import { type ModelRunReport, runModelBench } from './model-run';

declare global {
  interface Window {
    modelBenchReport?: ModelRunReport;
    modelBenchError?: string;
  }
}

const log = document.getElementById('log')!;
try {
  const plan = benchPlan(new URLSearchParams(location.search).has('quick'));
  const gpu = await requestGpu();
  const runtime = `Chromium ${navigator.userAgent.match(/Chrom(?:e|ium)\/([\d.]+)/)?.[1] ?? ''}`;
  const report = await runModelBench(gpu, runtime, plan, benchWeightTypes, (type) => urlSource(new URL(`./results/tmp/${modelFileName(type)}`, location.href).href), (line) => {
    log.textContent += `\n${line}`;
    console.log(`bench: ${line}`);
  });
  window.modelBenchReport = report;
  gpu.destroy();
} catch (error) {
  log.textContent += `\n${String(error)}`;
  window.modelBenchError = String(error);
}
