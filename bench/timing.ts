// GPU timing for benchmarks: timestamp queries around one compute pass that repeats the work
// `repeats` times, or, without timestamp-query, wall time around onSubmittedWorkDone.
import type { Gpu } from '../src/gpu';

export type Record = (pass: GPUComputePassEncoder) => void;

export interface Timing {
  /** Median GPU milliseconds for one repetition of the recorded work. */
  ms: number;
  /** 'timestamp' or 'wall'. */
  source: string;
  /** Repetitions per timed pass. */
  repeats: number;
}

export interface TimingOptions {
  /** Repetitions per timed pass; by default as many as fill about `targetMs` (at most `maxRepeats`). */
  repeats?: number;
  /** Timed passes; the median is reported. */
  samples?: number;
  /** Wanted length of one timed pass when `repeats` is not given (default 20 ms). */
  targetMs?: number;
  maxRepeats?: number;
}

export async function timeGpu(gpu: Gpu, record: Record, options: TimingOptions = {}): Promise<Timing> {
  const samples = options.samples ?? 5;
  // Warm-up: compiles the pipelines and touches every buffer once.
  await gpu.run(record, 'bench warm-up');
  await gpu.device.queue.onSubmittedWorkDone();
  let repeats = options.repeats;
  if (repeats === undefined) {
    // One more run, wall-timed, sizes the timed passes: short kernels are repeated enough to
    // dwarf the submission overhead, long ones (seconds on a software adapter) run once.
    const start = performance.now();
    await gpu.run(record, 'bench calibration');
    await gpu.device.queue.onSubmittedWorkDone();
    const once = Math.max(performance.now() - start, 1e-3);
    repeats = Math.min(options.maxRepeats ?? 64, Math.max(1, Math.round((options.targetMs ?? 20) / once)));
  }
  const n = repeats;
  const recordRepeated: Record = (pass) => {
    for (let r = 0; r < n; r++) record(pass);
  };

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
      times.push(Number(end - begin) / 1e6 / n);
    }
    querySet.destroy();
    resolve.destroy();
    // Some adapters report zeros (timestamps quantised or disabled): fall back to wall time.
    if (times.every((t) => t > 0)) return { ms: median(times), source: 'timestamp', repeats: n };
    times.length = 0;
  }
  for (let s = 0; s < samples; s++) {
    const start = performance.now();
    await gpu.run(recordRepeated, 'bench');
    await gpu.device.queue.onSubmittedWorkDone();
    times.push((performance.now() - start) / n);
  }
  return { ms: median(times), source: 'wall', repeats: n };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
