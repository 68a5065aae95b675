// Our runtime on one benchmark GGUF, the same in Node (Dawn) and in a page: load, warm up (every
// kernel compiled), then generate() on a fresh session and read its stats. Prefill = time to the
// first token (the prompt in 64-token chunks, then one sample); decode = tokens after the first
// over the time after it (one forward, one GPU sample and a 4-byte read-back per token). Wall time,
// as a user sees it.
import { generate } from '../src/engine/generate';
import { Session } from '../src/engine/session';
import type { ByteSource } from '../src/formats/byte-source';
import { readGGUF } from '../src/formats/gguf-reader';
import type { Gpu } from '../src/gpu';
import { Decoder } from '../src/models/decoder';
import { Tokenizer } from '../src/tokenizer';
import { type BenchWeightType, type ModelBenchPlan, type ModelCost, modelCost } from './model-plan';
import { measureRoofline } from './roofline';

export interface ModelRunResult {
  type: BenchWeightType;
  cost: ModelCost;
  loadSeconds: number;
  warmupSeconds: number;
  promptTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** Set when this weight type could not run; the figures are then NaN. */
  error?: string;
}

export interface ModelRunReport {
  adapter: string;
  runtime: string;
  features: string;
  copyGBps: number;
  fmaGflops: number;
  results: ModelRunResult[];
  seconds: number;
}

export async function measureModel(gpu: Gpu, type: BenchWeightType, source: ByteSource, plan: ModelBenchPlan): Promise<ModelRunResult> {
  const file = await readGGUF(source);
  const cost = modelCost(file);
  const loadStart = performance.now();
  const decoder = await Decoder.load(gpu, file);
  await gpu.device.queue.onSubmittedWorkDone();
  const loadSeconds = (performance.now() - loadStart) / 1000;
  try {
    const tokenizer = Tokenizer.fromGGUFMetadata(file);
    const run = async (tokens: number[], maxTokens: number) => {
      const session = new Session(gpu, decoder, { contextLength: plan.contextLength });
      try {
        return await generate(decoder, tokenizer, session, { tokens, maxTokens, temperature: 0 });
      } finally {
        session.destroy();
      }
    };
    const warmStart = performance.now();
    await run(plan.warmupPrompt, 3);
    const warmupSeconds = (performance.now() - warmStart) / 1000;
    const { stats } = await run(plan.prompt, plan.decodeTokens);
    return {
      type, cost, loadSeconds, warmupSeconds,
      promptTokens: stats.promptTokens, generatedTokens: stats.generatedTokens, prefillMs: stats.prefillMs, decodeMs: stats.decodeMs,
      prefillTokensPerSecond: stats.prefillTokensPerSecond, decodeTokensPerSecond: stats.decodeTokensPerSecond,
    };
  } finally {
    decoder.destroy();
  }
}

/** The adapter's copy bandwidth and FMA throughput, then each weight type. */
export async function runModelBench(
  gpu: Gpu, runtime: string, plan: ModelBenchPlan, types: BenchWeightType[],
  sourceOf: (type: BenchWeightType) => Promise<ByteSource>, log: (line: string) => void,
): Promise<ModelRunReport> {
  const started = performance.now();
  const roof = await measureRoofline(gpu, { samples: plan.quick ? 3 : 5 });
  log(`${runtime}: copy ${roof.copyGBps.toFixed(2)} GB/s, FMA ${roof.fmaGflops.toFixed(2)} GFLOP/s`);
  const results: ModelRunResult[] = [];
  for (const type of types) {
    let result: ModelRunResult;
    try {
      result = await measureModel(gpu, type, await sourceOf(type), plan);
      log(`${runtime} ${type}: load ${result.loadSeconds.toFixed(1)} s, warm-up ${result.warmupSeconds.toFixed(1)} s, prefill ${result.prefillTokensPerSecond.toFixed(2)} tok/s, decode ${result.decodeTokensPerSecond.toFixed(2)} tok/s`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`${runtime} ${type}: FAILED ${message}`);
      result = {
        type, cost: { weightBytes: NaN, layerParams: NaN, headParams: NaN, layers: NaN, heads: NaN, headDim: NaN }, loadSeconds: NaN, warmupSeconds: NaN,
        promptTokens: plan.prompt.length, generatedTokens: 0, prefillMs: NaN, decodeMs: NaN, prefillTokensPerSecond: NaN, decodeTokensPerSecond: NaN, error: message,
      };
    }
    results.push(result);
  }
  const features = Object.entries(gpu.features).filter(([, on]) => on).map(([name]) => name).join(', ') || 'none';
  return { adapter: gpu.adapterDescription, runtime, features, copyGBps: roof.copyGBps, fmaGflops: roof.fmaGflops, results, seconds: (performance.now() - started) / 1000 };
}
