// The demo's Vision panel in Chromium, the engine in its Web Worker: the built-in VLM loads with
// its mmproj, a held-out image (made into a PNG in the page) goes to the worker as a data URL,
// is decoded and resized there, and gets PyTorch's answer and description (again with speculative
// decoding); then every pruning method answers with
// the budget's count of image tokens, and the overlay maps the patches as the method should
// (merging: every patch carried by some token; selection: exactly the kept ones). One question
// per method: SwiftShader is slow.
import { readFileSync } from 'node:fs';
import { type Browser, expect, type Page, test } from '@playwright/test';
import { PRUNING_METHODS } from '../src/engine/vision/pruning';

type Asked = { image: number; question: string; pytorch: string };
const EVAL = JSON.parse(readFileSync('models/vlm-eval/questions.json', 'utf8')) as { questions: Asked[]; descriptions: Asked[] };
const QUESTION = EVAL.questions[0];
const DESCRIPTION = EVAL.descriptions.find((d) => d.image === QUESTION.image)!;
const BUDGET = 0.25;
const KEPT = Math.floor(144 * BUDGET);
const MERGING = new Set(['tome', 'pitome']);

/** A held-out image as PNG bytes, drawn into a canvas in the page from models/vlm-eval/images.rgb. */
async function evalPng(page: Page, index: number): Promise<Buffer> {
  const base64 = await page.evaluate(async (i) => {
    const all = new Uint8Array(await (await fetch('/models/vlm-eval/images.rgb')).arrayBuffer());
    const rgb = all.subarray(i * 96 * 96 * 3, (i + 1) * 96 * 96 * 3);
    const pixels = new ImageData(96, 96);
    for (let p = 0; p < 96 * 96; p++) {
      pixels.data.set(rgb.subarray(p * 3, p * 3 + 3), p * 4);
      pixels.data[p * 4 + 3] = 255;
    }
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 96;
    canvas.getContext('2d')!.putImageData(pixels, 0, 0);
    return canvas.toDataURL('image/png').split(',')[1];
  }, index);
  return Buffer.from(base64, 'base64');
}

async function ask(page: Page, method: string, question = QUESTION.question): Promise<{ answer: string; finish: string; kept: number; patches: number; mapped: number; tokens: number }> {
  await page.locator('#vision-method').selectOption(method);
  if (method !== 'none') await page.locator('#vision-budget').fill(String(BUDGET)); // (disabled for none)
  await page.locator('#vision-question').fill(question);
  const answer = page.locator('#vision-answer');
  await page.locator('#vision-ask').click();
  await expect(answer).toHaveAttribute('data-finish', /.+/, { timeout: 150_000 });
  const finish = (await answer.getAttribute('data-finish'))!;
  if (finish === 'error') throw new Error(`${method}: ${await answer.textContent()}`);
  const overlay = page.locator('#vision-overlay');
  return {
    answer: (await answer.textContent())!, finish,
    kept: Number(await answer.getAttribute('data-kept')), patches: Number(await answer.getAttribute('data-patches')),
    mapped: Number(await overlay.getAttribute('data-mapped')), tokens: Number(await overlay.getAttribute('data-tokens')),
  };
}

test.describe('demo page: Vision panel', () => {
  let page: Page;
  const errors: string[] = [];

  /** The page with the VLM loaded and the held-out image picked (again after a failed test restarts the worker). */
  async function ready(browser: Browser): Promise<Page> {
    if (page) return page;
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto('/');
    await page.locator('#vision-load').click();
    await expect(page.locator('#vision-status')).toHaveAttribute('data-loaded', 'models/vlm.f16.gguf', { timeout: 150_000 });
    await expect(page.locator('#vision-status')).toContainText('144 patches');
    await page.locator('#vision-file').setInputFiles({ name: 'held-out.png', mimeType: 'image/png', buffer: await evalPng(page, QUESTION.image) });
    await expect(page.locator('#vision-ask')).toBeEnabled();
    return page;
  }

  test.afterAll(async () => {
    await page?.close();
  });

  test('loads the VLM, answers about a PNG data URL as PyTorch does, and generates scenes', async ({ browser }) => {
    test.setTimeout(300_000);
    const page = await ready(browser);
    const none = await ask(page, 'none');
    expect(none.answer).toBe(QUESTION.pytorch);
    expect(none).toMatchObject({ finish: 'stop', kept: 144, patches: 144, mapped: 144, tokens: 144 });
    await expect(page.locator('#vision-stat-kept')).toHaveText('144 of 144');
    await expect(page.locator('#vision-stat-ttft')).toContainText(' ms');
    // A description is a longer greedy run (up to 48 tokens): PyTorch's, token for token.
    expect((await ask(page, 'none', DESCRIPTION.question)).answer).toBe(DESCRIPTION.pytorch);
    // Speculative decoding after the image (layer skipping, drafting every step): the same
    // description, in fewer steps than tokens.
    await page.locator('#vision-spec').selectOption('layer-skip');
    await page.locator('#vision-spec-sizing').selectOption('fixed');
    expect((await ask(page, 'none', DESCRIPTION.question)).answer).toBe(DESCRIPTION.pytorch);
    expect(Number(await page.locator('#vision-stat-spec').getAttribute('data-tokens-per-step'))).toBeGreaterThan(1);
    await page.locator('#vision-spec').selectOption('off');
    // A generated scene: its questions are offered, with the scene's own answers.
    await page.locator('#vision-scene').click();
    await expect(page.locator('#vision-image')).toHaveAttribute('data-seed', /\d+/);
    expect(await page.locator('#vision-questions option').count()).toBeGreaterThanOrEqual(2);
    await expect(page.locator('#vision-expected')).toContainText("the scene's answer:");
    expect(errors).toEqual([]);
    // Back to the held-out image for the pruning tests.
    await page.locator('#vision-file').setInputFiles({ name: 'held-out.png', mimeType: 'image/png', buffer: await evalPng(page, QUESTION.image) });
  });

  for (const method of PRUNING_METHODS) {
    test(`pruning with ${method} at ${BUDGET}: an answer from ${KEPT} image tokens`, async ({ browser }) => {
      test.setTimeout(300_000);
      const page = await ready(browser);
      const result = await ask(page, method);
      console.log(`${method}: "${result.answer}" from ${result.kept} of ${result.patches} tokens (PyTorch, unpruned: "${QUESTION.pytorch}")`);
      expect(result.answer.length).toBeGreaterThan(0);
      expect(result.kept).toBe(KEPT);
      if (MERGING.has(method)) {
        expect(result.mapped).toBe(144); // every patch merged into some kept token
        expect(result.tokens).toBe(KEPT);
      } else {
        expect(result.mapped).toBe(KEPT); // exactly the kept patches
      }
    });
  }
});
