// The engine: one loaded model, its conversations (sessions, each with its own KV cache), and
// generation with streaming and abort. Everything here takes and returns plain data (and callbacks),
// so the same object runs in-thread or in a Worker behind Comlink; engine.ts wraps either in the
// public Engine interface.
import { type RequestGpuOptions, type Gpu, requestGpu } from '../gpu';
import type { KvFormat } from '../kernels/kv-cache';
import { decoderConfigFromGGUF } from '../models/config';
import { Decoder } from '../models/decoder';
import { Tokenizer, type ChatMessage } from '../tokenizer';
import { openGGUFModel } from '../loading/gguf-model';
import { type DownloadProgress, type ModelSource, type OpenModelOptions, openModelFiles } from '../loading/model-files';
import { EngineError, toEngineError } from './errors';
import { type GenerateResult, type GenerationStats, type SamplingParams, generate } from './generate';
import { DraftModel } from './speculative/draft-model';
import { type SpeculativeStats, generateSpeculative } from './speculative/generate';
import { PromptLookup } from './speculative/prompt-lookup';
import type { Strategy } from './speculative/strategy';
import { TokenRecycling } from './speculative/token-recycling';
import { LayerSkip, skipCandidates } from './speculative/layer-skip';
import type { KvStats } from './kv/compressed-cache';
import type { KvPolicyOptions } from './kv/policy';
import { Session } from './session';

/**
 * KV-cache compression for a session (docs/KV.md): a policy and its budget in tokens, and the
 * cache's number format. Under an eviction policy the cache holds budget + one prefill step of
 * tokens, however long the conversation grows; under a selection policy (tokenselect,
 * tidaldecode) it keeps the context and each step attends to `budget` tokens of it.
 */
export interface KvOptions extends Partial<KvPolicyOptions> {
  /** Number format of the cached K/V (default f32); int8/int4 are quantized per group on write. */
  quantization?: KvFormat;
}

export interface LoadOptions extends Pick<OpenModelOptions, 'cache' | 'integrity'> {
  /** Context of each session, in tokens (default: the model's, at most 2048). */
  contextLength?: number;
  /** Tokens per prefill step (default 64). */
  prefillChunk?: number;
  kvFormat?: KvFormat;
  /** Every session's KV cache compression (createSession can choose its own). */
  kv?: KvOptions;
}

export interface LoadProgress {
  /** download: file bytes (from the network or the cache); upload: weight bytes to the GPU; compile: shader pipelines. */
  phase: 'download' | 'upload' | 'compile';
  loaded: number;
  total: number;
  /** Files served from the cache (download phase). */
  fromCache?: number;
}

export interface ModelInfo {
  name: string;
  architecture: string;
  vocabSize: number;
  contextLength: number;
  sessionContext: number;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  /** GPU memory the weights take. */
  weightBytes: number;
  /** Bytes of the file(s). */
  fileBytes: number;
  files: number;
  hasChatTemplate: boolean;
  adapter: string;
}

export interface CompletionRequest extends SamplingParams {
  /** Text (tokenized with BOS as the model wants), chat messages (rendered with the model's template), or token ids. */
  prompt?: string;
  messages?: ChatMessage[];
  tokens?: number[];
  /** The conversation whose KV cache to use (createSession); default: the engine's default session. */
  session?: string;
  maxTokens?: number;
  stop?: string[];
  stopTokens?: number[];
  /** Speculative decoding: fewer forward passes; greedy gives the same tokens, sampling the same distribution. */
  speculative?: SpeculativeRequest;
}

export interface SpeculativeRequest {
  /** prompt-lookup: n-gram drafts from the text; token-recycling: the target's own past top-8; draft-model: the model loadDraft() loaded; layer-skip: the target with some layers left out. */
  strategy: 'prompt-lookup' | 'token-recycling' | 'draft-model' | 'layer-skip';
  /** Most draft nodes per verify step (default: 16; Token Recycling's template has 80). */
  maxNodes?: number;
  /** Tokens a draft model or prompt lookup proposes per step (for a draft-model tree: its depth). */
  draftLength?: number;
  /**
   * draft-model: children drafted per node (DySpec tree, A3; siblings are sampled without
   * replacement when sampling, A4). 1 = a chain. Default 4: a tree of up to maxNodes nodes.
   */
  branching?: number;
  /** 'auto' (default): size each step's draft by the measured verify cost on this device, down to plain decoding; 'fixed': always maxNodes. */
  sizing?: 'auto' | 'fixed';
  /** Confidence early stop (A8) for draft-model and layer-skip: a draft whose probability under the drafter is below this is not proposed, nor anything after it. Default 0 (off). */
  minConfidence?: number;
}

export interface CompletionStats extends GenerationStats {
  /** Prompt tokens whose K/V were already in the session's cache and were not computed again. */
  cachedPromptTokens: number;
  /** KV-cache memory the session holds. */
  kvBytes: number;
  /** Tokens in the session's cache after the request. */
  sessionTokens: number;
  /** With speculative decoding: verify steps, drafted and accepted tokens, tokens per step. */
  speculative?: SpeculativeStats;
  /** With a KV policy: tokens kept and evicted. */
  kv?: KvStats;
}

export interface CompletionResult extends Omit<GenerateResult, 'stats'> {
  stats: CompletionStats;
}

export interface SessionOptions {
  contextLength?: number;
  /** Tokens per prefill step; with a KV policy also the cache's room beyond its budget. */
  prefillChunk?: number;
  kvFormat?: KvFormat;
  kv?: KvOptions;
}

interface Loaded {
  decoder: Decoder;
  tokenizer: Tokenizer;
  info: ModelInfo;
  options: LoadOptions;
}

interface SessionEntry {
  session: Session;
  /** The request running or queued last: the next one waits for it. */
  tail: Promise<unknown>;
}

export const DEFAULT_SESSION = 'default';

export class EngineCore {
  private gpu: Gpu | undefined;
  private loaded: Loaded | undefined;
  private readonly sessions = new Map<string, SessionEntry>();
  private readonly running = new Map<string, AbortController>();
  private nextSession = 1;
  private recycling: TokenRecycling | undefined;
  private layerSkipSet: number[] | undefined;
  private draft: { decoder: Decoder; name: string } | undefined;
  /** Loads and unloads one at a time. */
  private loading: Promise<unknown> = Promise.resolve();

  constructor(private readonly gpuOptions: RequestGpuOptions = {}) {}

  /** Loads a model, replacing the one loaded before (only once the new one is ready). */
  load(source: ModelSource, options: LoadOptions = {}, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    const job = this.loading.then(() => this.guard(() => this.loadNow(source, options, onProgress)));
    this.loading = job.catch(() => undefined);
    return job;
  }

  private async loadNow(source: ModelSource, options: LoadOptions, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    const gpu = await this.device();
    const files = await openModelFiles(source, {
      cache: options.cache, integrity: options.integrity,
      onProgress: (p: DownloadProgress) => onProgress?.({ phase: 'download', loaded: p.loaded, total: p.total, fromCache: p.fromCache }),
    });
    const model = await openGGUFModel(files);
    const config = decoderConfigFromGGUF(model.metadata);
    const tokenizer = Tokenizer.fromGGUFMetadata(model.metadata);
    const decoder = await Decoder.fromTensors(gpu, config, model.tensors, (p) => onProgress?.({ phase: 'upload', loaded: p.bytesDone, total: p.bytesTotal }));
    try {
      const sessionContext = Math.min(options.contextLength ?? 2048, config.contextLength);
      const info: ModelInfo = {
        name: model.metadata.getString('general.name') ?? 'model', architecture: config.architecture,
        vocabSize: config.vocabSize, contextLength: config.contextLength, sessionContext,
        layers: config.layers, hidden: config.hidden, heads: config.heads, kvHeads: config.kvHeads,
        weightBytes: decoder.weights.bytes, fileBytes: files.reduce((s, f) => s + f.size, 0), files: files.length,
        hasChatTemplate: tokenizer.vocab.chatTemplate !== undefined, adapter: gpu.adapterDescription,
      };
      await this.compile(gpu, decoder, tokenizer, options, onProgress);
      this.unloadNow();
      this.loaded = { decoder, tokenizer, info, options };
      return info;
    } catch (error) {
      decoder.destroy();
      throw error;
    }
  }

  /** Runs a short generation so that every pipeline a request needs is compiled before the first one. */
  private async compile(gpu: Gpu, decoder: Decoder, tokenizer: Tokenizer, options: LoadOptions, onProgress?: (p: LoadProgress) => void): Promise<void> {
    onProgress?.({ phase: 'compile', loaded: 0, total: 1 });
    const session = new Session(gpu, decoder, { contextLength: 32, prefillChunk: options.prefillChunk, kvFormat: options.kvFormat });
    try {
      const bos = tokenizer.bosId ?? 0;
      await generate(gpu, decoder, tokenizer, session, { tokens: [bos, bos], maxTokens: 2, temperature: 0.7, topK: 40, topP: 0.9, seed: 1 });
    } finally {
      session.destroy();
    }
    onProgress?.({ phase: 'compile', loaded: 1, total: 1 });
  }

  info(): ModelInfo | undefined {
    return this.loaded?.info;
  }

  createSession(options: SessionOptions = {}): string {
    const { decoder, info, options: loadOptions } = this.model();
    const id = `session-${this.nextSession++}`;
    this.sessions.set(id, { session: this.newSession(decoder, info, { ...loadOptions, ...options }), tail: Promise.resolve() });
    return id;
  }

  private newSession(decoder: Decoder, info: ModelInfo, options: LoadOptions & SessionOptions): Session {
    try {
      const { quantization, ...kv } = options.kv ?? {};
      return new Session(this.gpu!, decoder, {
        contextLength: Math.min(options.contextLength ?? info.sessionContext, info.contextLength),
        prefillChunk: options.prefillChunk, kvFormat: quantization ?? options.kvFormat,
        kv: kv.policy && kv.policy !== 'full' ? { ...kv, policy: kv.policy } : undefined,
      });
    } catch (error) {
      throw toEngineError(error);
    }
  }

  deleteSession(id: string): void {
    const entry = this.sessions.get(id);
    if (!entry) throw new EngineError('bad-request', `no session ${JSON.stringify(id)}`);
    this.sessions.delete(id);
    // Free its memory once whatever is queued on it has finished.
    void entry.tail.finally(() => entry.session.destroy());
  }

  /**
   * Generates for `request`, streaming text pieces to `onToken` (`drafted`: the piece came from a
   * draft the target accepted). Requests to one session run one after another;
   * `abort(requestId)` stops this one at its next step.
   */
  generate(requestId: string, request: CompletionRequest, onToken?: (piece: string, drafted?: boolean) => void): Promise<CompletionResult> {
    return this.guard(async () => {
      const { decoder, tokenizer, info, options } = this.model();
      const sessionId = request.session ?? DEFAULT_SESSION;
      let entry = this.sessions.get(sessionId);
      if (!entry) {
        if (sessionId !== DEFAULT_SESSION) throw new EngineError('bad-request', `no session ${JSON.stringify(sessionId)}`);
        entry = { session: this.newSession(decoder, info, options), tail: Promise.resolve() };
        this.sessions.set(sessionId, entry);
      }
      if (this.running.has(requestId)) throw new EngineError('bad-request', `request id ${requestId} is already in use`);
      const controller = new AbortController();
      this.running.set(requestId, controller);
      const { session } = entry;
      const run = entry.tail.then(async () => {
        if (controller.signal.aborted) throw new EngineError('aborted', 'the request was aborted before it started');
        const ids = this.promptIds(tokenizer, request);
        // Reuse the cached prefix the conversation shares with this prompt; at least one token
        // must run to produce logits.
        const common = session.reusablePrefix(ids);
        session.truncate(common);
        const generateRequest = { ...request, tokens: ids.slice(common), signal: controller.signal, onToken: onToken && ((piece: string, _id: number, drafted?: boolean) => onToken(piece, drafted)) };
        let speculative: SpeculativeStats | undefined;
        let result: GenerateResult;
        if (request.speculative) {
          const policy = session.compressed?.policy ?? session.selection?.policy;
          if (policy) throw new EngineError('unsupported', `speculative decoding on a session with a KV policy (${policy.name}) is not supported yet`);
          const strategy = await this.strategy(request.speculative, session, generateRequest.tokens);
          try {
            const r = await generateSpeculative(decoder, tokenizer, session, generateRequest, strategy, { maxNodes: request.speculative.maxNodes, sizing: request.speculative.sizing ?? 'auto' });
            ({ speculative, ...result } = r);
          } finally {
            if (!(strategy instanceof TokenRecycling)) strategy.destroy?.();
          }
        } else {
          result = await generate(this.gpu!, decoder, tokenizer, session, generateRequest);
        }
        return {
          ...result,
          stats: { ...result.stats, promptTokens: ids.length, cachedPromptTokens: common, kvBytes: session.kvBytes, sessionTokens: session.length, speculative, kv: await session.kvStats() },
        };
      });
      entry.tail = run.catch(() => undefined);
      return run.finally(() => this.running.delete(requestId));
    });
  }

  /** The strategy for a request; Token Recycling's candidate matrix lives as long as the model (hot start). */
  private async strategy(request: SpeculativeRequest, session: Session, text: number[]): Promise<Strategy> {
    const { decoder, info } = this.model();
    const confidence = request.minConfidence ?? 0;
    if (!(confidence >= 0 && confidence <= 1)) throw new EngineError('bad-request', `speculative.minConfidence must be in [0, 1], got ${request.minConfidence}`);
    switch (request.strategy) {
      case 'prompt-lookup':
        return new PromptLookup({ draftLength: request.draftLength });
      case 'token-recycling':
        this.recycling ??= new TokenRecycling(this.gpu!, info.vocabSize);
        return this.recycling;
      case 'draft-model':
        if (!this.draft) throw new EngineError('bad-request', 'no draft model is loaded: call loadDraft() first');
        return new DraftModel(this.gpu!, this.draft.decoder, decoder, { draftLength: request.draftLength, branching: request.branching ?? 4, contextLength: info.sessionContext, minConfidence: request.minConfidence });
      case 'layer-skip': {
        const strategy = new LayerSkip(session, info.layers, { draftLength: request.draftLength, skip: this.layerSkipSet, minConfidence: request.minConfidence });
        // Which layers to skip is measured once per model, on the first prompt long enough to tell.
        if (!this.layerSkipSet && text.length >= 24) this.layerSkipSet = (await strategy.calibrate(text, skipCandidates(info.layers), 6)).skip;
        return strategy;
      }
      default:
        throw new EngineError('bad-request', `unknown speculative strategy ${JSON.stringify((request as { strategy: unknown }).strategy)}`);
    }
  }

  /**
   * Loads a draft model for `speculative: { strategy: 'draft-model' }`: a small model whose
   * vocabulary must be the target's (checked token by token).
   */
  loadDraft(source: ModelSource, options: Pick<LoadOptions, 'cache' | 'integrity'> = {}, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    const job = this.loading.then(() => this.guard(async () => {
      const { tokenizer, info } = this.model();
      const gpu = await this.device();
      const files = await openModelFiles(source, { ...options, onProgress: (p) => onProgress?.({ phase: 'download', loaded: p.loaded, total: p.total, fromCache: p.fromCache }) });
      const model = await openGGUFModel(files);
      const config = decoderConfigFromGGUF(model.metadata);
      const draftTokenizer = Tokenizer.fromGGUFMetadata(model.metadata);
      const same = config.vocabSize === info.vocabSize && tokenizer.vocab.tokens.every((t, i) => draftTokenizer.vocab.tokens[i] === t);
      if (!same) throw new EngineError('bad-request', `the draft model's vocabulary differs from the target's (${config.vocabSize} vs ${info.vocabSize} tokens, or different tokens)`);
      const decoder = await Decoder.fromTensors(gpu, config, model.tensors, (p) => onProgress?.({ phase: 'upload', loaded: p.bytesDone, total: p.bytesTotal }));
      this.draft?.decoder.destroy();
      this.draft = { decoder, name: model.metadata.getString('general.name') ?? 'draft' };
      return { ...info, name: this.draft.name, layers: config.layers, hidden: config.hidden, heads: config.heads, kvHeads: config.kvHeads, weightBytes: decoder.weights.bytes, fileBytes: files.reduce((n, f) => n + f.size, 0), files: files.length };
    }));
    this.loading = job.catch(() => undefined);
    return job;
  }

  private promptIds(tokenizer: Tokenizer, request: CompletionRequest): number[] {
    const given = [request.prompt !== undefined, request.messages !== undefined, request.tokens !== undefined].filter(Boolean).length;
    if (given !== 1) throw new EngineError('bad-request', 'give exactly one of prompt, messages or tokens');
    if (request.tokens) return request.tokens;
    if (request.messages) return tokenizer.encodeChat(request.messages, { addGenerationPrompt: true });
    return tokenizer.encode(request.prompt!, { addSpecial: true });
  }

  abort(requestId: string): void {
    this.running.get(requestId)?.abort();
  }

  /** Frees the model and every session (the device stays for the next load). */
  unload(): Promise<void> {
    const job = this.loading.then(() => this.unloadNow());
    this.loading = job.catch(() => undefined);
    return job;
  }

  private unloadNow(): void {
    for (const controller of this.running.values()) controller.abort();
    for (const entry of this.sessions.values()) void entry.tail.finally(() => entry.session.destroy());
    this.sessions.clear();
    const old = this.loaded;
    this.loaded = undefined;
    old?.decoder.destroy();
    this.recycling?.destroy();
    this.recycling = undefined;
    this.layerSkipSet = undefined;
    this.draft?.decoder.destroy();
    this.draft = undefined;
  }

  /** Frees all GPU memory, the device included. */
  async dispose(): Promise<void> {
    await this.unload();
    await Promise.all([...this.sessions.values()].map((e) => e.tail));
    this.gpu?.destroy();
    this.gpu = undefined;
  }

  private model(): Loaded {
    if (this.gpu?.lostError) {
      this.loaded = undefined;
      this.sessions.clear();
      throw toEngineError(this.gpu.lostError);
    }
    if (!this.loaded) throw new EngineError('bad-request', 'no model is loaded: call load() first');
    return this.loaded;
  }

  /** The device, or a new one when there is none or the old one was lost. */
  private async device(): Promise<Gpu> {
    if (this.gpu?.lostError) {
      this.loaded = undefined;
      this.sessions.clear();
      this.gpu = undefined;
    }
    this.gpu ??= await requestGpu(this.gpuOptions);
    return this.gpu;
  }

  private async guard<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      throw toEngineError(error);
    }
  }
}
