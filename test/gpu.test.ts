import { describe, expect, it } from 'vitest';
import { GpuError, requestGpu } from '../src/gpu';
import { add } from '../src/kernels/elementwise';

describe('gpu layer', () => {
  it('requests the optional features the adapter offers, and can be told not to', async () => {
    const gpu = await requestGpu();
    const plain = await requestGpu({ disable: { subgroups: true, timestamps: true, f16: true } });
    expect(plain.features).toEqual({ f16: false, subgroups: false, timestamps: false });
    expect(plain.device.features.has('subgroups')).toBe(false);
    for (const [name, feature] of [['subgroups', 'subgroups'], ['timestamps', 'timestamp-query'], ['f16', 'shader-f16']] as const) {
      expect(gpu.features[name]).toBe(gpu.device.features.has(feature));
    }
    // The largest limits the adapter allows, not the defaults.
    expect(gpu.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 << 20);
    gpu.destroy();
    plain.destroy();
  });

  it('caches pipelines by variant key', async () => {
    const gpu = await requestGpu();
    const before = gpu.pipelineCount;
    const out = gpu.buffer(16);
    const x = gpu.upload(new Float32Array([1, 2, 3, 4]));
    for (let i = 0; i < 3; i++) await gpu.run((pass) => add(gpu, pass, { a: x, b: x, out, n: 4 }));
    expect(gpu.pipelineCount).toBe(before + 1);
    gpu.destroy();
  });

  it('reuses bind groups for the same pipeline and ranges, and tells other buffers apart', async () => {
    const gpu = await requestGpu();
    const out = gpu.buffer(16);
    const x = gpu.upload(new Float32Array([1, 2, 3, 4]));
    const y = gpu.upload(new Float32Array([10, 20, 30, 40]));
    await gpu.run((pass) => add(gpu, pass, { a: x, b: x, out, n: 4 }));
    const first = gpu.bindGroupsCreated;
    for (let i = 0; i < 3; i++) await gpu.run((pass) => add(gpu, pass, { a: x, b: x, out, n: 4 }));
    expect(gpu.bindGroupsCreated).toBe(first);
    // Another buffer in the same place: a new bind group, and the result reads the new buffer.
    await gpu.run((pass) => add(gpu, pass, { a: x, b: y, out, n: 4 }));
    expect(gpu.bindGroupsCreated).toBe(first + 1);
    expect(Array.from(await gpu.readF32(out))).toEqual([11, 22, 33, 44]);
    gpu.destroy();
  });

  it('rejects requests over the device limits with a clear error before allocating', async () => {
    const gpu = await requestGpu();
    expect(() => gpu.buffer(gpu.limits.maxBufferSize + 4, 'huge')).toThrow(/huge.*maxBufferSize/);
    const pipeline = gpu.pipeline('noop', () => '@compute @workgroup_size(1) fn main() {}');
    await expect(gpu.run((pass) => gpu.dispatch(pass, pipeline, [], [gpu.limits.maxComputeWorkgroupsPerDimension + 1]))).rejects.toThrow(/maxComputeWorkgroupsPerDimension/);
    gpu.destroy();
  });

  it('reports a lost device as a device-lost error on every later call', async () => {
    const gpu = await requestGpu();
    const out = gpu.buffer(16);
    gpu.device.destroy();
    await gpu.device.lost;
    await Promise.resolve();
    const run = gpu.run((pass) => add(gpu, pass, { a: out, b: out, out, n: 4 }));
    await expect(run).rejects.toBeInstanceOf(GpuError);
    await expect(run).rejects.toMatchObject({ kind: 'device-lost' });
    expect(() => gpu.buffer(16)).toThrow(/lost/);
  });
});
