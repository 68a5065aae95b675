// Makes sure the system pieces the tests need are present: Debian's chromium (Playwright drives
// it; it also carries the SwiftShader Vulkan driver Dawn uses in Node) and libvulkan1 (Dawn loads
// libvulkan.so.1). As root it installs them with apt-get; otherwise it says what to install.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const swiftshaderIcd = '/usr/lib/chromium/vk_swiftshader_icd.json';

function hasVulkanLoader() {
  try {
    return execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).includes('libvulkan.so.1');
  } catch {
    return ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib/aarch64-linux-gnu/libvulkan.so.1'].some(existsSync);
  }
}

export function missingSystemDeps() {
  const missing = [];
  if (!existsSync(chromium) || !existsSync(swiftshaderIcd)) missing.push('chromium');
  if (!hasVulkanLoader()) missing.push('libvulkan1');
  return missing;
}

export function ensureSystemDeps() {
  const missing = missingSystemDeps();
  if (missing.length === 0) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    console.error(`tokenwise tests need these Debian packages: ${missing.join(' ')}\n  sudo apt-get install -y ${missing.join(' ')}`);
    process.exit(1);
  }
  console.log(`Installing ${missing.join(' ')} with apt-get…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
  const still = missingSystemDeps();
  if (still.length) {
    console.error(`apt-get finished but these are still missing: ${still.join(' ')}`);
    process.exit(1);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) ensureSystemDeps();
