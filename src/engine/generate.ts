// Text generation on one session: prefill the prompt in chunks, then decode one token per step,
// sampling on the GPU. Per step only the sampled id (4 bytes) comes back to the CPU: it is needed
// for streaming, stop tokens and stop strings.
import { GpuError } from '../gpu';
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
  /**
   * The caller already ran the prompt (images and all: prefillMultimodal) and the session's last
   * step left its logits: sampling starts from them; `tokens` is empty.
   */
  prefilled?: boolean;
  maxTokens?: number;
  /** Stop when one of these ids is sampled (the model's end-of-generation ids always stop). */
  stopTokens?: number[];
  /** Stop when the text ends with one of these; the stop string is not part of the result. */
  stop?: string[];
  /** Called with each new piece of text as it becomes valid UTF-8. */
  /** Each new piece of text; `drafted` (speculative decoding): the token was a draft the target accepted. */
  onToken?: (piece: string, id: number, drafted?: boolean) => void;
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

/** The prompt's ids, checked against the vocabulary and the session's room; and the token budget. */
export function checkedPrompt(model: Decoder, tokenizer: Tokenizer, session: Session, request: GenerateRequest): { prompt: number[]; maxTokens: number } {
  const prompt = request.tokens ?? tokenizer.encode(request.prompt ?? '', { addSpecial: true });
  if (request.prefilled && (prompt.length > 0 || session.tokens.length === 0)) throw new GpuError('bad-argument', 'generate: a prefilled request gives no tokens, and the session must hold the prompt');
  if (prompt.length === 0 && !request.prefilled) throw new GpuError('bad-argument', 'generate: empty prompt (give text or at least one token)');
  const vocab = model.config.vocabSize;
  const bad = prompt.find((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
  if (bad !== undefined) throw new GpuError('bad-argument', `generate: token id ${bad} is outside the vocabulary (${vocab})`);
  const maxTokens = request.maxTokens ?? 256;
  if (session.length + prompt.length + maxTokens > session.capacity && !session.canEvict) {
    throw new GpuError('too-large', `generate: ${session.length} cached + ${prompt.length} prompt + ${maxTokens} new tokens exceed the session's context of ${session.capacity}`);
  }
  return { prompt, maxTokens };
}

/**
 * The generated tokens and their text: generation stops at an end-of-generation or stop token and
 * at a stop string (both left out); each new piece of valid UTF-8 is streamed to onToken.
 */
export class GeneratedText {
  readonly tokens: number[] = [];
  text = '';
  stopped = false;
  private readonly decoder: ReturnType<Tokenizer['streamingDecoder']>;
  private readonly stopIds: Set<number>;
  private readonly stops: string[];

  constructor(private readonly tokenizer: Tokenizer, private readonly request: GenerateRequest) {
    this.decoder = tokenizer.streamingDecoder();
    this.stopIds = new Set(request.stopTokens ?? []);
    this.stops = request.stop?.filter((s) => s.length > 0) ?? [];
  }

  /** Adds a sampled token; false when generation stops here. */
  push(id: number): boolean {
    if (this.tokenizer.isEndOfGeneration(id) || this.stopIds.has(id)) return !(this.stopped = true);
    this.tokens.push(id);
    const piece = this.decoder.push(id);
    this.text += piece;
    const stopAt = this.stops.length ? findStop(this.text, this.stops) : -1;
    if (stopAt >= 0) {
      this.text = this.text.slice(0, stopAt);
      return !(this.stopped = true);
    }
    if (piece) this.request.onToken?.(piece, id);
    return true;
  }

  /** Streams what the decoder still holds, unless generation stopped (then the text is final). */
  flush(): void {
    if (this.stopped) return;
    const rest = this.decoder.flush();
    this.text += rest;
    if (rest) this.request.onToken?.(rest, -1);
  }
}

/** Per-request stats: prefill is the time to the first token, decode the time after it. */
export function generationStats(promptTokens: number, generatedTokens: number, start: number, firstTokenAt: number, end: number): GenerationStats {
  const prefillMs = firstTokenAt ? firstTokenAt - start : 0;
  const decodeMs = firstTokenAt ? end - firstTokenAt : 0;
  return {
    promptTokens, generatedTokens, prefillMs, decodeMs,
    prefillTokensPerSecond: prefillMs > 0 ? (promptTokens / prefillMs) * 1000 : 0,
    decodeTokensPerSecond: decodeMs > 0 && generatedTokens > 1 ? ((generatedTokens - 1) / decodeMs) * 1000 : 0,
    timeToFirstTokenMs: prefillMs,
  };
}

/** The temperature when a request gives none (llama.cpp's default). */
export const DEFAULT_TEMPERATURE = 0.8;

export async function generate(model: Decoder, tokenizer: Tokenizer, session: Session, request: GenerateRequest): Promise<GenerateResult> {
  const { prompt, maxTokens } = checkedPrompt(model, tokenizer, session, request);
  const temperature = request.temperature ?? DEFAULT_TEMPERATURE;
  const seed = (request.seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
  const output = new GeneratedText(tokenizer, request);
  // Image rows (IMAGE_TOKEN, negative) are not tokens a repetition penalty could apply to.
  const history = [...session.tokens.filter((id) => id >= 0), ...prompt];

  const start = performance.now();
  // Prefill: the prompt in chunks of the scratch size; logits of the last row only. An abort
  // between chunks leaves the chunks done in the cache, like the tokens of an aborted decode.
  try {
    if (!request.prefilled) await session.prefill(prompt, request.signal);
  } catch (error) {
    if (!(error instanceof AbortError)) throw error;
  }
  const penaltyWindow = request.repeatLastN ?? 64;
  const penalty = request.repetitionPenalty ?? 1;

  let finishReason: GenerateResult['finishReason'] = 'length';
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
    const id = await session.sampleNext({
      temperature, topK: request.topK, topP: request.topP, minP: request.minP, seed, step: (session.tokens.length + step) >>> 0,
      penalty: penaltyTokens ? { tokens: penaltyTokens, count: recent.length, penalty } : undefined,
    });
    penaltyTokens?.destroy();
    if (step === 0) firstTokenAt = performance.now();
    if (!output.push(id)) {
      finishReason = 'stop';
      break;
    }
    history.push(id);
    if (request.signal?.aborted) {
      finishReason = 'abort';
      break;
    }
    if (step + 1 < maxTokens) await session.decode(id);
  }
  output.flush();
  return {
    text: output.text,
    tokens: output.tokens,
    finishReason,
    stats: generationStats(prompt.length, output.tokens.length, start, firstTokenAt, performance.now()),
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
