// `npm run bench:model [-- --quick] [-- --node-only] [-- --gpu] [-- --no-llama]`: prefill and
// decode tokens/s of a model of real shape (SmolLM2-135M's, seeded weights, Q8_0 and Q4_0) in
// Node (Dawn) and in Chromium, next to llama.cpp on this machine's CPU and next to the adapter's
// roofline, written to bench/results/model-<adapter>.md (`-quick` appended for quick runs).
//
// --quick      128-token prompt and 16 generated tokens (512 and 32 otherwise)
// --gpu        Chromium on the machine's GPU instead of SwiftShader, and Node on the system's
//              Vulkan driver (VK_ICD_FILENAMES is then left as it is)
// --node-only  skip Chromium
// --no-llama   skip llama.cpp
//
// The GGUFs are written once (a few seconds each) and cached in bench/results/tmp/ (gitignored),
// where the Chromium page fetches them from this script's Vite server.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { launchChromium } from '../bench/chromium.mjs';
import { createServer } from 'vite';
import { ensureSystemDeps } from './system-deps.mjs';

ensureSystemDeps();
const quick = process.argv.includes('--quick');
const nodeOnly = process.argv.includes('--node-only');
const noLlama = process.argv.includes('--no-llama');
const useSwiftShader = !process.argv.includes('--gpu');
if (useSwiftShader) process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const tmp = 'bench/results/tmp';
mkdirSync(tmp, { recursive: true });
const started = performance.now();

// Other work on a shared machine slows every runtime (llama.cpp's threads, which wait on each
// other, most): the load average during the run goes into the table.
const loads = [loadavg()[0]];
const sampler = setInterval(() => loads.push(loadavg()[0]), 5000);

const tsx = (args) => {
  const run = spawnSync('npx', ['tsx', ...args], { stdio: ['ignore', 'inherit', 'inherit'], encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`npx tsx ${args.join(' ')} failed (${run.status ?? run.signal})`);
};
const flag = quick ? ['--quick'] : [];

const runtimeJsons = [];
let llamaJson;
try {
  // Node first: it writes the GGUFs the page fetches.
  console.error('Node (Dawn):');
  tsx(['bench/model-node.ts', `--out=${tmp}/model-node.json`, ...flag]);
  runtimeJsons.push(`${tmp}/model-node.json`);

  if (!nodeOnly) {
    // Vite in this process: nothing is left running if the benchmark fails.
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
      const url = `${base}bench/model-page.html${quick ? '?quick' : ''}`;
      console.error(`Chromium: ${url}`);
      await page.goto(url);
      await page.waitForFunction(() => window.modelBenchReport || window.modelBenchError, undefined, { timeout: 2 * 60 * 60_000, polling: 1000 });
      const error = await page.evaluate(() => window.modelBenchError);
      if (error) throw new Error(`browser model bench failed: ${error}`);
      writeFileSync(`${tmp}/model-chromium.json`, JSON.stringify(await page.evaluate(() => window.modelBenchReport), null, 2));
      runtimeJsons.push(`${tmp}/model-chromium.json`);
    } finally {
      await browser?.close();
      await server.close();
    }
  }

  if (!noLlama) {
    console.error('llama.cpp (CPU):');
    llamaJson = `${tmp}/model-llama.json`;
    tsx(['bench/model-llama.ts', `--out=${llamaJson}`, '--threads=2', ...flag]);
  }
} finally {
  clearInterval(sampler);
}

loads.push(loadavg()[0]);
const mean = loads.reduce((a, b) => a + b, 0) / loads.length;
const machine = `${availableParallelism()} CPU cores; 1-minute load average during the run: mean ${mean.toFixed(1)}, max ${Math.max(...loads).toFixed(1)}${useSwiftShader ? ` (a SwiftShader run alone keeps about ${availableParallelism()} cores busy; more means other work shared the machine)` : ''}`;
const flags = [quick && '--quick', !useSwiftShader && '--gpu', nodeOnly && '--node-only', noLlama && '--no-llama'].filter(Boolean);
const command = `npm run bench:model${flags.length ? ` -- ${flags.join(' ')}` : ''}`;
tsx([
  'bench/model-report.ts', `--command=${command}`, `--seconds=${(performance.now() - started) / 1000}`, `--machine=${machine}`,
  ...(llamaJson ? [`--llama=${llamaJson}`] : []), ...flag, ...runtimeJsons,
]);
const failed = runtimeJsons.flatMap((path) => JSON.parse(readFileSync(path, 'utf8')).results.filter((r) => r.error));
if (failed.length) {
  console.error(`${failed.length} run(s) failed: ${failed.map((r) => `${r.type}: ${r.error}`).join('; ')}`);
  process.exitCode = 1;
}
