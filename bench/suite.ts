// The hot kernels at the shapes of real models. Each case says how many bytes it must move and
// how many flops it must do, so the report can compare it with the adapter's roofline.
import type { Gpu } from '../src/gpu';
import { add } from '../src/kernels/elementwise';
import type { Record } from './timing';

export interface BenchCase {
  name: string;
  /** Bytes the kernel must read and write at least (weights, activations, KV). */
  bytes: number;
  flops: number;
  repeats?: number;
  prepare(gpu: Gpu): Promise<{ record: Record; dispose?: () => void }>;
}

export interface SuiteOptions {
  /** Smaller shapes for software adapters, where full-size runs take minutes. */
  quick: boolean;
}

/** Deterministic filler: benchmarks need realistic magnitudes, not particular values. */
export function filler(n: number, seed = 1, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 31 - 1) * scale;
  }
  return out;
}

function residualAdd(hidden: number, rows: number): BenchCase {
  const n = hidden * rows;
  return {
    name: `add ${rows}x${hidden}`,
    bytes: 3 * 4 * n,
    flops: n,
    async prepare(gpu) {
      const a = gpu.upload(filler(n, 1)), b = gpu.upload(filler(n, 2)), out = gpu.buffer(n * 4);
      return {
        record: (pass) => add(gpu, pass, { a, b, out, n }),
        dispose: () => [a, b, out].forEach((x) => x.destroy()),
      };
    },
  };
}

export function benchCases({ quick }: SuiteOptions): BenchCase[] {
  const hiddens = quick ? [576, 2048] : [576, 2048, 4096];
  return [...hiddens.map((h) => residualAdd(h, 128))];
}
