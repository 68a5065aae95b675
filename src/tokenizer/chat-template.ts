// Chat prompts: the model's own template (tokenizer.chat_template in GGUF, chat_template in
// tokenizer_config.json) rendered with @huggingface/jinja and the variables Hugging Face's
// apply_chat_template passes. A model without a template gets a fallback chosen by the caller;
// the default is ChatML, which is also what llama.cpp falls back to.

import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  content: string;
  [key: string]: unknown;
}

export type ChatTemplateFallback = 'chatml' | 'llama2';

export interface ChatTemplateOptions {
  /** End with the opening of the assistant's turn. Default true. */
  addGenerationPrompt?: boolean;
  /** Use this template instead of the model's. */
  template?: string;
  /** The format when the model has no template. Default 'chatml'. */
  fallback?: ChatTemplateFallback;
  /** Text of the BOS/EOS tokens (the tokenizer fills these in from its vocabulary). */
  bosToken?: string;
  eosToken?: string;
  /** Further template variables: tools, documents, enable_thinking, ... */
  variables?: Record<string, unknown>;
}

/** ChatML: "<|im_start|>role\ncontent<|im_end|>\n" per message (Qwen, SmolLM, many others). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Llama-2-chat's template: "<s>[INST] <<SYS>>\n...\n<</SYS>>\n\nuser [/INST] assistant </s>". */
export const LLAMA2_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
  '{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}' +
  '{% for message in loop_messages %}' +
  "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
  "{% else %}{% set content = message['content'] %}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}" +
  '{% endfor %}';

const FALLBACKS: Record<ChatTemplateFallback, string> = { chatml: CHATML_TEMPLATE, llama2: LLAMA2_TEMPLATE };

// Parsing a template costs more than rendering it; models keep theirs for their lifetime.
const parsed = new Map<string, Template>();

/** Renders `modelTemplate` (or the fallback when it is undefined or empty) for `messages`. */
export function renderChat(modelTemplate: string | undefined, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
  const source = options.template ?? (modelTemplate || FALLBACKS[options.fallback ?? 'chatml']);
  let template = parsed.get(source);
  if (!template) {
    try {
      template = new Template(source);
    } catch (e) {
      throw new Error(`chat template: cannot parse it: ${(e as Error).message}`);
    }
    parsed.set(source, template);
  }
  try {
    return template.render({
      ...options.variables,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? true,
      bos_token: options.bosToken ?? '',
      eos_token: options.eosToken ?? '',
    });
  } catch (e) {
    throw new Error(`chat template: rendering failed: ${(e as Error).message}`);
  }
}
