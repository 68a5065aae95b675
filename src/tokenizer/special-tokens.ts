// What llama.cpp infers about special tokens beyond what the file states (llama_vocab::impl::load):
// end-of-turn and fill-in-the-middle tokens found by their text and forced to CONTROL, the set of
// end-of-generation tokens, and a few per-model attribute fixes. Reproduced because they change
// how text is split around special tokens and what decoding prints.

import { TokenAttr } from './token-types';

export interface SpecialTokenIds {
  bos?: number;
  eos?: number;
  eot?: number;
  eom?: number;
  unk?: number;
  sep?: number;
  pad?: number;
  mask?: number;
  fimPre?: number;
  fimSuf?: number;
  fimMid?: number;
  fimPad?: number;
  fimRep?: number;
  fimSep?: number;
}

/** Roles found by token text when the file does not give their id, in llama.cpp's order. */
const DETECTED_BY_TEXT: [keyof SpecialTokenIds, readonly string[]][] = [
  ['eot', ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]',
    '<｜end▁of▁sentence｜>', '<end_of_utterance>']],
  ['eom', ['<|eom_id|>']],
  ['fimPre', ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>']],
  ['fimSuf', ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>']],
  ['fimMid', ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>']],
  ['fimPad', ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]']],
  ['fimRep', ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>']],
  ['fimSep', ['<|file_sep|>']],
];

/** Texts that end generation (llama.cpp's list, "determined based on the token text"). */
const END_OF_GENERATION = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>', '<|endoftext|>',
  '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>', '<eos>', '<turn|>',
  '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~[',
]);

/** gpt-oss: always printed, so user-defined rather than control. */
const ALWAYS_RENDERED = new Set(['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>']);

/**
 * Fills roles the file left out, adjusts `attrs` in place, and returns the end-of-generation ids.
 * Where several tokens fit one role, llama.cpp takes whichever its hash map yields first; here the
 * lowest id wins (real vocabularies have one candidate per role).
 */
export function inferSpecialTokens(tokens: readonly string[], attrs: Uint16Array, ids: SpecialTokenIds,
  isCanonical: (id: number) => boolean): Set<number> {
  const markControl = (id: number) => { attrs[id]! |= TokenAttr.CONTROL; };

  for (let id = 0; id < tokens.length; id++) {
    if (!isCanonical(id)) continue;
    for (const [role, texts] of DETECTED_BY_TEXT) {
      if (ids[role] === undefined && texts.includes(tokens[id]!)) {
        ids[role] = id;
        markControl(id);
      }
    }
  }

  const eog = new Set<number>();
  for (const role of ['fimPad', 'fimRep', 'fimSep'] as const) if (ids[role] !== undefined) eog.add(ids[role]);
  for (let id = 0; id < tokens.length; id++) {
    if (!isCanonical(id)) continue;
    if (END_OF_GENERATION.has(tokens[id]!)) {
      eog.add(id);
      markControl(id);
    }
  }
  for (let id = 0; id < tokens.length; id++) {
    if (isCanonical(id) && ALWAYS_RENDERED.has(tokens[id]!)) attrs[id] = TokenAttr.USER_DEFINED;
  }
  for (const role of ['eos', 'eot', 'eom'] as const) if (ids[role] !== undefined) eog.add(ids[role]);

  // gpt-oss and solar-open: "<|end|>" ends a message, not the generation.
  const eogText = (text: string) => [...eog].find((id) => tokens[id] === text);
  const endId = eogText('<|end|>');
  const hasCall = eogText('<|call|>') !== undefined || eogText('<|calls|>') !== undefined;
  if (endId !== undefined && hasCall && (eogText('<|return|>') !== undefined || eogText('<|flush|>') !== undefined)) {
    eog.delete(endId);
    attrs[endId] = TokenAttr.USER_DEFINED;
  }
  // Gemma 4 and PaddleOCR: "</s>" is ordinary text there.
  const closeS = eogText('</s>');
  if (closeS !== undefined && eogText('<|tool_response>') !== undefined) {
    eog.delete(closeS);
    attrs[closeS] = TokenAttr.NORMAL;
  }
  return eog;
}

/**
 * Per-model strip attributes llama.cpp sets by name (phi-3: special tokens swallow the spaces after
 * them; jina-v2 and modern-bert: the mask token swallows the spaces before it).
 */
export function applyStripQuirks(attrs: Uint16Array, specialIds: readonly number[],
  idOf: (text: string) => number | undefined, names: { model?: string; pre?: string; arch?: string }): void {
  const set = (text: string, bit: number, on: boolean) => {
    const id = idOf(text);
    if (id !== undefined) attrs[id] = on ? attrs[id]! | bit : attrs[id]! & ~bit;
  };
  const model = (names.model ?? '').toLowerCase();
  const pre = names.pre ?? '';
  const arch = names.arch ?? '';
  if (['jina-v2-de', 'jina-v2-es', 'jina-v2-code'].some((s) => pre.includes(s)) || ['nomic-bert-moe', 'jina-bert-v3'].some((s) => arch.includes(s))) {
    set('<mask>', TokenAttr.LSTRIP, true);
  } else if (model.includes('phi-3') || model.includes('phi3')) {
    for (const id of specialIds) attrs[id]! |= TokenAttr.RSTRIP;
    set('</s>', TokenAttr.RSTRIP, true);
    for (const t of ['<unk>', '<s>', '<|endoftext|>']) set(t, TokenAttr.RSTRIP, false);
  } else if (model.includes('modern-bert')) {
    set('[MASK]', TokenAttr.LSTRIP, true);
  }
}
