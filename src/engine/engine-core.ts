// The engine: one loaded model, its conversations (sessions, each with its own KV cache), and
// generation with streaming and abort. Everything here takes and returns plain data (and callbacks),
// so the same object runs in-thread or in a Worker behind Comlink; engine.ts wraps either in the
// public Engine interface.
import { type RequestGpuOptions, type Gpu, requestGpu } from '../gpu';
import type { KvFormat } from '../kernels/kv-cache';
import { decoderConfigFromGGUF } from '../models/config';
import { Decoder } from '../models/decoder';
import { VisionEncoder, type VisionConfig, visionConfigFromGGUF } from '../models/vision';
import { Tokenizer } from '../tokenizer';
import { readGGUF, type GGUFFile } from '../formats/gguf-reader';
import { openGGUFModel } from '../loading/gguf-model';
import { type DownloadProgress, type ModelSource, type OpenModelOptions, openModelFiles } from '../loading/model-files';
import { EngineError, toEngineError } from './errors';
import { AbortError, DEFAULT_TEMPERATURE, type GenerateRequest, type GenerateResult, type GenerationStats, type SamplingParams, generate } from './generate';
import { DraftModel } from './speculative/draft-model';
import { type SpeculativeResult, type SpeculativeStats, generateSpeculative } from './speculative/generate';
import { PromptLookup } from './speculative/prompt-lookup';
import type { Strategy } from './speculative/strategy';
import { TokenRecycling } from './speculative/token-recycling';
import { LayerSkip, skipCandidates } from './speculative/layer-skip';
import type { KvStats } from './kv/compressed-cache';
import type { KvPolicyOptions } from './kv/policy';
import { IMAGE_TOKEN, Session } from './session';
import { imageKey, imageToRgb } from './images';
import {
  type CachedImages, type ChatInputMessage, hasImages, landedImages, preparePieces, remainingParts, renderMultimodal, reusableRows, textMessages,
} from './multimodal';
import { prefillMultimodal } from './vision/prefill';
import type { ImageTokens, VisionPruning } from './vision/pruning';

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
  /** Tokens per prefill step (default 64; with an mmproj, an image's tokens + 64). */
  prefillChunk?: number;
  kvFormat?: KvFormat;
  /** Every session's KV cache compression (createSession can choose its own). */
  kv?: KvOptions;
  /**
   * A vision-language model's vision tower and projector: llama.cpp's mmproj GGUF (a URL, a
   * File/Blob or bytes, loaded and cached like the model). Its projection width must be the
   * model's hidden size. Requests can then carry images (content parts in `messages`).
   */
  mmproj?: ModelSource;
  /** The mmproj file's expected SHA-256, as `integrity` for the model. */
  mmprojIntegrity?: string;
  /**
   * Run the vision tower at this image size (a multiple of its patch size) instead of the one it
   * was trained at: its position embeddings are interpolated; fewer pixels, fewer image tokens.
   */
  imageSize?: number;
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
  /** With an mmproj: the vision tower's input size and the image tokens it makes per image (before pruning). */
  vision?: {
    name: string;
    imageSize: number;
    patchSize: number;
    /** Image tokens per image (patches), before any pruning. */
    patches: number;
    /** Bytes of the mmproj file. */
    fileBytes: number;
  };
}

export interface CompletionRequest extends SamplingParams {
  /**
   * Text (tokenized with BOS as the model wants), chat messages (rendered with the model's
   * template; content is a string or content parts, images included when an mmproj is loaded:
   * see ChatContentPart), or token ids.
   */
  prompt?: string;
  messages?: ChatInputMessage[];
  tokens?: number[];
  /** The conversation whose KV cache to use (createSession); default: the engine's default session. */
  session?: string;
  maxTokens?: number;
  stop?: string[];
  stopTokens?: number[];
  /** Speculative decoding: fewer forward passes; greedy gives the same tokens, sampling the same distribution. */
  speculative?: SpeculativeRequest;
  /** Vision-token pruning or merging for the request's images (default: every image token goes on). */
  vision?: VisionPruning;
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
   * replacement when sampling, A4). 1 = a chain. Default: 1 for greedy decoding (a chain is drafted
   * on the GPU inside the verify submission, one round trip per step), 4 when sampling (a tree of
   * up to maxNodes nodes).
   */
  branching?: number;
  /** 'auto' (default): size each step's draft by the measured verify cost on this device, down to plain decoding; 'fixed': always maxNodes. */
  sizing?: 'auto' | 'fixed';
  /**
   * Confidence early stop (A8) for draft-model and layer-skip: a draft whose probability under the
   * drafter is below this is not proposed, nor anything after it. When sampling, a draft-model
   * node whose top probability is below this gets no children (a rule that looked at the drawn
   * token would bias the output). Default 0 (off).
   */
  minConfidence?: number;
  /** A8 rule 2 for draft-model trees: no node whose path value (the product of the drafter's probabilities along its path) is below this. Default 0 (off). */
  minPathValue?: number;
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
  /** Per image of the prompt, in order: its tokens before and after pruning, which kept token carries each patch, encode time. */
  images?: ImageStats[];
}

export interface ImageStats extends ImageTokens {
  /** The image's rows were already in the session's cache (same pixels, same pruning): not encoded again (encodeMs 0). */
  cached: boolean;
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
  encoder?: VisionEncoder;
}

interface SessionEntry {
  session: Session;
  /** The request running or queued last: the next one waits for it. */
  tail: Promise<unknown>;
  /** Which rows of the session's history hold which images, so that only the same image is reused. */
  images: CachedImages[];
}

export const DEFAULT_SESSION = 'default';

/** Speculative decoding does not yet run on a compressed or selective KV cache (its rollback and tree rows). */
function refuseKvPolicy(session: Session): void {
  const policy = session.compressed?.policy ?? session.selection?.policy;
  if (policy) throw new EngineError('unsupported', `speculative decoding on a session with a KV policy (${policy.name}) is not supported yet`);
}

/** Rolls a conversation back to its first `length` rows, forgetting the images it no longer holds. */
function truncateEntry(entry: SessionEntry, length: number): void {
  entry.session.truncate(length);
  entry.images = entry.images.filter((c) => c.end <= length);
}

/** A request's stats about its session: prompt rows reused from the cache, KV memory, the KV policy's counts. */
async function sessionStats(session: Session, cachedPromptTokens: number) {
  return { cachedPromptTokens, kvBytes: session.kvBytes, sessionTokens: session.length, kv: await session.kvStats() };
}

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
    // The model's files and the mmproj download side by side; progress adds them up.
    const downloads = [{ loaded: 0, total: 0, fromCache: 0 }, { loaded: 0, total: 0, fromCache: 0 }];
    const progress = (i: number) => (p: DownloadProgress) => {
      downloads[i] = p;
      onProgress?.({ phase: 'download', loaded: downloads[0].loaded + downloads[1].loaded, total: downloads[0].total + downloads[1].total, fromCache: downloads[0].fromCache + downloads[1].fromCache });
    };
    const [files, mmprojFiles] = await Promise.all([
      openModelFiles(source, { cache: options.cache, integrity: options.integrity, onProgress: progress(0) }),
      options.mmproj === undefined ? undefined : openModelFiles(options.mmproj, { cache: options.cache, integrity: options.mmprojIntegrity, onProgress: progress(1) }),
    ]);
    const model = await openGGUFModel(files);
    const config = decoderConfigFromGGUF(model.metadata);
    const tokenizer = Tokenizer.fromGGUFMetadata(model.metadata);
    let mmproj: { file: GGUFFile; config: VisionConfig; bytes: number } | undefined;
    if (mmprojFiles) {
      if (mmprojFiles.length !== 1) throw new EngineError('unsupported', `the mmproj is split into ${mmprojFiles.length} files; give it as one GGUF file`);
      const file = await readGGUF(mmprojFiles[0]);
      const architecture = file.getString('general.architecture');
      if (architecture !== 'clip') {
        throw new EngineError('bad-request', `the mmproj file is not a vision projector: its general.architecture is ${JSON.stringify(architecture)}, expected "clip" (llama.cpp's mmproj GGUF)`);
      }
      const vision = visionConfigFromGGUF(file);
      if (vision.projection !== config.hidden) {
        throw new EngineError('bad-request', `the mmproj projects images to width ${vision.projection}, but the model's hidden size is ${config.hidden}: it belongs to another model`);
      }
      mmproj = { file, config: vision, bytes: mmprojFiles[0].size };
    }
    const mmprojTensorBytes = mmproj ? mmproj.file.tensors.reduce((sum, t) => sum + (t.nbytes ?? 0), 0) : 0;
    const decoder = await Decoder.fromTensors(gpu, config, model.tensors, (p) => onProgress?.({ phase: 'upload', loaded: p.bytesDone, total: p.bytesTotal + mmprojTensorBytes }));
    let encoder: VisionEncoder | undefined;
    try {
      if (mmproj) {
        encoder = await VisionEncoder.load(gpu, mmproj.file, { imageSize: options.imageSize });
        onProgress?.({ phase: 'upload', loaded: decoder.weights.bytes + mmprojTensorBytes, total: decoder.weights.bytes + mmprojTensorBytes });
      }
      const sessionContext = Math.min(options.contextLength ?? 2048, config.contextLength);
      const info: ModelInfo = {
        name: model.metadata.getString('general.name') ?? 'model', architecture: config.architecture,
        vocabSize: config.vocabSize, contextLength: config.contextLength, sessionContext,
        layers: config.layers, hidden: config.hidden, heads: config.heads, kvHeads: config.kvHeads,
        weightBytes: decoder.weights.bytes, fileBytes: files.reduce((s, f) => s + f.size, 0), files: files.length,
        hasChatTemplate: tokenizer.vocab.chatTemplate !== undefined, adapter: gpu.adapterDescription,
        vision: mmproj && encoder && {
          name: mmproj.file.getString('general.name') ?? 'mmproj', imageSize: encoder.config.imageSize, patchSize: encoder.config.patchSize,
          patches: encoder.config.patches, fileBytes: mmproj.bytes,
        },
      };
      // A vision model's prefill step holds an image and text after it (FastV prunes inside such a step).
      const loadOptions = encoder && options.prefillChunk === undefined ? { ...options, prefillChunk: encoder.config.patches + 64 } : options;
      await this.compile(gpu, decoder, tokenizer, loadOptions, encoder, onProgress);
      this.unloadNow();
      this.loaded = { decoder, tokenizer, info, options: loadOptions, encoder };
      return info;
    } catch (error) {
      decoder.destroy();
      encoder?.destroy();
      throw error;
    }
  }

  /** Runs a short generation (after an image row, with a vision tower) so that every pipeline a request needs is compiled before the first one. */
  private async compile(gpu: Gpu, decoder: Decoder, tokenizer: Tokenizer, options: LoadOptions, encoder: VisionEncoder | undefined, onProgress?: (p: LoadProgress) => void): Promise<void> {
    onProgress?.({ phase: 'compile', loaded: 0, total: 1 });
    const session = new Session(gpu, decoder, { contextLength: 32, prefillChunk: options.prefillChunk, kvFormat: options.kvFormat });
    try {
      const bos = tokenizer.bosId ?? 0;
      if (encoder) {
        const { embeddings } = await encoder.encode(new Uint8Array(encoder.config.imageSize ** 2 * 3));
        await session.prefillEmbeddings(embeddings.subarray(0, decoder.config.hidden));
      }
      await generate(decoder, tokenizer, session, { tokens: [bos, bos], maxTokens: 2, temperature: 0.7, topK: 40, topP: 0.9, seed: 1 });
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
    this.sessions.set(id, { session: this.newSession(decoder, info, { ...loadOptions, ...options }), tail: Promise.resolve(), images: [] });
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
        entry = { session: this.newSession(decoder, info, options), tail: Promise.resolve(), images: [] };
        this.sessions.set(sessionId, entry);
      }
      if (this.running.has(requestId)) throw new EngineError('bad-request', `request id ${requestId} is already in use`);
      const controller = new AbortController();
      this.running.set(requestId, controller);
      const { session } = entry;
      const sessionEntry = entry;
      let lastDelivery: Promise<unknown> = Promise.resolve();
      const run = entry.tail.then(async () => {
        if (controller.signal.aborted) throw new EngineError('aborted', 'the request was aborted before it started');
        const started = performance.now();
        // Across a worker, each piece is a message on the callback's own port, and the result one
        // on the engine's: the result waits until the last piece was delivered, so a stream never
        // ends before its text does.
        const onPiece = onToken && ((piece: string, _id: number, drafted?: boolean) => {
          const delivery = onToken(piece, drafted) as unknown;
          if (delivery instanceof Promise) lastDelivery = delivery.catch(() => undefined);
        });
        const multimodal = request.messages !== undefined && this.isMultimodal(request.messages);
        if (multimodal) {
          return this.generateMultimodal(sessionEntry, request, started, controller.signal, onPiece);
        }
        const ids = this.promptIds(tokenizer, request);
        // Reuse the cached prefix the conversation shares with this prompt; at least one token
        // must run to produce logits. Image rows (IMAGE_TOKEN) never match a token id.
        const common = session.reusablePrefix(ids);
        truncateEntry(sessionEntry, common);
        const generateRequest = { ...request, tokens: ids.slice(common), signal: controller.signal, onToken: onPiece };
        let speculative: SpeculativeStats | undefined;
        let result: GenerateResult;
        if (request.speculative) {
          ({ speculative, ...result } = await this.generateSpeculative(session, request.speculative, generateRequest));
        } else {
          result = await generate(decoder, tokenizer, session, generateRequest);
        }
        return {
          ...result,
          stats: { ...result.stats, promptTokens: ids.length, speculative, ...await sessionStats(session, common) },
        };
      });
      entry.tail = run.catch(() => undefined);
      return run.finally(async () => {
        this.running.delete(requestId);
        await lastDelivery;
      });
    });
  }

  /** Whether messages go the multimodal way: they hold images, or the model has a vision tower and no chat template (the plain format). */
  private isMultimodal(messages: ChatInputMessage[]): boolean {
    const { encoder, tokenizer } = this.model();
    return hasImages(messages) || (encoder !== undefined && tokenizer.vocab.chatTemplate === undefined);
  }

  /**
   * A request whose messages hold images: render them (renderMultimodal), decode and resize each
   * image to the tower's size, keep what the session already holds (images only when the pixels
   * and pruning options match), prefill the rest with prefillMultimodal, then generate() from the
   * logits it left. Stats: prefill and time to first token count from the start of the
   * request (image decoding and encoding included).
   */
  private async generateMultimodal(
    entry: SessionEntry, request: CompletionRequest, started: number, signal: AbortSignal,
    onToken: ((piece: string, id: number, drafted?: boolean) => void) | undefined,
  ): Promise<CompletionResult> {
    const { decoder, tokenizer, encoder } = this.model();
    const { session } = entry;
    if (!encoder) throw new EngineError('bad-request', 'the request has images, but the model has no vision tower: load it with { mmproj }');
    if (request.speculative) refuseKvPolicy(session); // before the images are encoded (generateSpeculative checks again)
    if (request.prompt !== undefined || request.tokens !== undefined) throw new EngineError('bad-request', 'give exactly one of prompt, messages or tokens');
    const size = encoder.config.imageSize;
    const rendered = renderMultimodal(tokenizer, request.messages!, tokenizer.vocab.chatTemplate === undefined);
    const resolved = [];
    for (const piece of rendered) {
      if ('tokens' in piece) {
        resolved.push(piece);
        continue;
      }
      const rgb = await imageToRgb(piece.image, size, signal);
      resolved.push({ rgb, key: await imageKey(rgb) });
    }
    const pieces = preparePieces(resolved, request.vision);
    const common = session.rollbackLimit(reusableRows(session.tokens, entry.images, pieces));
    const { parts, groups, imageGroups } = remainingParts(pieces, entry.images, common);
    truncateEntry(entry, common);
    let images: ImageTokens[] = [];
    try {
      images = await prefillMultimodal(session, encoder, parts, request.vision, signal);
      entry.images.push(...landedImages(session.tokens, common, groups, images, IMAGE_TOKEN));
    } catch (error) {
      // An abort between parts ends like an abort in generate(): finishReason 'abort'.
      if (!(error instanceof AbortError)) throw error;
    }
    const promptTokens = session.tokens.length;
    const prefilled = performance.now();
    // The whole prompt is in: sampling starts from its last row's logits (FastV scored the image by that row).
    const generateRequest = { ...request, tokens: [], prefilled: true, signal, onToken };
    const { speculative, ...result } = request.speculative
      ? await this.generateSpeculative(session, request.speculative, generateRequest)
      : { ...await generate(decoder, tokenizer, session, generateRequest), speculative: undefined };
    const prefillMs = result.stats.prefillMs + (prefilled - started);
    const stats: ImageStats[] = [];
    let fresh = 0;
    for (const group of imageGroups) {
      if (group.reused) {
        stats.push(...group.reused.images.map((image) => ({ ...image, encodeMs: 0, cached: true })));
      } else {
        stats.push(...images.slice(fresh, fresh + group.count).map((image) => ({ ...image, cached: false })));
        fresh += group.count;
      }
    }
    return {
      ...result,
      stats: {
        ...result.stats, promptTokens, prefillMs, timeToFirstTokenMs: result.stats.timeToFirstTokenMs + (prefilled - started), speculative,
        prefillTokensPerSecond: prefillMs > 0 ? ((promptTokens - common) / prefillMs) * 1000 : 0,
        ...await sessionStats(session, common), images: stats,
      },
    };
  }

  /**
   * Speculative generation with the request's strategy, which lives for this request only (but
   * Token Recycling's, which lives as long as the model). `request.tokens` are the prompt's tokens
   * not in the session yet (layer skipping calibrates on them).
   */
  private async generateSpeculative(session: Session, options: SpeculativeRequest, request: GenerateRequest): Promise<SpeculativeResult> {
    const { decoder, tokenizer } = this.model();
    refuseKvPolicy(session);
    const strategy = await this.strategy(options, session, request.tokens ?? [], (request.temperature ?? DEFAULT_TEMPERATURE) === 0);
    try {
      return await generateSpeculative(decoder, tokenizer, session, request, strategy, { maxNodes: options.maxNodes, sizing: options.sizing ?? 'auto' });
    } finally {
      if (!(strategy instanceof TokenRecycling)) strategy.destroy?.();
    }
  }

  /** The strategy for a request; Token Recycling's candidate matrix lives as long as the model (hot start). */
  private async strategy(request: SpeculativeRequest, session: Session, text: number[], greedy: boolean): Promise<Strategy> {
    const { decoder, info } = this.model();
    for (const key of ['minConfidence', 'minPathValue'] as const) {
      const value = request[key] ?? 0;
      if (!(value >= 0 && value <= 1)) throw new EngineError('bad-request', `speculative.${key} must be in [0, 1], got ${request[key]}`);
    }
    switch (request.strategy) {
      case 'prompt-lookup':
        return new PromptLookup({ draftLength: request.draftLength });
      case 'token-recycling':
        this.recycling ??= new TokenRecycling(this.gpu!, info.vocabSize);
        return this.recycling;
      case 'draft-model':
        if (!this.draft) throw new EngineError('bad-request', 'no draft model is loaded: call loadDraft() first');
        return new DraftModel(this.gpu!, this.draft.decoder, decoder, { draftLength: request.draftLength, branching: request.branching ?? (greedy ? 1 : 4), contextLength: info.sessionContext, minConfidence: request.minConfidence, minPathValue: request.minPathValue });
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
      return { ...info, vision: undefined, name: this.draft.name, layers: config.layers, hidden: config.hidden, heads: config.heads, kvHeads: config.kvHeads, weightBytes: decoder.weights.bytes, fileBytes: files.reduce((n, f) => n + f.size, 0), files: files.length };
    }));
    this.loading = job.catch(() => undefined);
    return job;
  }

  private promptIds(tokenizer: Tokenizer, request: CompletionRequest): number[] {
    const given = [request.prompt !== undefined, request.messages !== undefined, request.tokens !== undefined].filter(Boolean).length;
    if (given !== 1) throw new EngineError('bad-request', 'give exactly one of prompt, messages or tokens');
    if (request.tokens) {
      // Negative ids would match image rows (IMAGE_TOKEN) in the session's history.
      const bad = request.tokens.find((id) => !Number.isInteger(id) || id < 0);
      if (bad !== undefined) throw new EngineError('bad-request', `token id ${bad} is not a token id`);
      return request.tokens;
    }
    if (request.messages) return tokenizer.encodeChat(textMessages(request.messages), { addGenerationPrompt: true });
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
    old?.encoder?.destroy();
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
