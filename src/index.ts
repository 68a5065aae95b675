// tokenwise: the public ES module. The worker engine (createEngine) comes with the engine issue;
// today's surface is the in-process pieces it is built from.
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
