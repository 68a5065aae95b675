// Text generation on one session: prefill the prompt in chunks, then decode one token per step,
// sampling on the GPU. Per step only the sampled id (4 bytes) comes back to the CPU: it is needed
// for streaming, stop tokens and stop strings.
import { type Gpu, GpuError } from '../gpu';
import { sample } from '../kernels/sampling';
import type { Decoder } from '../models/decoder';
import type { Tokenizer } from '../tokenizer';
import type { Session } from './session';

export interface SamplingParams {
  /** 0 = greedy. Default 0.8. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  /** llama.cpp-style repetition penalty over the last `repeatLastN` tokens; 1 = off. */
  repetitionPenalty?: number;
  repeatLastN?: number;
  /** Same seed and inputs, same output. Default: random. */
  seed?: number;
}

export interface GenerateRequest extends SamplingParams {
  /** Text to tokenize (with BOS as the model wants), or token ids as they are. */
  prompt?: string;
  tokens?: number[];
  maxTokens?: number;
  /** Stop when one of these ids is sampled (the model's end-of-generation ids always stop). */
  stopTokens?: number[];
  /** Stop when the text ends with one of these; the stop string is not part of the result. */
  stop?: string[];
  /** Called with each new piece of text as it becomes valid UTF-8. */
  onToken?: (piece: string, id: number) => void;
  signal?: AbortSignal;
}

export interface GenerationStats {
  promptTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  timeToFirstTokenMs: number;
}

export interface GenerateResult {
  text: string;
  tokens: number[];
  finishReason: 'stop' | 'length' | 'abort';
  stats: GenerationStats;
}

export class AbortError extends Error {
  readonly kind = 'aborted';
  constructor() {
    super('generation aborted');
    this.name = 'AbortError';
  }
}

export async function generate(gpu: Gpu, model: Decoder, tokenizer: Tokenizer, session: Session, request: GenerateRequest): Promise<GenerateResult> {
  const prompt = request.tokens ?? tokenizer.encode(request.prompt ?? '', { addSpecial: true });
  if (prompt.length === 0) throw new GpuError('bad-argument', 'generate: empty prompt (give text or at least one token)');
  const vocab = model.config.vocabSize;
  const bad = prompt.find((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
  if (bad !== undefined) throw new GpuError('bad-argument', `generate: token id ${bad} is outside the vocabulary (${vocab})`);
  const maxTokens = request.maxTokens ?? 256;
  if (session.length + prompt.length + maxTokens > session.capacity && !session.canEvict) {
    throw new GpuError('too-large', `generate: ${session.length} cached + ${prompt.length} prompt + ${maxTokens} new tokens exceed the session's context of ${session.capacity}`);
  }
  const temperature = request.temperature ?? 0.8;
  const seed = (request.seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
  const stopIds = new Set(request.stopTokens ?? []);
  const stops = request.stop?.filter((s) => s.length > 0) ?? [];
  const decoder = tokenizer.streamingDecoder();
  const history = [...session.tokens, ...prompt];

  const start = performance.now();
  // Prefill: the prompt in chunks of the scratch size; logits of the last row only. An abort
  // between chunks leaves the chunks done in the cache, like the tokens of an aborted decode.
  try {
    await session.prefill(prompt, request.signal);
  } catch (error) {
    if (!(error instanceof AbortError)) throw error;
  }
  const tokenBuffer = session.sampledToken;
  const penaltyWindow = request.repeatLastN ?? 64;
  const penalty = request.repetitionPenalty ?? 1;

  const out: number[] = [];
  let text = '';
  let finishReason: GenerateResult['finishReason'] = 'length';
  let prefillMs = 0;
  let firstTokenAt = 0;
  for (let step = 0; step < maxTokens; step++) {
    if (request.signal?.aborted) {
      finishReason = 'abort';
      break;
    }
    // Sample from the logits of the last forward, then run the next forward on that token:
    // one submission per step, and only the id is read back.
    const recent = history.slice(-penaltyWindow);
    const penaltyTokens = penalty !== 1 && recent.length ? session.upload(new Uint32Array(recent)) : null;
    await gpu.run((pass) => {
      sample(gpu, pass, {
        logits: session.scratch.logits, tokens: tokenBuffer, rows: 1, vocab,
        temperature, topK: request.topK, topP: request.topP, minP: request.minP, seed, step: (session.length + step) >>> 0,
        penalty: penaltyTokens ? { tokens: penaltyTokens, count: recent.length, penalty } : undefined,
      });
    }, 'sample');
    const id = (await gpu.readU32(tokenBuffer, 1))[0];
    penaltyTokens?.destroy();
    if (step === 0) {
      firstTokenAt = performance.now();
      prefillMs = firstTokenAt - start;
    }
    if (tokenizer.isEndOfGeneration(id) || stopIds.has(id)) {
      finishReason = 'stop';
      break;
    }
    out.push(id);
    history.push(id);
    const piece = decoder.push(id);
    text += piece;
    const stopAt = stops.length ? findStop(text, stops) : -1;
    if (stopAt >= 0) {
      text = text.slice(0, stopAt);
      finishReason = 'stop';
      break;
    }
    if (piece) request.onToken?.(piece, id);
    if (request.signal?.aborted) {
      finishReason = 'abort';
      break;
    }
    if (step + 1 < maxTokens) await session.decode(id);
  }
  if (finishReason !== 'stop') {
    const rest = decoder.flush();
    text += rest;
    if (rest) request.onToken?.(rest, -1);
  }
  const end = performance.now();
  const decodeMs = firstTokenAt ? end - firstTokenAt : 0;
  return {
    text,
    tokens: out,
    finishReason,
    stats: {
      promptTokens: prompt.length,
      generatedTokens: out.length,
      prefillMs,
      decodeMs,
      prefillTokensPerSecond: prefillMs > 0 ? (prompt.length / prefillMs) * 1000 : 0,
      decodeTokensPerSecond: decodeMs > 0 && out.length > 1 ? ((out.length - 1) / decodeMs) * 1000 : 0,
      timeToFirstTokenMs: firstTokenAt ? firstTokenAt - start : 0,
    },
  };
}

/** Index where the earliest stop string occurs in `text`, or -1. */
export function findStop(text: string, stops: string[]): number {
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}
