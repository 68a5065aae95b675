// The VLM on its held-out set (models/vlm-eval), in Node (Dawn): accuracy per question type next
// to PyTorch's (the answers committed with the set), how often the answer is PyTorch's word for
// word, and the time of the vision tower and of the prefill (BOS + image + question) per question.
// Writes bench/results/vlm-<adapter>.md.
//
//   npx tsx bench/vlm.ts        # about 10 minutes on SwiftShader with 2 cores
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Session } from '../src/engine/session';
import { readGGUF } from '../src/formats/gguf-reader';
import { requestGpu } from '../src/gpu';
import { Decoder } from '../src/models/decoder';
import { VisionEncoder } from '../src/models/vision';
import { Tokenizer } from '../src/tokenizer';
import { answerAboutImage, loadVlmEvalSet } from '../test/vlm-eval';
import { adapterSlug } from './model-report';

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.XDG_RUNTIME_DIR ??= '/tmp';

const gpu = await requestGpu();
const encoder = await VisionEncoder.load(gpu, await readGGUF(new Uint8Array(readFileSync('models/vlm-mmproj.f16.gguf'))));
const lm = await readGGUF(new Uint8Array(readFileSync('models/vlm.f16.gguf')));
const decoder = await Decoder.load(gpu, lm);
const tokenizer = Tokenizer.fromGGUFMetadata(lm);
const set = loadVlmEvalSet();
const session = new Session(gpu, decoder, { contextLength: 256, prefillChunk: 64 });

const started = performance.now();
const byType = new Map<string, { ours: number; pytorch: number; same: number; total: number }>();
let encodeMs = 0, answerMs = 0;
for (const q of set.questions) {
  const t0 = performance.now();
  await encoder.encode(set.image(q.image)); // timed alone; answerAboutImage encodes again
  encodeMs += performance.now() - t0;
  const t1 = performance.now();
  const got = await answerAboutImage({ encoder, decoder, tokenizer, session }, set.image(q.image), set.prompt(q.question));
  answerMs += performance.now() - t1;
  const row = byType.get(q.type) ?? { ours: 0, pytorch: 0, same: 0, total: 0 };
  row.ours += Number(got === q.answer);
  row.pytorch += Number(q.pytorch === q.answer);
  row.same += Number(got === q.pytorch);
  row.total++;
  byType.set(q.type, row);
}
session.destroy();
const percent = (a: number, b: number) => `${((a / b) * 100).toFixed(1)}%`;
const total = [...byType.values()].reduce((a, r) => ({ ours: a.ours + r.ours, pytorch: a.pytorch + r.pytorch, same: a.same + r.same, total: a.total + r.total }), { ours: 0, pytorch: 0, same: 0, total: 0 });
const rows = [...byType.entries(), ['all', total] as const].map(([type, r]) => `| ${type} | ${r.total} | ${percent(r.ours, r.total)} | ${percent(r.pytorch, r.total)} | ${percent(r.same, r.total)} |`);
const n = set.questions.length;
const markdown = `# The VLM on its held-out set, ${gpu.adapterDescription}

Measured ${new Date().toISOString().slice(0, 10)} with \`npx tsx bench/vlm.ts\`, Node ${process.version} + Dawn, ${availableParallelism()} CPU cores, ${((performance.now() - started) / 60000).toFixed(0)} minutes.
Models: \`models/vlm-mmproj.f16.gguf\` (a ${encoder.config.blocks}-block ViT, ${encoder.config.patches} patches) and \`models/vlm.f16.gguf\`; ${n} questions
on ${new Set(set.questions.map((q) => q.image)).size} images (models/vlm-eval). Greedy answers of at most 8 tokens, as PyTorch's were made.

| type | questions | accuracy | PyTorch's accuracy | same answer as PyTorch |
|---|---:|---:|---:|---:|
${rows.join('\n')}

Time per question: vision tower ${(encodeMs / n).toFixed(0)} ms; tower, prefill of BOS + ${encoder.config.patches} image rows + the question, and the answer together ${(answerMs / n).toFixed(0)} ms.
`;
const out = `bench/results/vlm-${adapterSlug(gpu.adapterDescription)}.md`;
writeFileSync(out, markdown);
console.log(markdown);
console.log(`wrote ${out}`);
encoder.destroy();
decoder.destroy();
gpu.destroy();
