// llama.cpp as a correctness oracle, through node-llama-cpp and its prebuilt linux-x64 CPU binary.
// Nothing is downloaded or built at run time: `build: "never"`, `gpu: false`. Contexts use an F32
// KV cache and no flash attention, so logits are as close to exact f32 math as llama.cpp gets.
//
//   const oracle = await openOracle('/tmp/model.gguf');
//   oracle.tokenize('hello world', { addBos: true })  -> number[]
//   await oracle.logits([1, 300, 301])                 -> Float32Array[] (one row of nVocab per position)
//   await oracle.greedy([1, 300], 8)                    -> number[] (the continuation)
//   await oracle.close()

import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

let llamaPromise = null;

/** The shared Llama instance: CPU only, the prebuilt binary, never a build or a download. */
export function llama() {
  llamaPromise ??= getLlama({
    gpu: false,
    build: 'never',
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
    maxThreads: 2,
  });
  return llamaPromise;
}

/**
 * Loads a GGUF file. `contextSize` defaults to the model's context length (at most 4096);
 * `threads` defaults to 2; `batchSize` (tokens per llama_decode call) to the context size.
 */
export async function openOracle(modelPath, { contextSize, threads = 2, batchSize } = {}) {
  const l = await llama();
  const model = await l.loadModel({
    modelPath,
    gpuLayers: 0,
    useMmap: false,
    defaultContextFlashAttention: false,
  });
  const size = contextSize ?? Math.min(model.trainContextSize, 4096);
  const contextOptions = {
    contextSize: size,
    batchSize: batchSize ?? size,
    sequences: 1,
    threads: { ideal: threads, min: 1 },
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
    ignoreMemorySafetyChecks: true,
  };

  /** A fresh context per call keeps calls independent (no KV reuse between them). */
  async function withSequence(fn) {
    const context = await model.createContext(contextOptions);
    try {
      return await fn(context.getSequence());
    } finally {
      await context.dispose();
    }
  }

  return {
    model,
    /** Vocabulary size llama.cpp reports. */
    get nVocab() { return vocabSize(model); },
    /** llama.cpp's tokenization; `addBos` follows the model's add_bos setting when not given. */
    tokenize(text, { addBos, special = false } = {}) {
      const tokens = [...model.tokenize(text, special)];
      const bos = model.tokens.bos;
      const wantBos = addBos ?? model.tokens.shouldPrependBosToken;
      if (wantBos && bos != null && tokens[0] !== bos) tokens.unshift(bos);
      return tokens.map(Number);
    },
    detokenize(tokens) {
      return model.detokenize(tokens);
    },
    /** Raw logits after every token of `tokens`: rows[i] predicts tokens[i + 1]. */
    async logits(tokens) {
      const n = vocabSize(model);
      return withSequence(async (seq) => {
        const out = await seq.controlledEvaluate(tokens.map((t) => [t, { generateNext: { logits: true } }]));
        return out.map((item, i) => {
          const map = item?.next?.logits;
          if (!map) throw new Error(`llama.cpp returned no logits for position ${i}`);
          const row = new Float32Array(n);
          for (const [tok, v] of map) row[tok] = v;
          return row;
        });
      });
    },
    /** Greedy (argmax) continuation of `tokens`, `count` tokens long (stops early at end of generation). */
    async greedy(tokens, count) {
      return withSequence(async (seq) => {
        const out = [];
        for await (const t of seq.evaluate(tokens, { temperature: 0, yieldEogToken: true })) {
          out.push(Number(t));
          if (out.length >= count || model.isEogToken(t)) break;
        }
        return out;
      });
    },
    async close() {
      await model.dispose();
    },
  };
}

function vocabSize(model) {
  // node-llama-cpp exposes the vocabulary through tokenizer helpers; the number of tokens is the
  // length of tokenizer.ggml.tokens in the file's metadata.
  const tokens = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens;
  if (Array.isArray(tokens)) return tokens.length;
  throw new Error('cannot tell the vocabulary size of this model');
}
