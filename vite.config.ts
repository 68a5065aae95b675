import { resolve } from 'node:path';
import { defineConfig } from 'vite';

// `npm run demo` serves index.html (the demo) and the e2e pages; `npm run build` emits the ES
// module. base './' keeps worker and asset URLs relative, so the build works from any folder.
export default defineConfig({
  base: './',
  // mpa: a missing file is a 404, as on a real server (no fallback to index.html).
  appType: 'mpa',
  server: { host: '127.0.0.1', port: 5173 },
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    sourcemap: true,
    lib: {
      entry: {
        tokenwise: resolve(import.meta.dirname, 'src/index.ts'),
        // createEngine() in Node starts this file, beside tokenwise.js, as its worker thread.
        'engine.node-worker': resolve(import.meta.dirname, 'src/workers/engine.node-worker.ts'),
      },
      formats: ['es'],
      fileName: (_format, name) => `${name}.js`,
    },
    rollupOptions: {
      // Dawn and worker_threads are the Node path only; browsers use navigator.gpu and Worker.
      external: ['webgpu', /^node:/],
    },
  },
});
