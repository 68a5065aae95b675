// A Node script that uses tokenwise: the built ES module, the engine in a worker thread on Dawn
// (npm `webgpu`), a model from a file, a streamed greedy reply. In your app: `from 'tokenwise'`.
// Run: npm run build && node examples/node/generate.mjs [model.gguf] [prompt]
import { readFile } from 'node:fs/promises';
import { createEngine } from '../../dist/tokenwise.js';

const [model = new URL('../../models/target.q8_0.gguf', import.meta.url), prompt = 'And God said,'] = process.argv.slice(2);
const engine = createEngine(); // in a worker thread
try {
  await engine.load(await readFile(model));
  const stream = engine.generate({ prompt, maxTokens: 24, temperature: 0 });
  for await (const piece of stream) process.stdout.write(piece);
  const { tokens, stats } = await stream.result;
  process.stdout.write(`\n${JSON.stringify({ tokens, decodeTokensPerSecond: stats.decodeTokensPerSecond })}\n`);
} finally {
  await engine.dispose();
}
