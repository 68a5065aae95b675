// llama.cpp on this machine's CPU (node-llama-cpp, the prebuilt CPU binary in tools/llama-oracle)
// on the same GGUF files and prompts as our runtime: prefill and decode tokens/s, wall time, the
// way a user would see them. `npm run bench:model` runs this after Node and Chromium.
//   npx tsx bench/model-llama.ts --out=<file.json> [--quick] [--threads=2]
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { oracleUnavailable } from '../test/oracle/llama';
import { ensureModelFile } from './model-fixture';
import { type ModelBenchPlan, benchPlan, benchWeightTypes } from './model-plan';

/** The part of node-llama-cpp this file uses. */
interface LlamaSequence {
  evaluate(tokens: number[], options: { temperature: number; yieldEogToken: boolean }): AsyncGenerator<number>;
  clearHistory(): Promise<void>;
}
interface LlamaModel {
  createContext(options: Record<string, unknown>): Promise<{ getSequence(): LlamaSequence; dispose(): Promise<void> }>;
  dispose(): Promise<void>;
}
interface Llama {
  loadModel(options: Record<string, unknown>): Promise<LlamaModel>;
  llamaCppRelease: { repo: string; release: string };
}

const LLAMA_RUNS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export interface LlamaCppResult {
  type: string;
  promptTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** Slowest and fastest of the runs, tokens/s. */
  prefillRange: [number, number];
  decodeRange: [number, number];
}

export interface LlamaCppReport {
  runtime: string;
  threads: number;
  settings: string;
  results: LlamaCppResult[];
  seconds: number;
}

/**
 * Prefill = time to the first generated token (the prompt in batches of 512, then one greedy
 * sample); decode = (tokens after the first) / time after the first, as our generate() counts.
 */
async function timeGeneration(sequence: LlamaSequence, prompt: number[], count: number) {
  const start = performance.now();
  let first = 0;
  let n = 0;
  for await (const _ of sequence.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
    if (++n === 1) first = performance.now();
    if (n >= count) break;
  }
  const end = performance.now();
  return { prefillMs: first - start, decodeMs: end - first, generated: n };
}

export async function benchLlamaCpp(plan: ModelBenchPlan, threads: number, log: (line: string) => void): Promise<LlamaCppReport> {
  const started = performance.now();
  const why = oracleUnavailable();
  if (why) throw new Error(why);
  const oracle = await import(/* @vite-ignore */ pathToFileURL(join(import.meta.dirname, '../tools/llama-oracle/index.mjs')).href) as { llama(): Promise<Llama> };
  const llama = await oracle.llama();
  const results: LlamaCppResult[] = [];
  for (const type of benchWeightTypes) {
    const path = await ensureModelFile(type, undefined, log);
    const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    // llama.cpp's defaults otherwise (F16 KV cache, batch 512, flash attention off on CPU here):
    // what a user who picks llama.cpp gets.
    const context = await model.createContext({ contextSize: plan.contextLength, sequences: 1, threads: { ideal: threads, min: threads } });
    try {
      const sequence = context.getSequence();
      await timeGeneration(sequence, plan.warmupPrompt, 2);
      await sequence.clearHistory();
      // A run takes well under a second here, so take several and keep the median of each phase:
      // on a small shared VM, llama.cpp's decode rate varies 2-3x from one run to the next.
      const runs = [];
      for (let i = 0; i < LLAMA_RUNS; i++) {
        runs.push(await timeGeneration(sequence, plan.prompt, plan.decodeTokens));
        await sequence.clearHistory();
      }
      const prefillRates = runs.map((r) => (plan.prompt.length / r.prefillMs) * 1000);
      const decodeRates = runs.map((r) => ((r.generated - 1) / r.decodeMs) * 1000);
      const result: LlamaCppResult = {
        type, promptTokens: plan.prompt.length, generatedTokens: Math.min(...runs.map((r) => r.generated)),
        prefillMs: median(runs.map((r) => r.prefillMs)), decodeMs: median(runs.map((r) => r.decodeMs)),
        prefillTokensPerSecond: median(prefillRates), decodeTokensPerSecond: median(decodeRates),
        prefillRange: [Math.min(...prefillRates), Math.max(...prefillRates)],
        decodeRange: [Math.min(...decodeRates), Math.max(...decodeRates)],
      };
      log(`llama.cpp ${type}: prefill ${result.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${result.decodeTokensPerSecond.toFixed(1)} tok/s`);
      results.push(result);
    } finally {
      await context.dispose();
      await model.dispose();
    }
  }
  const release = llama.llamaCppRelease;
  const version = (JSON.parse(readFileSync(join(import.meta.dirname, '../tools/llama-oracle/node_modules/node-llama-cpp/package.json'), 'utf8')) as { version: string }).version;
  return {
    runtime: `llama.cpp ${release.release} via node-llama-cpp ${version}, CPU: ${cpus()[0]?.model ?? 'unknown'}`,
    threads,
    settings: `${threads} threads, F16 KV cache, batch 512, greedy; median of ${LLAMA_RUNS} runs`,
    results,
    seconds: (performance.now() - started) / 1000,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const plan = benchPlan(process.argv.includes('--quick'));
  const report = await benchLlamaCpp(plan, Number(arg('threads') ?? 2), (line) => console.error(`  ${line}`));
  const out = arg('out');
  if (out) writeFileSync(out, JSON.stringify(report, null, 2));
  else console.log(JSON.stringify(report, null, 2));
}
