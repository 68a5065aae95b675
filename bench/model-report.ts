// The model benchmark's table: our runtimes next to llama.cpp and next to the adapter's roofline.
// `npm run bench:model` calls this with the JSON each part wrote:
//   npx tsx bench/model-report.ts --llama=<json> --out-dir=<dir> --command=<text> [--quick] <runtime.json>...
import { readFileSync, writeFileSync } from 'node:fs';
import type { LlamaCppReport } from './model-llama';
import { benchPlan, rooflines } from './model-plan';
import type { ModelRunReport } from './model-run';

const MiB = 2 ** 20;
const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : '-');
/** Ratios span orders of magnitude on a software adapter: keep two significant digits. */
const percent = (x: number) => (Number.isFinite(x) ? `${x >= 0.1 ? (x * 100).toFixed(0) : (x * 100).toPrecision(2)}%` : '-');
const rate = (x: number) => (!Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toPrecision(2));

/** Vendor and architecture name the adapter ("google swiftshader", "nvidia hopper"), as in tools/bench.mjs. */
export function adapterSlug(adapter: string): string {
  return adapter.split(' ').slice(0, 2).join(' ').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'adapter';
}

export function formatModelReport(reports: ModelRunReport[], llama: LlamaCppReport | undefined, options: { quick: boolean; command: string; seconds: number; machine?: string }): string {
  const plan = benchPlan(options.quick);
  const promptTokens = plan.prompt.length;
  const types = [...new Set(reports.flatMap((r) => r.results.map((x) => x.type)))];
  const sizes = types.map((type) => {
    const bytes = reports.flatMap((r) => r.results).find((x) => x.type === type && Number.isFinite(x.cost.weightBytes))?.cost.weightBytes;
    return `${type} ${bytes ? (bytes / MiB).toFixed(1) : '?'} MiB`;
  });
  const llamaOf = (type: string) => llama?.results.find((x) => x.type === type);
  // Runtimes name one adapter differently (Dawn adds the driver): vendor and architecture here,
  // the full names per runtime below.
  const adapter = reports[0]?.adapter.split(' ').slice(0, 2).join(' ') ?? 'no adapter';

  const lines = [
    `# Model benchmark: SmolLM2-135M shapes on ${adapter}`,
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} with \`${options.command}\` (${Math.round(options.seconds)} s in all). See the README's "Benchmark" section.`,
    '',
    `Model: a seeded GGUF with SmolLM2-135M's shapes (hidden 576, 30 layers, 9 heads / 3 KV heads of 64, FFN 1536, vocabulary 49152, tied embeddings, RoPE base 100000), every matrix (the embedding, which is also the output head, included) in the named type, norms F32: ${sizes.join(', ')}. ` +
      `Work: a ${promptTokens}-token prompt, then ${plan.decodeTokens} greedy tokens, after a warm-up run. Prefill = prompt tokens / time to the first token; decode = tokens after the first / time after the first token (one forward, one sample per token). Wall time, as a user sees it.`,
    '',
    ...reports.map((r) => `- **${r.runtime}**: ${r.adapter}; features: ${r.features}. Copy bandwidth ${fixed(r.copyGBps, 2)} GB/s, FMA ${fixed(r.fmaGflops, 2)} GFLOP/s (bench/roofline.ts, same run). Our session: f32 KV cache, 64-token prefill chunks.`),
    ...(llama ? [`- **${llama.runtime}**: ${llama.settings}.`] : ['- llama.cpp: not run.']),
    ...(options.machine ? [`- Machine: ${options.machine}.`] : []),
    '',
  ];

  const rows = (phase: 'decode' | 'prefill') => {
    const out: string[] = [];
    for (const type of types) {
      const peer = llamaOf(type);
      const peerRate = phase === 'decode' ? peer?.decodeTokensPerSecond : peer?.prefillTokensPerSecond;
      for (const r of reports) {
        const x = r.results.find((y) => y.type === type);
        if (!x) continue;
        const ours = phase === 'decode' ? x.decodeTokensPerSecond : x.prefillTokensPerSecond;
        if (x.error) {
          out.push(`| ${r.runtime} | ${type} | FAILED: ${x.error.replaceAll('|', '\\|').slice(0, 200)} | | | | |`);
          continue;
        }
        const roof = rooflines(x.cost, r.copyGBps, r.fmaGflops, x.promptTokens);
        if (phase === 'decode') {
          out.push(`| ${r.runtime} | ${type} | ${rate(ours)} | ${fixed(1000 / ours, 1)} | ${peerRate ? percent(ours / peerRate) : '-'} | ${rate(roof.decodeTokensPerSecond)} | ${percent(ours / roof.decodeTokensPerSecond)} |`);
        } else {
          out.push(`| ${r.runtime} | ${type} | ${rate(ours)} | ${peerRate ? percent(ours / peerRate) : '-'} | ${rate(roof.prefillTokensPerSecond)} (${roof.prefillBound}) | ${percent(ours / roof.prefillTokensPerSecond)} | ${fixed(x.warmupSeconds, 1)} |`);
        }
      }
      if (peer) {
        const range = ([lo, hi]: [number, number]) => (lo && hi ? ` (${rate(lo)}-${rate(hi)})` : '');
        out.push(phase === 'decode'
          ? `| llama.cpp CPU, ${llama!.threads} threads | ${type} | ${rate(peer.decodeTokensPerSecond)}${range(peer.decodeRange)} | ${fixed(1000 / peer.decodeTokensPerSecond, 1)} | 100% | - | - |`
          : `| llama.cpp CPU, ${llama!.threads} threads | ${type} | ${rate(peer.prefillTokensPerSecond)}${range(peer.prefillRange)} | 100% | - | - | - |`);
      }
    }
    return out;
  };

  lines.push(
    `### Decode (${plan.decodeTokens} tokens after a ${promptTokens}-token prompt)`,
    '',
    '| runtime | weights | tok/s | ms/token | of llama.cpp | roofline tok/s | of roofline |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows('decode'),
    '',
    'Decode roofline: copy bandwidth / weight bytes per token (every weight byte is read once per token; KV-cache reads are left out). llama.cpp: the median of its runs, slowest-fastest in brackets.',
    '',
    `### Prefill (${promptTokens}-token prompt)`,
    '',
    '| runtime | weights | tok/s | of llama.cpp | roofline tok/s | of roofline | warm-up s |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows('prefill'),
    '',
    `Prefill roofline: the lower of FMA throughput / flops per token (matmuls, causal attention, the output head once per prompt) and copy bandwidth / weight bytes per 64-token chunk. Warm-up: the first run (${plan.warmupPrompt.length}-token prompt, 3 tokens), mostly pipeline compilation.`,
  );
  return `${lines.join('\n')}\n`;
}

if (process.argv[1]?.endsWith('model-report.ts')) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const quick = process.argv.includes('--quick');
  const reports = process.argv.slice(2).filter((a) => !a.startsWith('--')).map((path) => JSON.parse(readFileSync(path, 'utf8')) as ModelRunReport);
  const llamaPath = arg('llama');
  const llama = llamaPath ? (JSON.parse(readFileSync(llamaPath, 'utf8')) as LlamaCppReport) : undefined;
  const seconds = Number(arg('seconds') ?? NaN);
  const outDir = arg('out-dir') ?? 'bench/results';
  const bySlug = new Map<string, ModelRunReport[]>();
  for (const r of reports) bySlug.set(adapterSlug(r.adapter), [...(bySlug.get(adapterSlug(r.adapter)) ?? []), r]);
  const written: string[] = [];
  for (const [slug, group] of bySlug) {
    const table = formatModelReport(group, llama, { quick, command: arg('command') ?? 'npm run bench:model', seconds, machine: arg('machine') });
    const file = `${outDir}/model-${slug}${quick ? '-quick' : ''}.md`;
    writeFileSync(file, table);
    console.log(table);
    written.push(file);
  }
  console.log(`written to ${written.join(', ')}`);
}
