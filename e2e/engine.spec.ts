// The demo page and the example app in Chromium's WebGPU, with the engine in its Web Worker:
// the built-in model loads with progress and streams what the engine computes in Node; abort;
// the model cache; clear errors after which the page still works; a strict CSP; the ES module,
// in a page and in a Node script.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect, type Page, test } from '@playwright/test';
import { createEngine } from '../src/index';

const MODEL = 'models/target.q8_0.gguf';
const PROMPT = 'And God said,';
const TOKENS = 24;
const run = promisify(execFile);

/** The in-Node engine's greedy tokens for the demo's default model and prompt. */
let nodeGreedy: Promise<{ tokens: number[]; text: string }> | undefined;
function inNode(): Promise<{ tokens: number[]; text: string }> {
  nodeGreedy ??= (async () => {
    const engine = createEngine({ worker: false });
    try {
      await engine.load(readFileSync(MODEL));
      const { tokens, text } = await engine.generate({ prompt: PROMPT, maxTokens: TOKENS, temperature: 0 }).result;
      return { tokens, text };
    } finally {
      await engine.dispose();
    }
  })();
  return nodeGreedy;
}

async function openDemo(page: Page): Promise<void> {
  await page.goto('/');
  await expect(page.locator('#model-status')).toHaveAttribute('data-loaded', MODEL, { timeout: 120_000 });
}

async function generate(page: Page, options: { maxTokens: number; temperature: number }): Promise<{ tokens: number[]; text: string; finish: string; drafted: number }> {
  await page.locator('#prompt').fill(PROMPT);
  await page.locator('#max-tokens').fill(String(options.maxTokens));
  await page.locator('#temperature').fill(String(options.temperature));
  const replies = page.locator('.turn.assistant');
  const before = await replies.count();
  await page.locator('#send').click();
  const reply = replies.nth(before);
  await expect(reply).toHaveAttribute('data-finish', /.+/, { timeout: 120_000 });
  return {
    tokens: JSON.parse((await reply.getAttribute('data-tokens'))!), text: (await reply.textContent())!, finish: (await reply.getAttribute('data-finish'))!,
    drafted: await reply.locator('.drafted').count(),
  };
}

test.describe('demo page', () => {
  test('loads the built-in model by URL with progress to 100% and streams the in-Node engine\'s greedy reply', async ({ page }) => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await openDemo(page);
    for (const phase of ['download', 'upload', 'compile']) {
      expect(await page.locator(`#progress-${phase}`).evaluate((el) => (el as HTMLProgressElement).value)).toBe(1);
    }
    // Watch the reply grow while it streams.
    const lengths: number[] = [];
    const watch = setInterval(() => void page.locator('.turn.assistant.streaming').textContent({ timeout: 50 }).then((t) => lengths.push(t?.length ?? 0), () => undefined), 20);
    const reply = await generate(page, { maxTokens: TOKENS, temperature: 0 });
    clearInterval(watch);
    const want = await inNode();
    expect(reply.tokens).toEqual(want.tokens);
    expect(reply.text).toBe(want.text);
    expect(lengths.some((n) => n > 0 && n < want.text.length)).toBe(true);
    expect(errors).toEqual([]);
  });

  test('stop aborts mid-stream, and the next request is correct', async ({ page }) => {
    await openDemo(page);
    await page.locator('#max-tokens').fill('400');
    await page.locator('#temperature').fill('0.8');
    await page.locator('#prompt').fill(PROMPT);
    await page.locator('#send').click();
    const streaming = page.locator('.turn.assistant.streaming');
    await expect(streaming).not.toHaveText('', { timeout: 60_000 });
    await page.locator('#stop').click();
    const aborted = page.locator('.turn.assistant').first();
    await expect(aborted).toHaveAttribute('data-finish', 'abort', { timeout: 60_000 });
    expect(JSON.parse((await aborted.getAttribute('data-tokens'))!).length).toBeLessThan(400);
    const next = await generate(page, { maxTokens: TOKENS, temperature: 0 });
    expect(next.tokens).toEqual((await inNode()).tokens);
  });

  test('a reload serves the model from the cache without downloading it again', async ({ page }) => {
    const requests: string[] = [];
    page.on('request', (r) => r.url().endsWith(`/${MODEL}`) && requests.push(r.url()));
    await openDemo(page);
    expect(requests.length).toBeGreaterThan(0); // a fresh browser context downloads it
    requests.length = 0;
    await page.reload();
    await expect(page.locator('#model-status')).toHaveAttribute('data-loaded', MODEL, { timeout: 120_000 });
    expect(requests).toEqual([]);
    await expect(page.locator('#progress-download-text')).toContainText('from cache');
  });

  test('a missing URL, a truncated file and a non-GGUF file each show a clear error, and the page still works', async ({ page }) => {
    await openDemo(page);
    const status = page.locator('#model-status');
    await page.locator('#url').fill('/models/missing.gguf');
    await page.locator('#load-url').click();
    await expect(status).toHaveClass('error', { timeout: 30_000 });
    await expect(status).toContainText('network');
    await expect(status).toContainText('404');

    const model = readFileSync(MODEL);
    await page.locator('#file').setInputFiles({ name: 'truncated.gguf', mimeType: 'application/octet-stream', buffer: model.subarray(0, 200_000) });
    await expect(status).toContainText('bad-model', { timeout: 30_000 });
    await expect(status).toContainText('truncated');

    await page.locator('#file').setInputFiles({ name: 'notes.gguf', mimeType: 'text/plain', buffer: Buffer.from('these are my notes, not a model') });
    await expect(status).toContainText('not a GGUF file', { timeout: 30_000 });

    const reply = await generate(page, { maxTokens: TOKENS, temperature: 0 });
    expect(reply.tokens).toEqual((await inNode()).tokens);
  });

  test('speculative decoding: every strategy streams the plain greedy reply and reports tokens per forward', async ({ page }) => {
    test.setTimeout(600_000); // four generations, one of them loading the draft model
    await openDemo(page);
    // Fixed sizing: on SwiftShader the 'auto' sizing rightly keeps plain decoding, and this test
    // wants every strategy's drafts verified and accepted.
    await page.locator('#spec-sizing').selectOption('fixed');
    for (const strategy of ['prompt-lookup', 'token-recycling', 'draft-model', 'layer-skip']) {
      await page.locator('#spec-strategy').selectOption(strategy);
      const reply = await generate(page, { maxTokens: 16, temperature: 0 });
      expect(reply.tokens, strategy).toEqual((await inNode()).tokens.slice(0, 16)); // a greedy prefix
      expect(reply.text, strategy).toBe((await inNode()).text.slice(0, reply.text.length));
      await expect(page.locator('#stat-spec-tokens')).toContainText(strategy);
      // Accepted drafts are marked in the reply, and the acceptance chart follows the steps.
      const accepted = await page.locator('#stat-spec-accept').textContent();
      console.log(`${strategy}: acceptance ${accepted}, ${reply.drafted} marked pieces`);
      expect(reply.drafted, strategy).toBeGreaterThan(0);
      await expect(page.locator('#spec-chart canvas')).toHaveCount(1);
    }
  });

  test('KV-cache compression: every policy generates past its budget at flat memory, as the in-Node engine does, and shows what it kept', async ({ page }) => {
    test.setTimeout(900_000);
    await openDemo(page);
    const cases: Array<{ policy: string; quantization: string }> = [
      { policy: 'streaming-llm', quantization: 'f32' }, { policy: 'lm-infinite', quantization: 'f32' },
      { policy: 'h2o', quantization: 'int8' }, { policy: 'keyformer', quantization: 'int4' }, { policy: 'snapkv', quantization: 'f32' },
      { policy: 'tokenselect', quantization: 'f32' }, { policy: 'tidaldecode', quantization: 'int8' }, { policy: 'infllm', quantization: 'f32' },
    ];
    const engine = createEngine({ worker: false });
    try {
      await engine.load(readFileSync(MODEL));
      for (const { policy, quantization } of cases) {
        await page.locator('#kv-budget').fill('16');
        await page.locator('#kv-quantization').selectOption(quantization);
        await page.locator('#kv-policy').selectOption(policy);
        await expect(page.locator('#transcript')).toBeEmpty(); // a new conversation with these settings
        const reply = await generate(page, { maxTokens: 32, temperature: 0 });
        const kv = { policy, budget: 16, quantization } as const;
        const session = await engine.createSession({ kv: kv as never, prefillChunk: 16 });
        const want = await engine.generate({ prompt: PROMPT, maxTokens: 32, temperature: 0, session }).result;
        await engine.deleteSession(session);
        expect(reply.tokens, policy).toEqual(want.tokens);
        await expect(page.locator('#kv-status')).toContainText(`${policy}: `);
        const selected = want.stats.kv!.selected;
        if (selected) {
          // Selection policies evict nothing; past the budget each step attends to 16 tokens.
          // (InfLLM reads whole units of 2 here: one fewer token when the last unit is partial.)
          expect(selected.sparseSteps, policy).toBeGreaterThan(0);
          expect(selected.positions.length, policy).toBe(policy === 'infllm' && want.stats.sessionTokens % 2 ? 15 : 16);
          await expect(page.locator('#kv-status')).toContainText(new RegExp(`attended to ${selected.positions.length}; [1-9]\\d* of \\d+ steps sparse`));
        } else {
          expect(want.stats.kv!.evictions, policy).toBeGreaterThan(0);
          await expect(page.locator('#kv-status')).toContainText(/[1-9]\d* evicted/);
        }
        expect(Number(await page.locator('#kv-positions').getAttribute('data-kept')), policy).toBe(selected?.positions.length ?? want.stats.kv!.keptTokens);
        await expect(page.locator('#kv-chart canvas')).toHaveCount(1);
      }
    } finally {
      await engine.dispose();
    }
  });

  test('runs under a strict Content-Security-Policy without unsafe-eval', async ({ page }) => {
    await page.addInitScript(() => {
      (window as unknown as { violations: string[] }).violations = [];
      document.addEventListener('securitypolicyviolation', (e) => (window as unknown as { violations: string[] }).violations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    await openDemo(page);
    const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-eval');
    await generate(page, { maxTokens: 8, temperature: 0 });
    expect(await page.evaluate(() => (window as unknown as { violations: string[] }).violations)).toEqual([]);
  });
});

test('the example app imports the built ES module and generates the same text', async ({ page }) => {
  await page.goto('/examples/basic/');
  const out = page.locator('#out');
  await expect(out).toHaveAttribute('data-tokens', /\[/, { timeout: 120_000 });
  expect(JSON.parse((await out.getAttribute('data-tokens'))!)).toEqual((await inNode()).tokens);
});

test('the Node example imports the built ES module, runs the engine in a worker thread and generates the same text', async () => {
  const { stdout } = await run(process.execPath, ['examples/node/generate.mjs', MODEL, PROMPT], { timeout: 300_000 });
  const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { tokens: number[] };
  expect(summary.tokens).toEqual((await inNode()).tokens);
});

test('the OPFS cache serves a reload without downloading the model again', async ({ page }) => {
  const requests: string[] = [];
  page.on('request', (r) => r.url().endsWith(`/${MODEL}`) && requests.push(r.url()));
  const out = page.locator('#out');
  await page.goto('/examples/basic/?cache=opfs');
  await expect(out).toHaveAttribute('data-tokens', /\[/, { timeout: 120_000 });
  expect(requests.length).toBeGreaterThan(0);
  requests.length = 0;
  await page.reload();
  await expect(out).toHaveAttribute('data-tokens', /\[/, { timeout: 120_000 });
  expect(requests).toEqual([]);
  expect(JSON.parse((await out.getAttribute('data-tokens'))!)).toEqual((await inNode()).tokens);
});
