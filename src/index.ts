// tokenwise: the public ES module. Most apps need only createEngine(): the engine in a Web Worker
// (or in-thread), with load-by-URL, streaming generation and chat.completions. The in-process
// pieces it is built from are exported too, for tools and tests.
export {
  createEngine, type CreateEngineOptions, type Engine, type GenerateOptions, type TokenStream,
  type ChatCompletionRequest, type ChatCompletion, type ChatCompletionChunk, type CompletionUsage,
} from './engine/engine';
export {
  EngineCore, DEFAULT_SESSION, type LoadOptions, type LoadProgress, type ModelInfo, type CompletionRequest,
  type CompletionResult, type CompletionStats, type SessionOptions as EngineSessionOptions, type SpeculativeRequest, type KvOptions, type ImageStats,
} from './engine/engine-core';
export { type ChatContentPart, type ChatInputMessage } from './engine/multimodal';
export { type ImageInput, type RawImage, resizeRgb } from './engine/images';
export { PRUNING_METHODS, type PruningMethod, type VisionPruning, type ImageTokens } from './engine/vision/pruning';
export { VisionEncoder, visionConfigFromGGUF, type VisionConfig } from './models/vision';
export { KV_POLICIES, createKvPolicy, type KvPolicy, type KvPolicyName, type KvPolicyOptions, type KvState } from './engine/kv/policy';
export { CompressedCache, type KvStats } from './engine/kv/compressed-cache';
export { EngineError, type EngineErrorKind } from './engine/errors';
export { openModelFiles, shardUrls, type ModelSource, type OpenModelOptions, type DownloadProgress } from './loading/model-files';
export { openGGUFModel, type GGUFModel } from './loading/gguf-model';
export type { CacheChoice } from './loading/cache';
export { requestGpu, Gpu, GpuError, type GpuErrorKind, type GpuFeatures, type RequestGpuOptions } from './gpu';
export { readGGUF, GGUFFile } from './formats/gguf-reader';
export { bytesSource, blobSource, urlSource, type ByteSource } from './formats/byte-source';
export { Tokenizer, type ChatMessage } from './tokenizer';
export { Decoder } from './models/decoder';
export { decoderConfigFromGGUF, ModelFormatError, type DecoderConfig } from './models/config';
export { Session, type SessionOptions } from './engine/session';
export { generate, AbortError, type GenerateRequest, type GenerateResult, type GenerationStats } from './engine/generate';
export { readSafetensors, readShardedSafetensors, encodeSafetensors, SafetensorsError } from './formats/safetensors';
export { decoderConfigFromHF, tokenizerOptionsFromHFConfig } from './models/huggingface';
export { generateSpeculative, type SpeculativeStats, type SpeculativeResult } from './engine/speculative/generate';
export { type Strategy, type DraftTree, type GpuDraftTree, chain } from './engine/speculative/strategy';
export { PromptLookup } from './engine/speculative/prompt-lookup';
export { DraftModel } from './engine/speculative/draft-model';
export { TokenRecycling } from './engine/speculative/token-recycling';
export { LayerSkip, skipCandidates } from './engine/speculative/layer-skip';
