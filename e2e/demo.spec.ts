import { expect, test } from '@playwright/test';

test('the demo page finds the WebGPU device and runs the kernel bench live', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('/');
  await expect(page.locator('#device-info')).toContainText('subgroups', { timeout: 30_000 });
  await expect(page.locator('#run-bench')).toBeEnabled();
  await page.locator('#run-bench').click();
  // The first rows arrive as they are measured; each shows a time and its ratios.
  await expect(page.locator('#bench-output tbody tr').first()).toBeVisible({ timeout: 60_000 });
  const firstRow = await page.locator('#bench-output tbody tr').first().locator('td').allTextContents();
  expect(firstRow[0]).toMatch(/matmul|attention|rmsNorm|add/);
  expect(Number(firstRow[1])).toBeGreaterThan(0);
  expect(errors).toEqual([]);
});
