// A web app that uses tokenwise: import the built ES module, load a model, stream a reply.
// In your app: `import { createEngine } from 'tokenwise'`.
import { createEngine } from '../../dist/tokenwise.js';

const out = document.getElementById('out');
const engine = createEngine(); // in a Web Worker
// Downloads are kept in the Cache API by default; ?cache=opfs keeps them in the Origin Private File System.
const cache = new URLSearchParams(location.search).get('cache') ?? 'cache-api';
await engine.load(new URL('../../models/target.q8_0.gguf', import.meta.url).href, { cache });
const stream = engine.generate({ prompt: 'And God said,', maxTokens: 24, temperature: 0 });
for await (const piece of stream) out.textContent += piece;
const { tokens, stats } = await stream.result;
out.dataset.tokens = JSON.stringify(tokens);
out.dataset.decodeTokensPerSecond = stats.decodeTokensPerSecond.toFixed(1);
