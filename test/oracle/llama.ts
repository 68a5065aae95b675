// Test-side handle on the llama.cpp oracle (tools/llama-oracle: node-llama-cpp with its CPU
// binary, installed by tools/llama-oracle/install.mjs, outside the runtime's dependencies).

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface LlamaOracle {
  /** Vocabulary size (rows of logits are this long). */
  readonly nVocab: number;
  /** llama.cpp's tokenization; adds BOS when the model says so unless `addBos` overrides. */
  tokenize(text: string, options?: { addBos?: boolean; special?: boolean }): number[];
  detokenize(tokens: readonly number[]): string;
  /** Raw logits after every token: row i predicts token i + 1. F32 KV cache, no flash attention. */
  logits(tokens: readonly number[]): Promise<Float32Array[]>;
  /** Greedy continuation, `count` tokens (fewer if an end-of-generation token comes). */
  greedy(tokens: readonly number[], count: number): Promise<number[]>;
  close(): Promise<void>;
}

const oracleDir = fileURLToPath(new URL('../../tools/llama-oracle', import.meta.url));

/** Why the oracle cannot run here, or undefined when it can. */
export function oracleUnavailable(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `llama.cpp oracle is set up for linux-x64 only (this is ${process.platform}-${process.arch})`;
  if (!existsSync(join(oracleDir, 'node_modules/node-llama-cpp/package.json')) ||
      !existsSync(join(oracleDir, 'node_modules/@node-llama-cpp/linux-x64/package.json'))) {
    return 'llama.cpp oracle is not installed: run `node tools/llama-oracle/install.mjs`';
  }
  return undefined;
}

/** Loads a GGUF file in llama.cpp. */
export async function openLlamaOracle(modelPath: string, options: { contextSize?: number; threads?: number; batchSize?: number } = {}): Promise<LlamaOracle> {
  const why = oracleUnavailable();
  if (why) throw new Error(why);
  const mod = await import(/* @vite-ignore */ pathToFileURL(join(oracleDir, 'index.mjs')).href) as {
    openOracle(path: string, options: { contextSize?: number; threads?: number; batchSize?: number }): Promise<LlamaOracle>;
  };
  return mod.openOracle(modelPath, options);
}

/** Writes GGUF bytes to a temporary file (llama.cpp loads from a path) and opens it. */
export async function openLlamaOracleOnBytes(gguf: Uint8Array, options: { contextSize?: number; threads?: number; batchSize?: number } = {}): Promise<LlamaOracle> {
  const dir = mkdtempSync(join(tmpdir(), 'tokenwise-oracle-'));
  const path = join(dir, 'model.gguf');
  writeFileSync(path, gguf);
  try {
    // Loaded into memory (no mmap), so the file can go at once.
    return await openLlamaOracle(path, options);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
