// Tokenizers and chat templates: SentencePiece and byte-level BPE from GGUF metadata or a Hugging
// Face tokenizer.json, matching llama.cpp's tokenization.

export { Tokenizer, type EncodeOptions, type DecodeOptions } from './tokenizer';
export { Vocabulary, type TokenizerModel } from './vocabulary';
export { StreamingDecoder } from './streaming-decoder';
export { metadataFromTokenizerJson, type TokenizerJsonOptions } from './tokenizer-json';
export { renderChat, CHATML_TEMPLATE, LLAMA2_TEMPLATE, type ChatMessage, type ChatTemplateOptions, type ChatTemplateFallback } from './chat-template';
export { SUPPORTED_PRE_TOKENIZERS } from './pre-tokenizers';
export { TokenType, TokenAttr } from './token-types';
export type { MetadataSource } from './metadata';
export type { SpecialTokenIds } from './special-tokens';
