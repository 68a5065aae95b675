// `npm run bench [-- --quick] [-- --node-only]`: the kernel benchmark in Node (Dawn) and in
// Chromium (Playwright), written to bench/results/<adapter>.md.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { chromium } from '@playwright/test';
import { ensureSystemDeps } from './system-deps.mjs';

ensureSystemDeps();
process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const quick = process.argv.includes('--quick');
const nodeOnly = process.argv.includes('--node-only');
const useSwiftShader = !process.argv.includes('--gpu');
mkdirSync('bench/results/tmp', { recursive: true });

const sections = [];
const nodeJson = 'bench/results/tmp/node.json';
const node = spawnSync('npx', ['tsx', 'bench/node.ts', `--out=${nodeJson}`, ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
if (node.status !== 0) process.exit(node.status ?? 1);
sections.push(node.stdout.trim());
const adapter = JSON.parse(readFileSync(nodeJson, 'utf8')).adapter;

if (!nodeOnly) {
  const port = 5180;
  const server = spawn('npx', ['vite', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], { stdio: 'ignore' });
  try {
    await waitForServer(`http://127.0.0.1:${port}/`);
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--enable-unsafe-webgpu',
        ...(useSwiftShader ? ['--use-webgpu-adapter=swiftshader', '--enable-unsafe-swiftshader'] : ['--enable-features=Vulkan']),
        '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
      ],
    });
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/bench/page.html${quick ? '?quick' : ''}`);
    await page.waitForFunction(() => window.benchReport || window.benchError, undefined, { timeout: 30 * 60_000 });
    const error = await page.evaluate(() => window.benchError);
    if (error) throw new Error(`browser bench failed: ${error}`);
    sections.push(await page.evaluate(() => document.getElementById('log').textContent));
    await browser.close();
  } finally {
    server.kill();
  }
}

const slug = adapter.split(' ').slice(0, 3).join(' ').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'adapter';
const file = `bench/results/${slug}${quick ? '-quick' : ''}.md`;
const header = `# Kernel benchmark: ${adapter}\n\nMeasured ${new Date().toISOString().slice(0, 10)} with \`npm run bench${quick ? ' -- --quick' : ''}\`. Ratios are against the copy bandwidth and FMA throughput measured in the same run.\n`;
writeFileSync(file, `${header}\n${sections.join('\n\n')}\n`);
console.log(`\n${sections.join('\n\n')}\n\nwritten to ${file}`);

async function waitForServer(url) {
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`vite did not start at ${url}`);
}
