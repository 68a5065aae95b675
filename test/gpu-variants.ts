// Devices for the two variants of kernels that reduce across a workgroup: with subgroup
// operations (when the adapter offers them) and with workgroup memory only. One device per
// variant per test file, destroyed after the file's tests.
import { afterAll } from 'vitest';
import { type Gpu, requestGpu } from '../src/gpu';
import { testGpu } from './util';

let withoutSubgroups: Promise<Gpu> | null = null;

function gpuWithoutSubgroups(): Promise<Gpu> {
  if (!withoutSubgroups) {
    withoutSubgroups = requestGpu({ disable: { subgroups: true } });
    afterAll(async () => (await withoutSubgroups)?.destroy());
  }
  return withoutSubgroups;
}

export interface GpuVariant {
  name: string;
  gpu: () => Promise<Gpu>;
}

/** Run a describe block per variant: `for (const variant of reductionVariants) describe(variant.name, ...)`. */
export const reductionVariants: GpuVariant[] = [
  { name: 'subgroups', gpu: testGpu },
  { name: 'workgroup memory', gpu: gpuWithoutSubgroups },
];
