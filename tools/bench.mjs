// `npm run bench [-- --quick] [-- --node-only] [-- --gpu] [-- --only=<regex>]`: the kernel
// benchmark in Node (Dawn) and in Chromium (Playwright), written to bench/results/<adapter>.md
// (one file per adapter; `-quick` appended for quick runs). A run filtered with --only prints
// its table and writes it under bench/results/tmp/ instead, so it never replaces a full table.
//
// --quick      smaller shapes and fewer samples, for software adapters (SwiftShader)
// --gpu        Chromium on the machine's GPU instead of SwiftShader, and Node on the system's
//              Vulkan driver (VK_ICD_FILENAMES is then left as it is)
// --node-only  skip Chromium
// --only=RE    only the cases whose name matches RE (case-insensitive), e.g. --only='gemv Q4_K'
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { launchChromium } from '../bench/chromium.mjs';
import { createServer } from 'vite';
import { ensureSystemDeps } from './system-deps.mjs';

ensureSystemDeps();
const quick = process.argv.includes('--quick');
const nodeOnly = process.argv.includes('--node-only');
const useSwiftShader = !process.argv.includes('--gpu');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
if (useSwiftShader) process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.XDG_RUNTIME_DIR ??= '/tmp';
mkdirSync('bench/results/tmp', { recursive: true });

/** One { adapter, table } per runtime. */
const sections = [];
const nodeJson = 'bench/results/tmp/node.json';
const nodeArgs = ['tsx', 'bench/node.ts', `--out=${nodeJson}`, ...(quick ? ['--quick'] : []), ...(only ? [`--only=${only}`] : [])];
const node = spawnSync('npx', nodeArgs, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
if (node.status !== 0) process.exit(node.status ?? 1);
const nodeReport = JSON.parse(readFileSync(nodeJson, 'utf8'));
sections.push({ report: nodeReport, table: node.stdout.trim() });

if (!nodeOnly) {
  // Vite in this process: nothing is left running if the benchmark fails, and a busy port just
  // moves the server to the next free one.
  const server = await createServer({ logLevel: 'error', server: { host: '127.0.0.1', port: 5180, strictPort: false } });
  await server.listen();
  let browser;
  try {
    const base = server.resolvedUrls.local[0];
    browser = await launchChromium({ swiftShader: useSwiftShader });
    const page = await browser.newPage();
    page.on('console', (message) => {
      if (message.text().startsWith('bench: ')) console.error(`  ${message.text().slice(7)}`);
    });
    const query = new URLSearchParams();
    if (quick) query.set('quick', '');
    if (only) query.set('only', only);
    console.error(`Chromium: ${base}bench/page.html?${query}`);
    await page.goto(`${base}bench/page.html?${query}`);
    await page.waitForFunction(() => window.benchReport || window.benchError, undefined, { timeout: 60 * 60_000, polling: 1000 });
    const error = await page.evaluate(() => window.benchError);
    if (error) throw new Error(`browser bench failed: ${error}`);
    const report = await page.evaluate(() => window.benchReport);
    sections.push({ report, table: await page.evaluate(() => document.getElementById('log').textContent) });
  } finally {
    await browser?.close();
    await server.close();
  }
}

// Vendor and architecture name the adapter ("google swiftshader", "nvidia hopper").
const slugOf = (adapter) => adapter.split(' ').slice(0, 2).join(' ').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'adapter';
const files = new Map();
for (const section of sections) {
  const slug = slugOf(section.report.adapter);
  if (!files.has(slug)) files.set(slug, { adapter: section.report.adapter, tables: [] });
  files.get(slug).tables.push(section.table);
}
const flags = [quick && '--quick', !useSwiftShader && '--gpu', nodeOnly && '--node-only', only && `--only='${only}'`].filter(Boolean);
const command = `npm run bench${flags.length ? ` -- ${flags.join(' ')}` : ''}`;
const written = [];
for (const [slug, { adapter, tables }] of files) {
  const file = `bench/results/${only ? 'tmp/' : ''}${slug}${quick ? '-quick' : ''}.md`;
  const header = [
    `# Kernel benchmark: ${adapter}`,
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} with \`${command}\`. GB/s and GFLOP/s count the bytes and flops each kernel must move and do at least; the ratios are against the streaming-copy bandwidth and FMA throughput measured in the same run. See the README's "Benchmark" section.`,
    '',
  ].join('\n');
  writeFileSync(file, `${header}\n${tables.join('\n\n')}\n`);
  written.push(file);
}
console.log(`\n${sections.map((s) => s.table).join('\n\n')}\n\nwritten to ${written.join(', ')}`);
const failed = sections.flatMap((s) => s.report.rows.filter((r) => r.error));
if (failed.length) {
  console.error(`${failed.length} case(s) failed: ${failed.map((r) => r.name).join('; ')}`);
  process.exitCode = 1;
}
