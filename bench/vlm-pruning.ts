// Vision-token pruning on the VLM's held-out set (models/vlm-eval), in Node (Dawn): for every
// method and budget, accuracy (and agreement with the unpruned answers) against the image tokens
// the language model reads, with the prefill time and the time to first token as ratios against
// the unpruned run measured in the same process. Writes bench/results/vlm-pruning-<adapter>.md and
// a plot beside it.
//
//   npx tsx bench/vlm-pruning.ts                  # every question; about 1.5 hours on SwiftShader, 2 cores
//   VLM_QUESTIONS=96 npx tsx bench/vlm-pruning.ts  # the first 96 (32 images): the committed results
//   VLM_METHODS=fastv,tome npx tsx bench/vlm-pruning.ts  # only these (VLM_METHODS= : unpruned only), into bench/results/tmp/
//
// Timing: per image, its first question runs from nothing (tower, then BOS + image + question
// through the language model, then the first answer token read back: the time to first token;
// prefill = that minus the tower). Its other questions reuse the image in the KV cache, as a chat
// would, except for FastV and ToDRE, whose pruning reads the question and so runs it afresh.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { availableParallelism } from 'node:os';
import { Session } from '../src/engine/session';
import { type PromptPart, prefillMultimodal } from '../src/engine/vision/prefill';
import { PRUNING_METHODS, type VisionPruning, keptCount } from '../src/engine/vision/pruning';
import { readGGUF } from '../src/formats/gguf-reader';
import { requestGpu } from '../src/gpu';
import { Decoder } from '../src/models/decoder';
import { VisionEncoder } from '../src/models/vision';
import { Tokenizer } from '../src/tokenizer';
import { type VlmQuestion, loadVlmEvalSet } from '../test/vlm-eval';
import { adapterSlug } from './model-report';
import { pointsFromTable, pruningPlot } from './vlm-pruning-plot';

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.XDG_RUNTIME_DIR ??= '/tmp';

const BUDGETS = [72, 36, 18]; // of 144: 1/2, 1/4, 1/8
const MAX_ANSWER = 8;

const gpu = await requestGpu();
const encoder = await VisionEncoder.load(gpu, await readGGUF(new Uint8Array(readFileSync('models/vlm-mmproj.f16.gguf'))));
const lm = await readGGUF(new Uint8Array(readFileSync('models/vlm.f16.gguf')));
const decoder = await Decoder.load(gpu, lm);
const tokenizer = Tokenizer.fromGGUFMetadata(lm);
const set = loadVlmEvalSet();
const questions = set.questions.slice(0, Number(process.env.VLM_QUESTIONS ?? set.questions.length));
const session = new Session(gpu, decoder, { contextLength: 256, prefillChunk: 192 });
const bos = tokenizer.vocab.special.bos ?? 1;
const eos = tokenizer.vocab.special.eos;
const N = encoder.config.patches;

interface Run { label: string; method: string; pruning?: VisionPruning; kept: number; deep?: { kept: number; layer: number }; answers: string[]; ttft: number[]; prefill: number[]; tower: number[] }

const newRun = (pruning?: VisionPruning, label?: string): Run => ({
  label: label ?? (pruning ? `${pruning.method} ${keptCount(pruning.budget, N)}` : 'none'), method: pruning?.method ?? 'none', pruning,
  kept: N, answers: [], ttft: [], prefill: [], tower: [],
});

/**
 * Greedy answers to one image's questions under `run`'s pruning: the first from nothing (timed),
 * the others reusing the image in the cache where the method allows.
 */
async function runImage(run: Run, questions: VlmQuestion[]): Promise<void> {
  const { pruning } = run;
  const questionAware = pruning?.method === 'fastv' || pruning?.method === 'todre';
  let imageEnd = 0;
  for (const [i, q] of questions.entries()) {
    const prompt = tokenizer.encode(set.prompt(q.question), { addSpecial: false });
    const started = performance.now();
    let towerMs = 0;
    if (i > 0 && !questionAware) {
      session.truncate(imageEnd);
      await session.prefill(prompt);
    } else {
      session.truncate(0);
      const parts: PromptPart[] = [{ tokens: [bos] }, { image: set.image(q.image) }, { tokens: questionAware ? prompt : [] }];
      const [image] = await prefillMultimodal(session, encoder, parts, pruning);
      towerMs = image.encodeMs;
      run.kept = pruning?.method === 'fastv' ? N : image.kept;
      run.deep = image.deep && { kept: image.deep.kept, layer: image.deep.layer };
      imageEnd = session.length;
      if (!questionAware) await session.prefill(prompt);
    }
    // The first answer token: the prompt's last logits, read back.
    let token = await greedyFromLogits();
    if (i === 0) {
      const ms = performance.now() - started;
      run.ttft.push(ms);
      run.prefill.push(ms - towerMs);
      run.tower.push(towerMs);
    }
    const generated: number[] = [];
    while (token !== eos && generated.length < MAX_ANSWER) {
      generated.push(token);
      if (generated.length < MAX_ANSWER) token = await session.feedGreedy([token]);
    }
    run.answers.push(tokenizer.decode(generated).trim());
  }
}

async function greedyFromLogits(): Promise<number> {
  const logits = await gpu.readF32(session.scratch.logits, decoder.config.vocabSize);
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const started = performance.now();
const baseline = newRun();
const methods = PRUNING_METHODS.filter((m) => (process.env.VLM_METHODS ?? m).split(',').includes(m));
const runs: Run[] = [baseline, ...methods.flatMap((method) => BUDGETS.map((budget) => newRun({ method, budget })))];
// The unpruned run twice: the spread between the two is the measurement's noise.
const baselineAgain = newRun(undefined, 'none, again');
// Image by image, every configuration back to back, so that each timing ratio compares runs made
// moments apart (a software adapter on shared cores drifts over an hour).
const images = [...new Set(questions.map((q) => q.image))];
await runImage(newRun(), questions.filter((q) => q.image === images[0]).slice(0, 1)); // warm-up: pipelines compiled before anything is timed
for (const [i, image] of images.entries()) {
  const asked = questions.filter((q) => q.image === image);
  for (const run of [...runs, baselineAgain]) await runImage(run, asked);
  if (i % 8 === 7) console.log(`${i + 1} of ${images.length} images: ${((performance.now() - started) / 1000) | 0} s`);
}

const accuracy = (r: Run) => r.answers.filter((a, i) => a === questions[i].answer).length / questions.length;
const agreement = (r: Run) => r.answers.filter((a, i) => a === baseline.answers[i]).length / questions.length;
const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
/** The median over images of the baseline's time over this run's. */
const speedup = (base: number[], xs: number[]) => median(xs.map((x, i) => base[i] / x));
const ratio = (base: number[], xs: number[]) => `${speedup(base, xs).toFixed(2)}x`;
const rows = runs.map((r) => `| ${r.method} | ${r.kept}${r.deep ? ` (${r.deep.kept} above layer ${r.deep.layer})` : ''} | ${percent(accuracy(r))} | ${percent(accuracy(r) / accuracy(baseline))} | ${percent(agreement(r))} | ${median(r.tower).toFixed(0)} | ${median(r.prefill).toFixed(0)} | ${ratio(baseline.prefill, r.prefill)} | ${median(r.ttft).toFixed(0)} | ${ratio(baseline.ttft, r.ttft)} |`);
// The unpruned run against PyTorch's answers (committed with the set), per question type.
const types = [...new Set(questions.map((q) => q.type)), 'all'];
const typeRows = types.map((type) => {
  const idx = questions.flatMap((q, i) => (type === 'all' || q.type === type ? [i] : []));
  const share = (f: (i: number) => boolean) => percent(idx.filter(f).length / idx.length);
  return `| ${type} | ${idx.length} | ${share((i) => baseline.answers[i] === questions[i].answer)} | ${share((i) => questions[i].pytorch === questions[i].answer)} | ${share((i) => baseline.answers[i] === questions[i].pytorch)} |`;
});
const goal = runs.filter((r) => r !== baseline && accuracy(r) >= 0.95 * accuracy(baseline)).map((r) => ({ r, speedup: speedup(baseline.prefill, r.prefill) })).sort((a, b) => b.speedup - a.speedup);
const markdown = `# Vision-token pruning on the VLM's held-out set, ${gpu.adapterDescription}

Measured ${new Date().toISOString().slice(0, 10)} with \`npx tsx bench/vlm-pruning.ts\`, Node ${process.version} + Dawn, ${availableParallelism()} CPU cores, ${((performance.now() - started) / 60000).toFixed(0)} minutes.
Models: \`models/vlm-mmproj.f16.gguf\` (a ${encoder.config.blocks}-block ViT, ${N} patches) and \`models/vlm.f16.gguf\` (${decoder.config.layers} layers); ${questions.length} questions
on ${new Set(questions.map((q) => q.image)).size} images. Greedy answers of at most ${MAX_ANSWER} tokens. Times are medians over each image's first
question (tower, then BOS + image + question through the language model, then the first token read back; prefill is that
without the tower); speed-ups are medians over images of the unpruned time over the method's, every configuration run on
an image back to back. The unpruned run made twice per image gives the noise: a time to first token ratio of
${ratio(baseline.ttft, baselineAgain.ttft)} and a prefill ratio of ${ratio(baseline.prefill, baselineAgain.prefill)}, where 1.00x is none.

Unpruned, against PyTorch (the answers committed with the set, computed with the same F16-rounded weights):

| type | questions | accuracy | PyTorch's accuracy | same answer as PyTorch |
|---|---:|---:|---:|---:|
${typeRows.join('\n')}

Pruned:

| method | image tokens read | accuracy | of unpruned | same answer as unpruned | tower ms | prefill ms | prefill speed-up | time to first token ms | speed-up |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}

The goal, 4x faster prefill at 95% of the unpruned accuracy or better: ${goal.length ? goal.slice(0, 3).map(({ r, speedup }) => `${r.label} (${speedup.toFixed(2)}x, ${percent(accuracy(r) / accuracy(baseline))})`).join(', ') + (goal[0].speedup >= 4 ? ' — met.' : ' are the fastest at that accuracy; 4x is not met.') : 'no configuration keeps 95% of the accuracy.'}
`;
// A subset of the methods is a check, not the committed results.
const out = `bench/results/${process.env.VLM_METHODS === undefined ? '' : 'tmp/'}vlm-pruning-${adapterSlug(gpu.adapterDescription)}.md`;
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, markdown);
writeFileSync(out.replace(/\.md$/, '.svg'), pruningPlot(pointsFromTable(markdown), `VLM accuracy against image tokens kept (${questions.length} held-out questions)`));
console.log(markdown);
console.log(`wrote ${out}`);
session.destroy();
encoder.destroy();
decoder.destroy();
gpu.destroy();
