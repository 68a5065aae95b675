// Speculative decoding on the trained target model, in Node (Dawn): for each strategy, mean
// tokens per verify step (MAT, bonus included), draft acceptance, and decode tokens/s as a ratio
// of plain greedy decoding measured in the same run, on the same prompts. Every strategy's tokens
// are checked to equal plain decoding's. Writes bench/results/speculative-<adapter>.md.
//
//   npx tsx bench/speculative.ts [--tokens=96] [--model=models/target.q8_0.gguf]
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createEngine } from '../src/engine/engine';
import type { CompletionResult, SpeculativeRequest } from '../src/engine/engine-core';
import { adapterSlug } from './model-report';

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

const configs: Array<{ label: string; speculative?: SpeculativeRequest }> = [
  { label: 'plain greedy decoding' },
  { label: 'prompt lookup', speculative: { strategy: 'prompt-lookup', sizing: 'fixed' } },
  { label: 'Token Recycling, 63 nodes, cold (first pass over the prompts)', speculative: { strategy: 'token-recycling', maxNodes: 63, sizing: 'fixed' } },
  { label: 'Token Recycling, 63 nodes, hot (second pass)', speculative: { strategy: 'token-recycling', maxNodes: 63, sizing: 'fixed' } },
  { label: 'Token Recycling, 16 nodes', speculative: { strategy: 'token-recycling', maxNodes: 16, sizing: 'fixed' } },
  { label: 'draft model (4 tokens)', speculative: { strategy: 'draft-model', draftLength: 4, sizing: 'fixed' } },
  { label: 'draft model (2 tokens)', speculative: { strategy: 'draft-model', draftLength: 2, sizing: 'fixed' } },
  { label: 'layer skipping (3 tokens)', speculative: { strategy: 'layer-skip', draftLength: 3, sizing: 'fixed' } },
  { label: 'Token Recycling, sized for this device (A7)', speculative: { strategy: 'token-recycling', maxNodes: 63, sizing: 'auto' } },
];

const engine = createEngine({ worker: false });
const info = await engine.load(readFileSync(modelPath), { prefillChunk: 64 });
await engine.loadDraft(readFileSync(draftPath));
const rows: string[] = [];
let plainRate = 0;
let plainTokens: number[][] = [];
for (const config of configs) {
  const results: CompletionResult[] = [];
  for (const prompt of PROMPTS) {
    const request = { prompt, maxTokens: tokens, temperature: 0, speculative: config.speculative };
    const result = await engine.generate({ ...request, session: await engine.createSession() }).result;
    results.push(result);
  }
  const decodeMs = results.reduce((s, r) => s + r.stats.decodeMs, 0);
  const generated = results.reduce((s, r) => s + r.stats.generatedTokens - 1, 0);
  const rate = (generated / decodeMs) * 1000;
  if (!config.speculative) {
    plainRate = rate;
    plainTokens = results.map((r) => r.tokens);
  }
  const same = results.every((r, i) => r.tokens.join() === plainTokens[i].join());
  const spec = results.map((r) => r.stats.speculative).filter((s) => s !== undefined);
  const steps = spec.reduce((s, x) => s + x.steps, 0);
  const mat = spec.length ? results.reduce((s, r) => s + r.stats.generatedTokens, 0) / steps : 1;
  const drafted = spec.reduce((s, x) => s + x.drafted, 0);
  const accepted = spec.reduce((s, x) => s + x.accepted, 0);
  rows.push(`| ${config.label} | ${mat.toFixed(2)} | ${drafted ? `${((accepted / drafted) * 100).toFixed(1)}%` : '-'} | ${rate.toFixed(1)} | ${(rate / plainRate).toFixed(2)}x | ${same ? 'yes' : '**no**'} |`);
  console.log(rows.at(-1));
}
await engine.dispose();

const slug = adapterSlug(info.adapter);
const table = `# Speculative decoding on ${info.adapter}

Measured ${new Date().toISOString().slice(0, 10)} with \`npx tsx bench/speculative.ts --tokens=${tokens}\`, Node ${process.version} + Dawn, ${availableParallelism()} CPU cores.
Target: \`${modelPath}\` (${info.name}, ${info.layers} layers, hidden ${info.hidden}); draft: \`${draftPath}\`. Greedy decoding of
${tokens} tokens after each of ${PROMPTS.length} prompts (openings of held-out chapters), a fresh session per prompt. Tokens per
step: tokens emitted per target forward pass, the bonus token included (MAT). Speed: decode tokens/s (tokens after the first over
the time after the first) over all prompts, as a ratio of plain decoding in the same run.

| strategy | tokens per step | draft acceptance | decode tok/s | vs plain | same tokens as plain |
|---|---:|---:|---:|---:|---|
${rows.join('\n')}
`;
writeFileSync(`bench/results/speculative-${slug}.md`, table);
console.log(`\nwrote bench/results/speculative-${slug}.md`);
