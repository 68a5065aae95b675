// The public Engine: the EngineCore's API with what a page wants on top: token streams as async
// iterators, AbortSignal, and an OpenAI-style chat.completions. createEngine() runs the core in a
// Web Worker through Comlink (the default in browsers) or in this thread; both give this interface.
import type { RequestGpuOptions } from '../gpu';
import type { ModelSource } from '../loading/model-files';
import { Comlink, nodeEndpoint, type NodePort } from '../workers/transfer';
import {
  type CompletionRequest, type CompletionResult, EngineCore, type LoadOptions, type LoadProgress, type ModelInfo, type SessionOptions, type SpeculativeRequest,
} from './engine-core';
import { EngineError, toEngineError } from './errors';
import type { ChatInputMessage } from './multimodal';
import type { VisionPruning } from './vision/pruning';

export interface GenerateOptions extends CompletionRequest {
  signal?: AbortSignal;
  /** Called with each piece of text, as the iterator would yield it; `drafted`: with speculative decoding, the piece came from a draft the target accepted. */
  onToken?: (piece: string, drafted?: boolean) => void;
}

/** Text pieces as they are generated; `result` resolves with the whole result and its stats. */
export interface TokenStream extends AsyncIterable<string> {
  readonly result: Promise<CompletionResult>;
}

export interface ChatCompletionRequest {
  /**
   * The conversation. `content` is a string or OpenAI-style content parts: `{ type: 'text', text }`,
   * `{ type: 'image_url', image_url: { url } }` (http(s), relative, data: or blob: URL) and
   * tokenwise's `{ type: 'image', image }` (a Blob, an ImageBitmap or raw pixels { width, height,
   * data }). Images need a model loaded with its mmproj.
   */
  messages: ChatInputMessage[];
  stream?: boolean;
  max_tokens?: number;
  max_completion_tokens?: number;
  /** Default 1, as in OpenAI's API; 0 is greedy. */
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
  seed?: number;
  stop?: string | string[];
  /** Accepted and ignored: an engine serves the model it has loaded. */
  model?: string;
  /** tokenwise: the conversation (createSession) whose KV cache to reuse. */
  session?: string;
  /** tokenwise: vision-token pruning or merging for the request's images; per-image stats come in usage.extra.images. */
  vision?: VisionPruning;
  /** tokenwise: speculative decoding (as in generate()); its stats come in usage.extra.speculative. */
  speculative?: SpeculativeRequest;
  signal?: AbortSignal;
}

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** tokenwise's per-request stats: tokens/s, time to first token, KV bytes, cached prompt tokens, and per image its tokens kept. */
  extra: CompletionResult['stats'];
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{ index: 0; message: { role: 'assistant'; content: string }; finish_reason: 'stop' | 'length' | 'abort'; logprobs: null }>;
  usage: CompletionUsage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{ index: 0; delta: { role?: 'assistant'; content?: string }; finish_reason: 'stop' | 'length' | 'abort' | null; logprobs: null }>;
  /** On the last chunk only. */
  usage?: CompletionUsage;
}

export interface Engine {
  /** True when the engine runs in a Web Worker. */
  readonly inWorker: boolean;
  load(source: ModelSource, options?: LoadOptions & { onProgress?: (progress: LoadProgress) => void }): Promise<ModelInfo>;
  /** A draft model for speculative decoding (`speculative: { strategy: 'draft-model' }`); its vocabulary must be the loaded model's. */
  loadDraft(source: ModelSource, options?: Pick<LoadOptions, 'cache' | 'integrity'> & { onProgress?: (progress: LoadProgress) => void }): Promise<ModelInfo>;
  generate(request: GenerateOptions): TokenStream;
  readonly chat: {
    readonly completions: {
      create(request: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
      create(request: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
      create(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
    };
  };
  createSession(options?: SessionOptions): Promise<string>;
  /** Frees a conversation's KV cache (after what is queued on it). */
  deleteSession(id: string): Promise<void>;
  info(): Promise<ModelInfo | undefined>;
  unload(): Promise<void>;
  /** Frees all GPU memory and, for a worker engine, ends the worker. The engine cannot be used after. */
  dispose(): Promise<void>;
}

/** What the Engine needs from the core: EngineCore itself, or its Comlink proxy. */
type Backend = {
  [K in (typeof METHODS)[number]]:
    (...args: Parameters<EngineCore[K]>) => Promise<Awaited<ReturnType<EngineCore[K]>>>;
};

const METHODS = ['load', 'loadDraft', 'generate', 'abort', 'createSession', 'deleteSession', 'info', 'unload', 'dispose'] as const;

export interface CreateEngineOptions {
  /**
   * Run in a worker (the default: a Web Worker in browsers, a worker thread in Node) or in this
   * thread (false); or a Web Worker you made from src/workers/engine.worker.ts.
   */
  worker?: boolean | Worker;
  /** In-thread only: options for the WebGPU device (a worker engine uses the defaults). */
  gpu?: RequestGpuOptions;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

export function createEngine(options: CreateEngineOptions = {}): Engine {
  const useWorker = options.worker ?? (typeof Worker !== 'undefined' || isNode);
  if (!useWorker) {
    const core = new EngineCore(options.gpu);
    const backend = Object.fromEntries(METHODS.map((name) => [name, async (...args: unknown[]) => (core[name] as (...a: unknown[]) => unknown)(...args)])) as Backend;
    return new EngineClient(backend, false, (fn) => fn, async () => undefined);
  }
  return typeof Worker === 'undefined' && isNode ? connectNodeWorker() : connectWebWorker(options.worker);
}

/** Where a worker's failure is reported: it rejects every call from then on, including those waiting. */
function failureWatch() {
  let failed: EngineError | undefined;
  let fail: (error: EngineError) => void = () => undefined;
  const died = new Promise<never>((_, reject) => {
    fail = (error) => {
      failed ??= error;
      reject(error);
    };
  });
  died.catch(() => undefined);
  return { fail, died, failed: () => failed };
}

/** The Engine over a Comlink endpoint; every call races the worker's failure, so a crash never hangs a caller. */
function workerClient(endpoint: Comlink.Endpoint, watch: ReturnType<typeof failureWatch>, terminate: () => unknown): Engine {
  const remote = Comlink.wrap<EngineCore>(endpoint);
  const backend = Object.fromEntries(METHODS.map((name) => [name, (...args: unknown[]) => {
    const failed = watch.failed();
    if (failed) return Promise.reject(failed);
    return Promise.race([(remote[name] as unknown as (...a: unknown[]) => Promise<unknown>)(...args), watch.died]);
  }])) as Backend;
  return new EngineClient(backend, true, (fn) => Comlink.proxy(fn), async () => {
    watch.fail(new EngineError('bad-request', 'this engine was disposed'));
    remote[Comlink.releaseProxy]();
    await terminate();
  });
}

function connectWebWorker(given: boolean | Worker | undefined): Engine {
  const worker = given instanceof Worker
    ? given
    : new Worker(new URL('../workers/engine.worker.ts', import.meta.url), { type: 'module', name: 'tokenwise-engine' });
  const watch = failureWatch();
  worker.addEventListener('error', (event) => watch.fail(new EngineError('internal', `the engine worker failed: ${(event as ErrorEvent).message || 'it could not start (check that its script is served)'}`)));
  worker.addEventListener('messageerror', () => watch.fail(new EngineError('internal', 'a message from the engine worker could not be read')));
  return workerClient(worker, watch, () => worker.terminate());
}

/** The Node side of worker_threads, as much of it as this file uses. */
interface NodeWorker extends NodePort {
  on(event: 'message' | 'error' | 'messageerror' | 'exit', listener: (value: never) => void): unknown;
  terminate(): Promise<number>;
}

function connectNodeWorker(): Engine {
  const threads = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule?.('node:worker_threads') as
    { Worker: new (url: URL, options: { name?: string; workerData?: unknown }) => NodeWorker } | undefined;
  if (!threads) throw new EngineError('unsupported', 'a worker engine in Node needs Node 20.16 or later (process.getBuiltinModule); use createEngine({ worker: false })');
  // From the sources (tsx, vitest) the worker is TypeScript that tsx compiles; from the build it is
  // the engine.node-worker.js beside this bundle. The names are variables so that bundlers leave
  // them alone.
  const fromSources = import.meta.url.endsWith('.ts');
  const here = import.meta.url;
  const script = new URL(fromSources ? '../workers/engine.node-worker.ts' : './engine.node-worker.js', here);
  const worker = fromSources
    ? new threads.Worker(new URL('../workers/node-worker-from-sources.mjs', here), { name: 'tokenwise-engine', workerData: { script: script.href } })
    : new threads.Worker(script, { name: 'tokenwise-engine' });
  const watch = failureWatch();
  let ending = false;
  worker.on('error', (error: Error) => watch.fail(new EngineError('internal', `the engine worker failed: ${error.message}`)));
  worker.on('messageerror', () => watch.fail(new EngineError('internal', 'a message from the engine worker could not be read')));
  worker.on('exit', (code: number) => {
    if (!ending) watch.fail(new EngineError('internal', `the engine worker exited (code ${code})`));
  });
  return workerClient(nodeEndpoint(worker), watch, () => {
    ending = true;
    return worker.terminate();
  });
}

let nextRequest = 1;

/**
 * Image URLs relative to the page, made absolute here: a worker would resolve them against its
 * own script's URL.
 */
function withAbsoluteUrls(messages: ChatInputMessage[]): ChatInputMessage[] {
  if (typeof location === 'undefined' || !Array.isArray(messages)) return messages;
  return messages.map((m) => !Array.isArray(m?.content) ? m : {
    ...m,
    content: m.content.map((part) => {
      const url = part?.type === 'image_url' ? part.image_url?.url : undefined;
      if (typeof url !== 'string' || /^[a-z][a-z0-9+.-]*:/i.test(url)) return part;
      try {
        return { ...part, image_url: { ...(part as { image_url: object }).image_url, url: new URL(url, location.href).href } } as typeof part;
      } catch {
        return part;
      }
    }),
  });
}

class EngineClient implements Engine {
  readonly chat: Engine['chat'];

  constructor(
    private readonly backend: Backend,
    readonly inWorker: boolean,
    /** Makes a callback callable from the backend (Comlink.proxy for a worker). */
    private readonly callback: <F extends (...args: never[]) => unknown>(fn: F) => F,
    private readonly end: () => Promise<void>,
  ) {
    const create = (request: ChatCompletionRequest) => this.createChatCompletion(request);
    this.chat = { completions: { create: create as Engine['chat']['completions']['create'] } };
  }

  load(source: ModelSource, options: LoadOptions & { onProgress?: (progress: LoadProgress) => void } = {}): Promise<ModelInfo> {
    const { onProgress, ...rest } = options;
    return this.backend.load(source, rest, onProgress && this.callback(onProgress));
  }

  loadDraft(source: ModelSource, options: Pick<LoadOptions, 'cache' | 'integrity'> & { onProgress?: (progress: LoadProgress) => void } = {}): Promise<ModelInfo> {
    const { onProgress, ...rest } = options;
    return this.backend.loadDraft(source, rest, onProgress && this.callback(onProgress));
  }

  generate(request: GenerateOptions): TokenStream {
    const { signal, onToken, ...given } = request;
    const plain = given.messages ? { ...given, messages: withAbsoluteUrls(given.messages) } : given;
    const id = `request-${nextRequest++}`;
    const pieces: string[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const push = (piece: string, drafted?: boolean) => {
      onToken?.(piece, drafted);
      pieces.push(piece);
      wake?.();
    };
    const abort = () => void this.backend.abort(id).catch(() => undefined);
    if (signal?.aborted) {
      const result = Promise.reject(new EngineError('aborted', 'the request was aborted before it started'));
      result.catch(() => undefined);
      return { result, [Symbol.asyncIterator]: async function* () { await result; } };
    }
    signal?.addEventListener('abort', abort, { once: true });
    const result = this.backend.generate(id, plain, this.callback(push)).finally(() => {
      done = true;
      signal?.removeEventListener('abort', abort);
      wake?.();
    });
    result.catch(() => undefined);
    return {
      result,
      [Symbol.asyncIterator]: async function* () {
        let finished = false;
        try {
          for (;;) {
            while (pieces.length) yield pieces.shift()!;
            if (done) break;
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
          }
          await result; // surface the request's error, if any
          finished = true;
        } finally {
          if (!finished && !done) abort(); // the consumer stopped early
        }
      },
    };
  }

  private async createChatCompletion(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    if (!Array.isArray(request.messages) || request.messages.length === 0) throw new EngineError('bad-request', 'chat.completions.create needs a non-empty messages array');
    const info = await this.info();
    const model = info?.name ?? 'none';
    const stream = this.generate({
      messages: request.messages,
      session: request.session,
      vision: request.vision,
      speculative: request.speculative,
      maxTokens: request.max_completion_tokens ?? request.max_tokens,
      temperature: request.temperature ?? 1,
      topP: request.top_p, topK: request.top_k, minP: request.min_p,
      repetitionPenalty: request.repetition_penalty,
      seed: request.seed,
      stop: request.stop === undefined ? undefined : typeof request.stop === 'string' ? [request.stop] : request.stop,
      signal: request.signal,
    });
    const id = `chatcmpl-${nextRequest++}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = (r: CompletionResult): CompletionUsage => ({
      prompt_tokens: r.stats.promptTokens, completion_tokens: r.stats.generatedTokens,
      total_tokens: r.stats.promptTokens + r.stats.generatedTokens, extra: r.stats,
    });
    if (!request.stream) {
      const r = await stream.result;
      return {
        id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: r.finishReason, logprobs: null }],
        usage: usage(r),
      };
    }
    return (async function* (): AsyncGenerator<ChatCompletionChunk> {
      const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], finish: ChatCompletionChunk['choices'][0]['finish_reason'] = null): ChatCompletionChunk =>
        ({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] });
      yield chunk({ role: 'assistant', content: '' });
      for await (const piece of stream) yield chunk({ content: piece });
      const r = await stream.result;
      yield { ...chunk({}, r.finishReason), usage: usage(r) };
    })();
  }

  createSession(options?: SessionOptions): Promise<string> {
    return this.backend.createSession(options);
  }

  deleteSession(id: string): Promise<void> {
    return this.backend.deleteSession(id);
  }

  info(): Promise<ModelInfo | undefined> {
    return this.backend.info();
  }

  unload(): Promise<void> {
    return this.backend.unload();
  }

  async dispose(): Promise<void> {
    try {
      await this.backend.dispose();
    } catch (error) {
      throw toEngineError(error);
    } finally {
      await this.end();
    }
  }
}
