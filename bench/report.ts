// Runs the suite and formats the table: per kernel, GPU time, GB/s, GFLOP/s, and their ratios to
// the copy bandwidth and FMA throughput measured in the same run.
import type { Gpu } from '../src/gpu';
import { measureRoofline } from './roofline';
import type { BenchCase } from './suite';
import { timeGpu } from './timing';

export interface BenchRow {
  name: string;
  ms: number;
  gbps: number;
  gflops: number;
  ofCopy: number;
  ofFma: number;
}

export interface BenchReport {
  adapter: string;
  runtime: string;
  features: string;
  copyGBps: number;
  fmaGflops: number;
  timing: string;
  rows: BenchRow[];
}

export async function runSuite(gpu: Gpu, cases: BenchCase[], runtime: string, onRow?: (row: BenchRow) => void): Promise<BenchReport> {
  const roof = await measureRoofline(gpu);
  const rows: BenchRow[] = [];
  let timing = '';
  for (const benchCase of cases) {
    const prepared = await benchCase.prepare(gpu);
    const t = await timeGpu(gpu, prepared.record, { repeats: benchCase.repeats ?? 10 });
    timing = t.source;
    prepared.dispose?.();
    const gbps = benchCase.bytes / (t.ms * 1e6);
    const gflops = benchCase.flops / (t.ms * 1e6);
    const row = { name: benchCase.name, ms: t.ms, gbps, gflops, ofCopy: gbps / roof.copyGBps, ofFma: gflops / roof.fmaGflops };
    rows.push(row);
    onRow?.(row);
  }
  const features = Object.entries(gpu.features).filter(([, on]) => on).map(([name]) => name).join(', ') || 'none';
  return { adapter: gpu.adapterDescription, runtime, features, copyGBps: roof.copyGBps, fmaGflops: roof.fmaGflops, timing, rows };
}

export function formatReport(report: BenchReport): string {
  const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : '-');
  const lines = [
    `### ${report.runtime} — ${report.adapter}`,
    '',
    `Features: ${report.features}. Timing: ${report.timing}. Copy bandwidth ${fixed(report.copyGBps, 2)} GB/s, FMA ${fixed(report.fmaGflops, 2)} GFLOP/s (both measured in this run).`,
    '',
    '| kernel | ms | GB/s | GFLOP/s | of copy BW | of FMA |',
    '|---|---:|---:|---:|---:|---:|',
    ...report.rows.map((r) => `| ${r.name} | ${fixed(r.ms, 4)} | ${fixed(r.gbps, 2)} | ${fixed(r.gflops, 2)} | ${fixed(r.ofCopy * 100, 1)}% | ${fixed(r.ofFma * 100, 1)}% |`),
  ];
  return lines.join('\n');
}
