// Node benchmark on Dawn: `npm run bench` runs this and the Chromium one.
import { writeFileSync } from 'node:fs';
import { requestGpu } from '../src/gpu';
import { formatReport, runSuite } from './report';
import { benchCases } from './suite';

const quick = process.argv.includes('--quick');
const out = process.argv.find((a) => a.startsWith('--out='))?.slice(6);
const gpu = await requestGpu();
const report = await runSuite(gpu, benchCases({ quick }), `Node ${process.version} + Dawn`, (row) => console.error(`  ${row.name}: ${row.ms.toFixed(4)} ms`));
const table = formatReport(report);
console.log(table);
if (out) writeFileSync(out, JSON.stringify(report, null, 2));
gpu.destroy();
