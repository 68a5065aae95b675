#!/usr/bin/env node
// Installs the llama.cpp oracle (node-llama-cpp + only its linux-x64 CPU binary) into
// tools/llama-oracle/node_modules, at the versions of its own lockfile. `--omit=optional` skips the
// other platforms' binaries (CUDA, Vulkan, macOS, Windows: ~725 MB); the CPU binary is a direct
// dependency, so it stays. Install scripts are not run: node-llama-cpp's postinstall would only
// look for (or build) binaries, which the prebuilt package already provides.
// `npm install --no-save` rather than `npm ci`: the registry this was locked against lacks some of
// node-llama-cpp's optional macOS/Windows packages at this version, and `npm ci` refuses a lockfile
// without them, while install skips what --omit=optional leaves out and keeps the lockfile as is.
// (node-llama-cpp 3.21.1 has them all, but only 3.22 returns raw logits.)
// Idempotent and quick when already installed. Elsewhere than linux-x64 it does nothing, and the
// oracle tests skip.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export function oracleSupported() {
  return process.platform === 'linux' && process.arch === 'x64';
}

/** True when the installed packages match package.json. */
export function oracleInstalled() {
  const want = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).dependencies;
  return Object.entries(want).every(([name, version]) => {
    const pkg = join(here, 'node_modules', name, 'package.json');
    return existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).version === version;
  });
}

function main() {
  if (!oracleSupported()) {
    console.log(`llama-oracle: ${process.platform}-${process.arch} is not set up (linux-x64 only); the llama.cpp oracle tests will be skipped`);
    return 0;
  }
  if (oracleInstalled() && !process.argv.includes('--force')) return 0;
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const started = Date.now();
  const r = spawnSync(npm, ['install', '--omit=optional', '--ignore-scripts', '--no-save', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: here, stdio: 'inherit',
  });
  if (r.status !== 0) {
    console.error('llama-oracle: npm install failed');
    return r.status ?? 1;
  }
  if (!oracleInstalled()) {
    console.error('llama-oracle: installed, but the packages do not match package.json');
    return 1;
  }
  console.log(`llama-oracle: installed node-llama-cpp (linux-x64 CPU) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exit(main());
