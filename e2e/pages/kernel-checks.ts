// Kernel-vs-reference checks shared by the browser page. Each returns the worst error it saw
// and whether it is within the same tolerance the Node tests use.
import type { Gpu } from '../../src/gpu';
import { add } from '../../src/kernels/elementwise';
import { addRef } from '../../src/reference/elementwise';

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function maxAbsError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) || (a[i] === b[i] ? 0 : Infinity));
  return worst;
}

async function checkAdd(gpu: Gpu): Promise<CheckResult> {
  const n = 70_001;
  const a = random(n, 1), b = random(n, 2);
  const out = gpu.buffer(n * 4);
  await gpu.run((pass) => add(gpu, pass, { a: gpu.upload(a), b: gpu.upload(b), out, n }));
  const err = maxAbsError(await gpu.readF32(out, n), addRef(a, b));
  return { name: 'add', ok: err === 0, detail: `max abs error ${err}` };
}

export const kernelChecks: Array<(gpu: Gpu) => Promise<CheckResult>> = [checkAdd];
