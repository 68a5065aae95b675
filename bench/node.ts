// Node benchmark on Dawn: `npm run bench` runs this and the Chromium one.
// Flags: --quick, --only=<regex> (cases whose name matches), --out=<file.json>.
import { writeFileSync } from 'node:fs';
import { requestGpu } from '../src/gpu';
import { formatReport, formatRow, runSuite } from './report';
import { benchCases, selectCases } from './suite';

const quick = process.argv.includes('--quick');
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const out = arg('out');
const cases = selectCases(benchCases({ quick }), arg('only'));
const gpu = await requestGpu();
const report = await runSuite(gpu, cases, `Node ${process.version} + Dawn`, { quick, onRow: (row) => console.error(`  ${formatRow(row)}`) });
const table = formatReport(report);
console.log(table);
if (out) writeFileSync(out, JSON.stringify(report, null, 2));
gpu.destroy();
