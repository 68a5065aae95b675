import { expect, test } from '@playwright/test';

test('kernels run in headless Chromium WebGPU and match the CPU references', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('/e2e/pages/kernels.html');
  await page.waitForFunction(() => window.kernelResults !== undefined, undefined, { timeout: 150_000 });
  const results = await page.evaluate(() => window.kernelResults!);
  expect(results.error, 'page error').toBeUndefined();
  expect(errors).toEqual([]);
  expect(results.adapter).not.toBe('');
  expect(results.checks.length).toBeGreaterThan(0);
  for (const check of results.checks) expect(check.ok, `${check.name}: ${check.detail}`).toBe(true);
});
