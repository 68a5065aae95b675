// Browser benchmark page: the same suite as Node, in the page's own WebGPU.
// Query: ?quick, ?only=<regex> (cases whose name matches).
import { requestGpu } from '../src/gpu';
import { type BenchReport, formatReport, formatRow, runSuite } from './report';
import { benchCases, selectCases } from './suite';

declare global {
  interface Window {
    benchReport?: BenchReport;
    benchError?: string;
  }
}

const log = document.getElementById('log')!;
try {
  const query = new URLSearchParams(location.search);
  const quick = query.has('quick');
  const cases = selectCases(benchCases({ quick }), query.get('only') ?? undefined);
  const gpu = await requestGpu();
  const runtime = `Chromium ${navigator.userAgent.match(/Chrom(?:e|ium)\/([\d.]+)/)?.[1] ?? ''}`;
  const report = await runSuite(gpu, cases, runtime, {
    quick,
    onRow: (row) => {
      log.textContent += `\n${formatRow(row)}`;
      console.log(`bench: ${formatRow(row)}`);
    },
  });
  log.textContent = formatReport(report);
  window.benchReport = report;
} catch (error) {
  log.textContent = String(error);
  window.benchError = String(error);
}
