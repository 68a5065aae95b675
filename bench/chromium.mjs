// Chromium for the benchmarks' browser half: Debian's build with WebGPU on SwiftShader, or (with
// --gpu) on the machine's Vulkan GPU. Shared by tools/bench.mjs, tools/bench-model.mjs and
// bench/speculative.ts. (The e2e tests launch their own through playwright.config.ts.)
import { chromium } from '@playwright/test';

/** @param {{ swiftShader: boolean }} options */
export function launchChromium({ swiftShader }) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--enable-unsafe-webgpu',
      ...(swiftShader ? ['--use-webgpu-adapter=swiftshader', '--enable-unsafe-swiftshader'] : ['--enable-features=Vulkan', '--ignore-gpu-blocklist']),
      '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
    ],
  });
}
