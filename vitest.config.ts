import { defineConfig } from 'vitest/config';

// Dawn picks its Vulkan driver when it loads, so this must be set before any test imports it
// (test.env is too late under worker threads). SwiftShader ships inside Debian's chromium package.
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.VK_ICD_FILENAMES ??= swiftshader;
process.env.XDG_RUNTIME_DIR ??= '/tmp';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // test/long-run.test.ts measures the heap after a collection.
    execArgv: ['--expose-gc'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
