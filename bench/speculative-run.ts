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

/**
 * One row. `paired`: also run each prompt plainly next to it, and report the speed as a ratio of
 * those runs (speculative rows always are; a plain row paired with plain shows the pairing's noise).
 * `family`: for the sweep's summary, the family of rows this one belongs to and its fixed draft size.
 */
export interface BenchConfig { label: string; speculative?: SpeculativeRequest; sampled?: boolean; paired?: boolean; family?: { name: string; nodes: number | 'auto' } }

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

const ETAS = [0, 0.1, 0.3, 0.5, 0.7, 0.9];
const nodes = (n: number) => `${n} node${n === 1 ? '' : 's'}`;

/**
 * The sweeps of ALGORITHMS.md's tests for A7 and A8 (greedy): speed against a fixed draft size
 * beside what the sizing chose (A7: "n* within 5% of the measured best"), and tokens per step and
 * speed against the confidence threshold η (A8 rule 1) and the path-value threshold τ (rule 2).
 * Software adapters pay for every row, so Token Recycling's 32- and 63-node trees need `big`.
 */
export function sweepConfigs(big: boolean): BenchConfig[] {
  const recycling = [1, 2, 4, 8, 16, ...(big ? [32, 63] : [])];
  return [
    { label: 'plain greedy decoding' },
    { label: 'plain greedy decoding, paired with plain (the pairing\'s own noise)', paired: true },
    ...recycling.map((n) => ({ label: `Token Recycling, ${nodes(n)}`, speculative: { strategy: 'token-recycling', maxNodes: n, sizing: 'fixed' }, family: { name: 'Token Recycling', nodes: n } }) as const),
    { label: 'Token Recycling, sized for this device (A7)', speculative: { strategy: 'token-recycling', maxNodes: recycling.at(-1), sizing: 'auto' }, family: { name: 'Token Recycling', nodes: 'auto' } },
    ...[1, 2, 4, 8].map((n) => ({ label: `prompt lookup, ${nodes(n)}`, speculative: { strategy: 'prompt-lookup', maxNodes: n, sizing: 'fixed' }, family: { name: 'prompt lookup', nodes: n } }) as const),
    { label: 'prompt lookup, sized for this device (A7)', speculative: { strategy: 'prompt-lookup', maxNodes: 8, sizing: 'auto' }, family: { name: 'prompt lookup', nodes: 'auto' } },
    ...ETAS.map((eta) => ({ label: `draft model, chain of 4, η = ${eta} (A8)`, speculative: { strategy: 'draft-model', draftLength: 4, branching: 1, maxNodes: 4, sizing: 'fixed', minConfidence: eta } }) as const),
    ...ETAS.map((eta) => ({ label: `layer skipping (3 tokens), η = ${eta} (A8)`, speculative: { strategy: 'layer-skip', draftLength: 3, sizing: 'fixed', minConfidence: eta } }) as const),
    ...[0, 0.02, 0.1, 0.3].map((tau) => ({ label: `draft model, DySpec tree of 16, τ = ${tau} (A8 rule 2)`, speculative: { strategy: 'draft-model', draftLength: 4, branching: 4, maxNodes: 16, sizing: 'fixed', minPathValue: tau } }) as const),
  ];
}

/**
 * A7's check for each family of the sweep: the sized row's speed against the best of its fixed
 * sizes and of plain decoding (size 0, 1.00x by definition), as markdown lines.
 */
export function sizingSummary(configs: BenchConfig[], ratios: number[]): string[] {
  const families = new Map<string, { best: { nodes: number; ratio: number }; sized?: number }>();
  configs.forEach((config, i) => {
    if (!config.family) return;
    const family = families.get(config.family.name) ?? { best: { nodes: 0, ratio: 1 } };
    families.set(config.family.name, family);
    if (config.family.nodes === 'auto') family.sized = ratios[i];
    else if (ratios[i] > family.best.ratio) family.best = { nodes: config.family.nodes, ratio: ratios[i] };
  });
  return [...families].filter(([, f]) => f.sized !== undefined).map(([name, { best, sized }]) =>
    `- ${name}: the best fixed size is ${best.nodes === 0 ? '0 (plain decoding)' : nodes(best.nodes)} at ${best.ratio.toFixed(2)}x; sized, ${sized!.toFixed(2)}x: ${((sized! / best.ratio) * 100).toFixed(0)}% of the best (${sized! >= 0.95 * best.ratio ? 'within' : '**not** within'} 5%).`);
}

export interface SpeculativeBenchReport {
  /** Table rows, markdown. */
  rows: string[];
  /** False when a greedy strategy's tokens differed from plain decoding's. */
  lossless: boolean;
  /** Each row's speed over plain decoding's, in config order. */
  ratios: number[];
}

/** Runs every configuration on an engine that has the target and the draft loaded. */
export async function runSpeculativeBench(engine: Engine, tokens: number, configs: BenchConfig[], log: (row: string) => void): Promise<SpeculativeBenchReport> {
  const rows: string[] = [];
  const ratios: number[] = [];
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
  for (const config of configs) {
    // A software adapter's speed drifts by 10% over a run, as much as some rows differ. So every
    // speculative row is paired: each prompt also runs plainly right next to it (plain first on
    // even prompts, last on odd ones), and the row's speed is a ratio of that paired plain speed.
    const results: CompletionResult[] = [];
    const paired: CompletionResult[] = [];
    const pair = !!config.speculative || !!config.paired;
    for (const [i, prompt] of PROMPTS.entries()) {
      if (pair && i % 2 === 0) paired.push(await run(prompt, config));
      results.push(await run(prompt, config, config.speculative));
      if (pair && i % 2 === 1) paired.push(await run(prompt, config));
    }
    const decodeMs = results.reduce((s, r) => s + r.stats.decodeMs, 0);
    const generated = results.reduce((s, r) => s + r.stats.generatedTokens - 1, 0);
    const speed = rate(results);
    const baseline = config.sampled ? plain.sampled : plain.greedy;
    if (!pair && !baseline.rate) {
      baseline.rate = speed;
      baseline.tokens = results.map((r) => r.tokens);
    }
    const ratio = speed / (paired.length ? rate(paired) : baseline.rate);
    ratios.push(ratio);
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
  return { rows, lossless, ratios };
}

export function speculativeTable(options: { info: ModelInfo; runtime: string; command: string; tokens: number; modelPath: string; draftPath: string; rows: string[]; summary?: string[] }): string {
  const { info, runtime, command, tokens, modelPath, draftPath, rows, summary } = options;
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
${summary?.length ? `\nHardware-aware sizing (A7) against the sweep:\n\n${summary.join('\n')}\n` : ''}`;
}
