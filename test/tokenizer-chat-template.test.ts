// Chat templates: a model's own Jinja template (Qwen3's, from its tokenizer_config.json), the
// variables Hugging Face passes (messages, add_generation_prompt, bos_token, eos_token, extras),
// and the explicit fallbacks for models without a template.

import { describe, expect, it } from 'vitest';
import { CHATML_TEMPLATE, type ChatMessage, Tokenizer, renderChat } from '../src/tokenizer';
import { llama2Files, qwen3Files, tokenizerOf } from './tokenizer-corpus';

const conversation: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Hi!' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: 'Count to 3.' },
];

describe('chat templates', () => {
  it('renders the model\'s own template (Qwen3) with its options', () => {
    const qwen = tokenizerOf(qwen3Files());
    expect(qwen.vocab.chatTemplate).toContain('<|im_start|>');
    expect(qwen.applyChatTemplate(conversation)).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n' +
      '<|im_start|>user\nCount to 3.<|im_end|>\n<|im_start|>assistant\n');
    expect(qwen.applyChatTemplate(conversation, { variables: { enable_thinking: false } }))
      .toMatch(/<\|im_start\|>assistant\n<think>\n\n<\/think>\n\n$/);
    expect(qwen.applyChatTemplate(conversation, { addGenerationPrompt: false })).toMatch(/Count to 3\.<\|im_end\|>\n$/);
  });

  it('encodes a chat prompt with its control tokens as single tokens', () => {
    const qwen = tokenizerOf(qwen3Files());
    const ids = qwen.encodeChat([{ role: 'user', content: 'Hi' }]);
    const imStart = qwen.tokenId('<|im_start|>')!;
    const imEnd = qwen.tokenId('<|im_end|>')!;
    expect(ids.filter((id) => id === imStart)).toHaveLength(2);
    expect(ids.filter((id) => id === imEnd)).toHaveLength(1);
    expect(qwen.decode(ids, { special: true })).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('falls back to ChatML by default, or to Llama-2 when asked, for a model without a template', () => {
    const llama = tokenizerOf(llama2Files());
    expect(llama.vocab.chatTemplate).toBeUndefined();
    expect(llama.applyChatTemplate(conversation.slice(1, 2))).toBe('<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n');
    expect(llama.applyChatTemplate(conversation, { fallback: 'llama2' })).toBe(
      '<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi! [/INST] Hello. </s><s>[INST] Count to 3. [/INST]');
    // The template writes "<s>" itself: one BOS, not two.
    const ids = llama.encodeChat(conversation, { fallback: 'llama2' });
    expect(ids.filter((id) => id === llama.bosId)).toHaveLength(2);
    expect(ids[0]).toBe(llama.bosId);
    expect(ids[1]).not.toBe(llama.bosId);
  });

  it('takes the template from GGUF metadata, bos_token and eos_token from the vocabulary', () => {
    const template = '{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}';
    const t = Tokenizer.fromGGUFMetadata({
      'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.tokens': ['<unk>', '<s>', '</s>', '▁a'],
      'tokenizer.ggml.token_type': [2, 3, 3, 1], 'tokenizer.chat_template': template,
    });
    expect(t.applyChatTemplate([{ role: 'user', content: 'a' }])).toBe('<s>[user]a</s>');
    expect(t.applyChatTemplate([{ role: 'user', content: 'a' }], { template: CHATML_TEMPLATE, addGenerationPrompt: false }))
      .toBe('<|im_start|>user\na<|im_end|>\n');
  });

  it('reports template errors, including raise_exception, clearly', () => {
    expect(() => renderChat(undefined, [{ role: 'assistant', content: 'x' }], { fallback: 'llama2' }))
      .toThrow(/rendering failed: .*Conversation roles must alternate/);
    expect(() => renderChat('{% for %}', [])).toThrow(/chat template: cannot parse it/);
  });
});
