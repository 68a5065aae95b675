// The tokenizer: text to token ids and back, for SentencePiece ("llama") and byte-level BPE
// ("gpt2") vocabularies, built from GGUF metadata or a Hugging Face tokenizer.json. Encoding
// reproduces llama.cpp's llama_tokenize token for token.

import { BpeSession } from './bpe';
import { type ChatMessage, type ChatTemplateOptions, renderChat } from './chat-template';
import type { MetadataSource } from './metadata';
import { PieceTable, cleanUpSpaces } from './pieces';
import { partitionSpecialTokens } from './special-partition';
import { spmTokenize } from './spm';
import { StreamingDecoder } from './streaming-decoder';
import { TokenAttr } from './token-types';
import { type TokenizerJsonOptions, metadataFromTokenizerJson } from './tokenizer-json';
import { Vocabulary } from './vocabulary';

export interface EncodeOptions {
  /** Add BOS/EOS as the model says (tokenizer.ggml.add_bos_token / add_eos_token). Default true. */
  addSpecial?: boolean;
  /**
   * Match control tokens (e.g. "<|im_start|>", "<s>") written in the text and emit them as
   * themselves. Default false: user text cannot inject them. User-defined tokens always match.
   */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Print control and unknown tokens as their text ("<|im_end|>"). Default false: they print nothing. */
  special?: boolean;
  /**
   * Drop the space SentencePiece put before the first word, so that decode(encode(text)) is text.
   * Default: true for vocabularies that add a space prefix.
   */
  stripLeadingSpace?: boolean;
  /** Apply llama.cpp's clean_up_tokenization_spaces ("a ." -> "a."). Default false. */
  cleanSpaces?: boolean;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export class Tokenizer {
  private readonly pieces: PieceTable;
  private readonly bpe: BpeSession | undefined;

  constructor(readonly vocab: Vocabulary) {
    this.pieces = new PieceTable(vocab);
    this.bpe = vocab.preTokenizer && new BpeSession(vocab, vocab.preTokenizer);
  }

  /** From GGUF metadata: a plain record of its keys, or anything with get(key) (a Map, a GGUFFile). */
  static fromGGUFMetadata(metadata: MetadataSource): Tokenizer {
    return new Tokenizer(Vocabulary.fromMetadata(metadata));
  }

  /**
   * From a Hugging Face tokenizer.json (parsed), with its tokenizer_config.json for BOS/EOS
   * settings and the chat template. The vocabulary is converted the way llama.cpp's
   * convert_hf_to_gguf.py would, so the result tokenizes as llama.cpp does on the converted model.
   */
  static fromTokenizerJson(tokenizerJson: unknown, tokenizerConfig?: unknown, options?: TokenizerJsonOptions): Tokenizer {
    return Tokenizer.fromGGUFMetadata(metadataFromTokenizerJson(tokenizerJson, tokenizerConfig, options));
  }

  get vocabSize(): number { return this.vocab.size; }
  get bosId(): number | undefined { return this.vocab.special.bos; }
  get eosId(): number | undefined { return this.vocab.special.eos; }
  /** Tokens that end generation (EOS, end-of-turn tokens such as "<|im_end|>", ...). */
  get endOfGenerationIds(): ReadonlySet<number> { return this.vocab.endOfGeneration; }
  isEndOfGeneration(id: number): boolean { return this.vocab.isEndOfGeneration(id); }
  /** Whether llama.cpp's detokenizer would clean up spaces for this vocabulary (see DecodeOptions.cleanSpaces). */
  get cleansSpaces(): boolean { return this.vocab.preTokenizer?.cleanSpaces ?? false; }

  /** The vocabulary entry of a token, as stored ("▁the", "Ġthe", "<0x0A>", "<|im_end|>"). */
  tokenText(id: number): string {
    const text = this.vocab.tokens[id];
    if (text === undefined) throw new RangeError(`tokenizer: token id ${id} is outside the vocabulary (0..${this.vocab.size - 1})`);
    return text;
  }

  /** The id of a vocabulary entry, if there is one. */
  tokenId(text: string): number | undefined {
    return this.vocab.idOf(text);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const { vocab } = this;
    // llama.cpp sees UTF-8, where an unpaired surrogate can only have become U+FFFD.
    text = text.replace(LONE_SURROGATE, '\ufffd');
    const addSpecial = options.addSpecial ?? true;
    const output: number[] = [];
    if (addSpecial && vocab.addBos) output.push(this.required('bos'));
    // A space goes before text at the start and after each special token (llama.cpp's is_prev_special).
    let afterSpecial = true;
    for (const fragment of partitionSpecialTokens(vocab, text, options.parseSpecial ?? false)) {
      if ('token' in fragment) {
        output.push(fragment.token);
        afterSpecial = true;
      } else if (this.bpe) {
        this.bpe.tokenize(fragment.text, output);
      } else {
        const prefixed = vocab.addSpacePrefix && afterSpecial ? ` ${fragment.text}` : fragment.text;
        spmTokenize(vocab, prefixed.replaceAll(' ', '▁'), output);
        afterSpecial = false;
      }
    }
    if (addSpecial && vocab.addEos) output.push(this.required('eos'));
    return output;
  }

  /** The bytes of one token (a byte token or part of a byte-level token can be an incomplete character). */
  tokenBytes(id: number, options: { special?: boolean } = {}): Uint8Array {
    return this.pieces.bytes(id, options.special ?? false);
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const decoder = this.streamingDecoder(options);
    const text = decoder.push(ids) + decoder.flush();
    return options.cleanSpaces ? cleanUpSpaces(text) : text;
  }

  /** A decoder for tokens arriving one at a time: it never returns part of a UTF-8 character. */
  streamingDecoder(options: Omit<DecodeOptions, 'cleanSpaces'> = {}): StreamingDecoder {
    return new StreamingDecoder((id) => this.pieces.bytes(id, options.special ?? false),
      options.stripLeadingSpace ?? this.vocab.addSpacePrefix);
  }

  /**
   * The prompt for a conversation: the model's chat template (tokenizer.chat_template) rendered
   * with Jinja, or the fallback format when the model has none (see chat-template.ts).
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    // Only a control token is a real BOS/EOS: without one in the file, llama.cpp's byte-level
    // default id 11 is an ordinary token, and a template must not print it.
    const tokenText = (id: number | undefined) => (id !== undefined && this.vocab.hasAttr(id, TokenAttr.CONTROL) ? this.vocab.tokens[id]! : '');
    return renderChat(this.vocab.chatTemplate, messages, {
      ...options,
      bosToken: options.bosToken ?? tokenText(this.bosId),
      eosToken: options.eosToken ?? tokenText(this.eosId),
    });
  }

  /**
   * applyChatTemplate, then encode with special tokens parsed. BOS is added only when the model
   * adds one and the rendered prompt does not already start with it (templates often write it).
   */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    const ids = this.encode(this.applyChatTemplate(messages, options), { parseSpecial: true, addSpecial: false });
    const templateWroteBos = ids.length > 0 && ids[0] === this.bosId;
    return this.vocab.addBos && !templateWroteBos ? [this.required('bos'), ...ids] : ids;
  }

  private required(role: 'bos' | 'eos'): number {
    const id = this.vocab.special[role];
    if (id === undefined) throw new Error(`tokenizer: the model asks for a ${role.toUpperCase()} token but has none`);
    return id;
  }
}
