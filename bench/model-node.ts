// Model benchmark in Node on Dawn: `npm run bench:model` runs this, the Chromium page and llama.cpp.
// Writes the benchmark GGUFs (cached under bench/results/tmp/) first, so the page can fetch them.
//   npx tsx bench/model-node.ts [--quick] [--out=<file.json>]
import { openAsBlob, writeFileSync } from 'node:fs';
import { blobSource } from '../src/formats/byte-source';
import { requestGpu } from '../src/gpu';
import { ensureModelFile } from './model-fixture';
import { benchPlan, benchWeightTypes } from './model-plan';
import { runModelBench } from './model-run';

const quick = process.argv.includes('--quick');
const out = process.argv.find((a) => a.startsWith('--out='))?.slice(6);
const log = (line: string) => console.error(`  ${line}`);
const plan = benchPlan(quick);
const paths = new Map<string, string>();
for (const type of benchWeightTypes) paths.set(type, await ensureModelFile(type, undefined, log));
const gpu = await requestGpu();
const report = await runModelBench(gpu, `Node ${process.version} + Dawn`, plan, benchWeightTypes, async (type) => blobSource(await openAsBlob(paths.get(type)!)), log);
if (out) writeFileSync(out, JSON.stringify(report, null, 2));
else console.log(JSON.stringify(report, null, 2));
gpu.destroy();
