// Browser benchmark page: the same suite as Node, in the page's own WebGPU.
import { requestGpu } from '../src/gpu';
import { type BenchReport, formatReport, runSuite } from './report';
import { benchCases } from './suite';

declare global {
  interface Window {
    benchReport?: BenchReport;
    benchError?: string;
  }
}

const log = document.getElementById('log')!;
try {
  const quick = new URLSearchParams(location.search).has('quick');
  const gpu = await requestGpu();
  const report = await runSuite(gpu, benchCases({ quick }), `Chromium ${navigator.userAgent.match(/Chrom(?:e|ium)\/([\d.]+)/)?.[1] ?? ''}`, (row) => {
    log.textContent += `\n${row.name}: ${row.ms.toFixed(4)} ms`;
  });
  log.textContent = formatReport(report);
  window.benchReport = report;
} catch (error) {
  log.textContent = String(error);
  window.benchError = String(error);
}
