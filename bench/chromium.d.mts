import type { Browser } from '@playwright/test';

export function launchChromium(options: { swiftShader: boolean }): Promise<Browser>;
