// `npm test`: every test, unit (vitest on Dawn in Node) then end-to-end (Playwright driving
// Chromium's WebGPU), ending with one summary line "N passed, N failed".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { ensureSystemDeps } from './system-deps.mjs';

ensureSystemDeps();
process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.XDG_RUNTIME_DIR ??= '/tmp';

const results = 'test-reports'; // not test-results: Playwright empties that folder when it starts
mkdirSync(results, { recursive: true });
const unitJson = `${results}/unit.json`;
const e2eJson = `${results}/e2e.json`;
rmSync(unitJson, { force: true });
rmSync(e2eJson, { force: true });

const extra = process.argv.slice(2);
const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit', env: process.env }).status ?? 1;

const unitStatus = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${unitJson}`, ...extra]);
const e2eStatus = run('npx', ['playwright', 'test']);

function unitCounts() {
  if (!existsSync(unitJson)) return { passed: 0, failed: 1, skipped: 0 };
  const r = JSON.parse(readFileSync(unitJson, 'utf8'));
  return { passed: r.numPassedTests, failed: r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0), skipped: r.numPendingTests + r.numTodoTests };
}

function e2eCounts() {
  if (!existsSync(e2eJson)) return { passed: 0, failed: 1, skipped: 0 };
  const s = JSON.parse(readFileSync(e2eJson, 'utf8')).stats;
  return { passed: s.expected + s.flaky, failed: s.unexpected, skipped: s.skipped };
}

const unit = unitCounts();
const e2e = e2eCounts();
// A runner that crashed without counting a failure still fails the run.
const failed = unit.failed + e2e.failed + (unitStatus !== 0 && unit.failed === 0 ? 1 : 0) + (e2eStatus !== 0 && e2e.failed === 0 ? 1 : 0);
const passed = unit.passed + e2e.passed;
console.log(`\nunit: ${unit.passed} passed, ${unit.failed} failed; e2e: ${e2e.passed} passed, ${e2e.failed} failed`);
console.log(`${passed} passed, ${failed} failed, ${unit.skipped + e2e.skipped} skipped`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
