// The speculative-decoding benchmark itself, the same in Node (bench/speculative.ts) and in a
// Chromium page (bench/speculative-page.ts): for each strategy, mean tokens per verify step (MAT,
// bonus included), draft acceptance, and decode tokens/s as a ratio of plain decoding measured in
// the same run, on the same prompts. Every greedy strategy's tokens are checked to equal plain
// decoding's; speculative sampling is compared in speed with plain sampling.
import type { Engine } from '../src/engine/engine';
import type { CompletionResult, ModelInfo, SpeculativeRequest } from '../src/engine/engine-core';

// Openings of held-out chapters (every 20th chapter is held out of training; tools/train/corpus.py).
export const PROMPTS = [
  'And the LORD spake unto Moses, saying,',
  'Then answered Jesus and said unto them,',
  'And it came to pass, when the king heard',
  'Praise ye the LORD. O give thanks unto the LORD; for he is good:',
];

const SAMPLED = { temperature: 0.7, topK: 40, seed: 1 };

interface BenchConfig { label: string; speculative?: SpeculativeRequest; sampled?: boolean }

/** Software adapters pay for every verified row as much as for the first, so the big Token Recycling tree (63 nodes) is left to real GPUs (big). */
export function benchConfigs(big: boolean): BenchConfig[] {
  return [
    { label: 'plain greedy decoding' },
    { label: 'prompt lookup', speculative: { strategy: 'prompt-lookup', sizing: 'fixed' } },
    ...(big ? [
      { label: 'Token Recycling, 63 nodes, cold (first pass over the prompts)', speculative: { strategy: 'token-recycling', maxNodes: 63, sizing: 'fixed' } },
      { label: 'Token Recycling, 63 nodes, hot (second pass)', speculative: { strategy: 'token-recycling', maxNodes: 63, sizing: 'fixed' } },
    ] as const : []),
    { label: 'Token Recycling, 16 nodes', speculative: { strategy: 'token-recycling', maxNodes: 16, sizing: 'fixed' } },
    { label: 'draft model, chain of 4', speculative: { strategy: 'draft-model', draftLength: 4, branching: 1, maxNodes: 4, sizing: 'fixed' } },
    { label: 'draft model, chain of 4, stop below confidence 0.3 (A8)', speculative: { strategy: 'draft-model', draftLength: 4, branching: 1, maxNodes: 4, sizing: 'fixed', minConfidence: 0.3 } },
    { label: 'draft model, DySpec tree (16 nodes, 4 deep, 4 children per node)', speculative: { strategy: 'draft-model', draftLength: 4, branching: 4, maxNodes: 16, sizing: 'fixed' } },
    { label: 'layer skipping (3 tokens)', speculative: { strategy: 'layer-skip', draftLength: 3, sizing: 'fixed' } },
    { label: 'Token Recycling, sized for this device (A7)', speculative: { strategy: 'token-recycling', maxNodes: 63, sizing: 'auto' } },
    { label: 'prompt lookup, sized for this device (A7)', speculative: { strategy: 'prompt-lookup', sizing: 'auto' } },
    { label: 'layer skipping, sized for this device (A7)', speculative: { strategy: 'layer-skip', draftLength: 3, sizing: 'auto' } },
    { label: 'draft model chain, sized for this device (A7)', speculative: { strategy: 'draft-model', draftLength: 4, branching: 1, maxNodes: 4, sizing: 'auto' } },
    { label: 'draft model tree, sized for this device (A7)', speculative: { strategy: 'draft-model', draftLength: 4, branching: 4, maxNodes: 16, sizing: 'auto' } },
    { label: 'plain greedy decoding, again (drift over the run)' },
    { label: 'plain sampling (T 0.7, top-k 40)', sampled: true },
    { label: 'draft model, chain of 4, speculative sampling', speculative: { strategy: 'draft-model', draftLength: 4, branching: 1, maxNodes: 4, sizing: 'fixed' }, sampled: true },
    { label: 'draft model, DySpec tree of 16, speculative sampling (RSD)', speculative: { strategy: 'draft-model', draftLength: 4, branching: 4, maxNodes: 16, sizing: 'fixed' }, sampled: true },
    { label: 'draft model tree, speculative sampling, sized for this device (A7)', speculative: { strategy: 'draft-model', draftLength: 4, branching: 4, maxNodes: 16, sizing: 'auto' }, sampled: true },
  ];
}

export interface SpeculativeBenchReport {
  /** Table rows, markdown. */
  rows: string[];
  /** False when a greedy strategy's tokens differed from plain decoding's. */
  lossless: boolean;
}

/** Runs every configuration on an engine that has the target and the draft loaded. */
export async function runSpeculativeBench(engine: Engine, tokens: number, big: boolean, log: (row: string) => void): Promise<SpeculativeBenchReport> {
  const rows: string[] = [];
  let lossless = true;
  const plain = { greedy: { rate: 0, tokens: [] as number[][] }, sampled: { rate: 0, tokens: [] as number[][] } };
  // Warm-up, not measured: the first generation compiles the decode pipelines, which would
  // otherwise slow the plain baseline and flatter every row after it.
  for (const sampling of [{ temperature: 0 }, SAMPLED]) {
    const session = await engine.createSession();
    await engine.generate({ prompt: PROMPTS[0], maxTokens: tokens, ...sampling, session }).result;
    await engine.deleteSession(session);
  }
  const run = async (prompt: string, config: BenchConfig, speculative?: SpeculativeRequest) => {
    const request = { prompt, maxTokens: tokens, ...(config.sampled ? SAMPLED : { temperature: 0 }), speculative };
    const session = await engine.createSession();
    const result = await engine.generate({ ...request, session }).result;
    await engine.deleteSession(session); // a run that kept 70 sessions' caches alive slowed down as it went
    return result;
  };
  const rate = (results: CompletionResult[]) =>
    (results.reduce((s, r) => s + r.stats.generatedTokens - 1, 0) / results.reduce((s, r) => s + r.stats.decodeMs, 0)) * 1000;
  for (const config of benchConfigs(big)) {
    // A software adapter's speed drifts by 10% over a run, as much as some rows differ. So every
    // speculative row is paired: each prompt also runs plainly right next to it (plain first on
    // even prompts, last on odd ones), and the row's speed is a ratio of that paired plain speed.
    const results: CompletionResult[] = [];
    const paired: CompletionResult[] = [];
    for (const [i, prompt] of PROMPTS.entries()) {
      if (config.speculative && i % 2 === 0) paired.push(await run(prompt, config));
      results.push(await run(prompt, config, config.speculative));
      if (config.speculative && i % 2 === 1) paired.push(await run(prompt, config));
    }
    const decodeMs = results.reduce((s, r) => s + r.stats.decodeMs, 0);
    const generated = results.reduce((s, r) => s + r.stats.generatedTokens - 1, 0);
    const speed = rate(results);
    const baseline = config.sampled ? plain.sampled : plain.greedy;
    if (!config.speculative && !baseline.rate) {
      baseline.rate = speed;
      baseline.tokens = results.map((r) => r.tokens);
    }
    const ratio = speed / (paired.length ? rate(paired) : baseline.rate);
    // Sampling is lossless in distribution, not token by token: the same seed draws differently.
    const identical = results.every((r, i) => r.tokens.join() === baseline.tokens[i].join());
    if (!config.sampled && !identical) lossless = false;
    const same = config.sampled ? 'in distribution' : identical ? 'yes' : '**no**';
    const spec = results.map((r) => r.stats.speculative).filter((s) => s !== undefined);
    const steps = spec.reduce((s, x) => s + x.steps, 0);
    const mat = spec.length ? results.reduce((s, r) => s + r.stats.generatedTokens, 0) / steps : 1;
    const drafted = spec.reduce((s, x) => s + x.drafted, 0);
    const accepted = spec.reduce((s, x) => s + x.accepted, 0);
    const sizes = spec.length ? spec.map((x) => x.draftSize).join(', ') : '-';
    const sizingMs = spec.reduce((s, x) => s + x.sizingMs, 0);
    const msPerStep = decodeMs / (spec.length ? steps : generated);
    rows.push(`| ${config.label} | ${mat.toFixed(2)} | ${drafted ? `${((accepted / drafted) * 100).toFixed(1)}%` : '-'} | ${sizes} | ${msPerStep.toFixed(2)} | ${config.speculative?.sizing === 'auto' ? sizingMs.toFixed(0) : '-'} | ${speed.toFixed(2)} | ${ratio.toFixed(2)}x | ${same} |`);
    log(rows.at(-1)!);
  }
  return { rows, lossless };
}

export function speculativeTable(options: { info: ModelInfo; runtime: string; command: string; tokens: number; modelPath: string; draftPath: string; rows: string[] }): string {
  const { info, runtime, command, tokens, modelPath, draftPath, rows } = options;
  return `# Speculative decoding on ${info.adapter}, ${runtime.replace(/ .*/, '')}

Measured ${new Date().toISOString().slice(0, 10)} with \`${command}\`, ${runtime}.
Target: \`${modelPath}\` (${info.name}, ${info.layers} layers, hidden ${info.hidden}); draft: \`${draftPath}\`. Greedy decoding of
${tokens} tokens after each of ${PROMPTS.length} prompts (openings of held-out chapters), a fresh session per prompt; the sampled rows draw at
temperature 0.7, top-k 40. Tokens per step: tokens emitted per target forward pass, the bonus token included (MAT). Draft size:
the draft nodes per step at the end of each prompt's generation (the sizing's last choice; 0 = speculation switched off). Ms per
step: decode time over target passes (the first token's aside). Sizing ms: time spent measuring verify costs, over all prompts. Speed:
decode tokens/s (tokens after the first over the time after the first) over all prompts. Vs plain: that speed as a ratio of plain
decoding (greedy or sampled, as the row) of the same prompts, run right next to each speculative prompt (before it on the first and
third, after it on the second and fourth), so that the adapter's drift over the run cancels; the plain rows are a ratio of the first.

| strategy | tokens per step | draft acceptance | draft size | ms per step | sizing ms | decode tok/s | vs plain | same output as plain |
|---|---:|---:|---:|---:|---:|---:|---:|---|
${rows.join('\n')}
`;
}
