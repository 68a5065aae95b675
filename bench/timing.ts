// GPU timing for benchmarks: timestamp queries around one compute pass that repeats the work
// `repeats` times, or, without timestamp-query, wall time around onSubmittedWorkDone.
import type { Gpu } from '../src/gpu';

export type Record = (pass: GPUComputePassEncoder) => void;

export interface Timing {
  /** Median GPU milliseconds for one repetition of the recorded work. */
  ms: number;
  /** 'timestamp' or 'wall'. */
  source: string;
}

export async function timeGpu(gpu: Gpu, record: Record, options: { repeats?: number; samples?: number } = {}): Promise<Timing> {
  const repeats = options.repeats ?? 10;
  const samples = options.samples ?? 5;
  const recordRepeated: Record = (pass) => {
    for (let r = 0; r < repeats; r++) record(pass);
  };
  await gpu.run(recordRepeated, 'bench warm-up');
  await gpu.device.queue.onSubmittedWorkDone();

  const times: number[] = [];
  if (gpu.features.timestamps) {
    const querySet = gpu.device.createQuerySet({ type: 'timestamp', count: 2 });
    const resolve = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    for (let s = 0; s < samples; s++) {
      await gpu.run(recordRepeated, 'bench', { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 });
      const encoder = gpu.device.createCommandEncoder();
      encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
      gpu.device.queue.submit([encoder.finish()]);
      const [begin, end] = new BigUint64Array(await gpu.read(resolve, 0, 16));
      times.push(Number(end - begin) / 1e6 / repeats);
    }
    querySet.destroy();
    resolve.destroy();
    // Some adapters report zeros (timestamps quantised or disabled): fall back to wall time.
    if (times.every((t) => t > 0)) return { ms: median(times), source: 'timestamp' };
    times.length = 0;
  }
  for (let s = 0; s < samples; s++) {
    const start = performance.now();
    await gpu.run(recordRepeated, 'bench');
    await gpu.device.queue.onSubmittedWorkDone();
    times.push((performance.now() - start) / repeats);
  }
  return { ms: median(times), source: 'wall' };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
