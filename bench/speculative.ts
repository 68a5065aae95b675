// Speculative decoding on the trained target model, in Node (Dawn): for each strategy, mean
// tokens per verify step (MAT, bonus included), draft acceptance, and decode tokens/s as a ratio
// of plain greedy decoding measured in the same run, on the same prompts. Every strategy's tokens
// are checked to equal plain decoding's; speculative sampling is compared in speed with plain
// sampling. Writes bench/results/speculative-<adapter>.md.
//
//   npx tsx bench/speculative.ts [--tokens=96] [--model=models/target.q8_0.gguf] [--big]
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createEngine } from '../src/engine/engine';
import type { CompletionResult, SpeculativeRequest } from '../src/engine/engine-core';
import { adapterSlug } from './model-report';
import { rowsFromTable, speculativePlot } from './speculative-plot';

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const tokens = Number(arg('tokens', '96'));
const modelPath = arg('model', 'models/target.q8_0.gguf');
const draftPath = arg('draft', 'models/draft.q8_0.gguf');

// Openings of held-out chapters (every 20th chapter is held out of training; tools/train/corpus.py).
const PROMPTS = [
  'And the LORD spake unto Moses, saying,',
  'Then answered Jesus and said unto them,',
  'And it came to pass, when the king heard',
  'Praise ye the LORD. O give thanks unto the LORD; for he is good:',
];

// Software adapters pay for every verified row as much as for the first, so the big Token
// Recycling tree (63 nodes) is left to real GPUs (--big).
const big = process.argv.includes('--big');
const SAMPLED = { temperature: 0.7, topK: 40, seed: 1 };
const configs: Array<{ label: string; speculative?: SpeculativeRequest; sampled?: boolean }> = [
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
  { label: 'draft model tree, sized for this device (A7)', speculative: { strategy: 'draft-model', draftLength: 4, branching: 4, maxNodes: 16, sizing: 'auto' } },
  { label: 'plain greedy decoding, again (drift over the run)' },
  { label: 'plain sampling (T 0.7, top-k 40)', sampled: true },
  { label: 'draft model, chain of 4, speculative sampling', speculative: { strategy: 'draft-model', draftLength: 4, branching: 1, maxNodes: 4, sizing: 'fixed' }, sampled: true },
  { label: 'draft model, DySpec tree of 16, speculative sampling (RSD)', speculative: { strategy: 'draft-model', draftLength: 4, branching: 4, maxNodes: 16, sizing: 'fixed' }, sampled: true },
  { label: 'draft model tree, speculative sampling, sized for this device (A7)', speculative: { strategy: 'draft-model', draftLength: 4, branching: 4, maxNodes: 16, sizing: 'auto' }, sampled: true },
];

const engine = createEngine({ worker: false });
const info = await engine.load(readFileSync(modelPath), { prefillChunk: 64 });
await engine.loadDraft(readFileSync(draftPath));
const rows: string[] = [];
const plain = { greedy: { rate: 0, tokens: [] as number[][] }, sampled: { rate: 0, tokens: [] as number[][] } };
for (const config of configs) {
  const results: CompletionResult[] = [];
  for (const prompt of PROMPTS) {
    const request = { prompt, maxTokens: tokens, ...(config.sampled ? SAMPLED : { temperature: 0 }), speculative: config.speculative };
    const session = await engine.createSession();
    const result = await engine.generate({ ...request, session }).result;
    await engine.deleteSession(session); // a run that kept 70 sessions' caches alive slowed down as it went
    results.push(result);
  }
  const decodeMs = results.reduce((s, r) => s + r.stats.decodeMs, 0);
  const generated = results.reduce((s, r) => s + r.stats.generatedTokens - 1, 0);
  const rate = (generated / decodeMs) * 1000;
  const baseline = config.sampled ? plain.sampled : plain.greedy;
  if (!config.speculative && !baseline.rate) {
    baseline.rate = rate;
    baseline.tokens = results.map((r) => r.tokens);
  }
  // Sampling is lossless in distribution, not token by token: the same seed draws differently.
  const same = config.sampled ? 'in distribution' : results.every((r, i) => r.tokens.join() === baseline.tokens[i].join()) ? 'yes' : '**no**';
  const spec = results.map((r) => r.stats.speculative).filter((s) => s !== undefined);
  const steps = spec.reduce((s, x) => s + x.steps, 0);
  const mat = spec.length ? results.reduce((s, r) => s + r.stats.generatedTokens, 0) / steps : 1;
  const drafted = spec.reduce((s, x) => s + x.drafted, 0);
  const accepted = spec.reduce((s, x) => s + x.accepted, 0);
  const sizes = spec.length ? spec.map((x) => x.draftSize).join(', ') : '-';
  const sizingMs = spec.reduce((s, x) => s + x.sizingMs, 0);
  const msPerStep = decodeMs / (spec.length ? steps : generated);
  rows.push(`| ${config.label} | ${mat.toFixed(2)} | ${drafted ? `${((accepted / drafted) * 100).toFixed(1)}%` : '-'} | ${sizes} | ${msPerStep.toFixed(2)} | ${config.speculative?.sizing === 'auto' ? sizingMs.toFixed(0) : '-'} | ${rate.toFixed(2)} | ${(rate / baseline.rate).toFixed(2)}x | ${same} |`);
  console.log(rows.at(-1));
}
await engine.dispose();

const slug = adapterSlug(info.adapter);
const table = `# Speculative decoding on ${info.adapter}

Measured ${new Date().toISOString().slice(0, 10)} with \`npx tsx bench/speculative.ts --tokens=${tokens}${big ? " --big" : ""}\`, Node ${process.version} + Dawn, ${availableParallelism()} CPU cores.
Target: \`${modelPath}\` (${info.name}, ${info.layers} layers, hidden ${info.hidden}); draft: \`${draftPath}\`. Greedy decoding of
${tokens} tokens after each of ${PROMPTS.length} prompts (openings of held-out chapters), a fresh session per prompt; the sampled rows draw at
temperature 0.7, top-k 40. Tokens per step: tokens emitted per target forward pass, the bonus token included (MAT). Draft size:
the draft nodes per step at the end of each prompt's generation (the sizing's last choice; 0 = speculation switched off). Ms per
step: decode time over target passes (the first token's aside). Sizing ms: time spent measuring verify costs, over all prompts. Speed:
decode tokens/s (tokens after the first over the time after the first) over all prompts, as a ratio of plain decoding (greedy or
sampled, as the row) in the same run.

| strategy | tokens per step | draft acceptance | draft size | ms per step | sizing ms | decode tok/s | vs plain | same output as plain |
|---|---:|---:|---:|---:|---:|---:|---:|---|
${rows.join('\n')}
`;
writeFileSync(`bench/results/speculative-${slug}.md`, table);
writeFileSync(`bench/results/speculative-${slug}.svg`, speculativePlot(rowsFromTable(table), `Speculative decoding on ${info.adapter}: decode speed against plain decoding`));
console.log(`\nwrote bench/results/speculative-${slug}.md and .svg`);
