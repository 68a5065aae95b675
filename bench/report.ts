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
  /** Repetitions per timed pass. */
  repeats: number;
  /** 'timestamp' or 'wall' (where the adapter's timestamps read zero). */
  source: string;
  /** Set when the case could not run here; the other figures are then NaN. */
  error?: string;
}

export interface BenchReport {
  adapter: string;
  runtime: string;
  features: string;
  copyGBps: number;
  fmaGflops: number;
  timing: string;
  /** Wall seconds for the whole run, setup included. */
  seconds: number;
  quick: boolean;
  rows: BenchRow[];
}

export interface RunOptions {
  quick: boolean;
  onRow?: (row: BenchRow) => void;
}

export async function runSuite(gpu: Gpu, cases: BenchCase[], runtime: string, { quick, onRow }: RunOptions): Promise<BenchReport> {
  const started = performance.now();
  // Quick runs (software adapters) take fewer and shorter samples.
  const samples = quick ? 3 : 5;
  const targetMs = quick ? 10 : 25;
  const roof = await measureRoofline(gpu, { samples });
  const rows: BenchRow[] = [];
  const sources = new Set<string>();
  for (const benchCase of cases) {
    let row: BenchRow;
    try {
      const prepared = await benchCase.prepare(gpu);
      try {
        const t = await timeGpu(gpu, prepared.record, { repeats: benchCase.repeats, samples, targetMs });
        sources.add(t.source);
        const gbps = benchCase.bytes / (t.ms * 1e6);
        const gflops = benchCase.flops / (t.ms * 1e6);
        row = { name: benchCase.name, ms: t.ms, gbps, gflops, ofCopy: gbps / roof.copyGBps, ofFma: gflops / roof.fmaGflops, repeats: t.repeats, source: t.source };
      } finally {
        prepared.dispose?.();
      }
    } catch (error) {
      row = { name: benchCase.name, ms: NaN, gbps: NaN, gflops: NaN, ofCopy: NaN, ofFma: NaN, repeats: 0, source: '', error: error instanceof Error ? error.message : String(error) };
    }
    rows.push(row);
    onRow?.(row);
  }
  const features = Object.entries(gpu.features).filter(([, on]) => on).map(([name]) => name).join(', ') || 'none';
  return {
    adapter: gpu.adapterDescription, runtime, features, copyGBps: roof.copyGBps, fmaGflops: roof.fmaGflops,
    timing: [...sources].join(' and ') || '-', seconds: (performance.now() - started) / 1000, quick, rows,
  };
}

export function formatRow(r: BenchRow): string {
  return r.error ? `${r.name}: FAILED ${r.error}` : `${r.name}: ${r.ms.toFixed(4)} ms, ${r.gbps.toFixed(2)} GB/s, ${r.gflops.toFixed(2)} GFLOP/s (x${r.repeats})`;
}

export function formatReport(report: BenchReport): string {
  const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : '-');
  const failed = report.rows.filter((r) => r.error);
  // Where timestamps and wall time are mixed, say which rows are wall time.
  const mixed = new Set(report.rows.filter((r) => !r.error).map((r) => r.source)).size > 1;
  const ms = (r: BenchRow) => `${fixed(r.ms, 4)}${mixed && r.source === 'wall' ? ' (wall)' : ''}`;
  const lines = [
    `### ${report.runtime} — ${report.adapter}`,
    '',
    `Features: ${report.features}. Timing: ${report.timing}. Copy bandwidth ${fixed(report.copyGBps, 2)} GB/s, FMA ${fixed(report.fmaGflops, 2)} GFLOP/s (both measured in this run). ${report.rows.length} cases${report.quick ? ' (quick)' : ''} in ${fixed(report.seconds, 0)} s.`,
    '',
    '| kernel | ms | GB/s | GFLOP/s | of copy BW | of FMA |',
    '|---|---:|---:|---:|---:|---:|',
    ...report.rows.map((r) =>
      r.error ? `| ${r.name} | failed | | | | |` : `| ${r.name} | ${ms(r)} | ${fixed(r.gbps, 2)} | ${fixed(r.gflops, 2)} | ${fixed(r.ofCopy * 100, 1)}% | ${fixed(r.ofFma * 100, 1)}% |`,
    ),
    ...(failed.length ? ['', 'Failed:', ...failed.map((r) => `- ${r.name}: ${r.error}`)] : []),
  ];
  return lines.join('\n');
}
