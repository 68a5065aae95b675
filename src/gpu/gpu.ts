import { GpuError, check } from './errors';

export interface GpuFeatures {
  /** `shader-f16`: f16 arithmetic in shaders. f16 *storage* works everywhere via pack2x16float. */
  f16: boolean;
  /** `subgroups`: subgroupAdd/subgroupMax and friends. */
  subgroups: boolean;
  /** `timestamp-query`: GPU timing for benchmarks. */
  timestamps: boolean;
}

/** A buffer binding: a whole buffer, or a byte range of one. */
export type Binding = GPUBuffer | GPUBufferBinding;

export const STORAGE = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST (literal: GPUBufferUsage is absent in Node until Dawn loads)
const UNIFORM_ALIGN = 256;
/** Reads up to this size go through pooled staging buffers. */
const STAGING_POOL_BYTES = 64 * 1024;
const UNIFORM_CHUNK_SLOTS = 256;

/**
 * The device and everything kernels share: a pipeline cache keyed by kernel variant, buffer
 * helpers, a per-submission uniform arena, and error scopes that turn validation errors and
 * device loss into exceptions.
 */
export class Gpu {
  readonly limits: GPUSupportedLimits;
  /** Set once the device is lost; every later call throws it. */
  lostError: GpuError | null = null;

  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Kernels' temporaries by name (scratch()). */
  private readonly scratchBuffers = new Map<string, GPUBuffer>();
  /** Shader modules compiled since the last run, to name the kernel when one fails to compile. */
  private newModules: GPUShaderModule[] = [];
  /** Uniform arena: fixed-size chunks, so bindings made earlier in a submission stay valid. */
  private readonly uniformChunks: Array<{ buffer: GPUBuffer; staging: Uint8Array; used: number }> = [];
  /**
   * Reads waiting for a map, failed at once if the device is lost (a map may never finish then).
   * One listener for all: racing each read against device.lost would leave a reaction on that
   * never-settling promise per read, a leak that grows with every generated token.
   */
  private readonly pendingReads = new Set<(error: unknown) => void>();
  /** Mappable buffers for small reads, reused (see read()). */
  private readonly stagingPool: GPUBuffer[] = [];
  private uniformChunk = 0;
  /**
   * Bind groups by pipeline and bound ranges: a decode step binds the same buffers (and the same
   * uniform-arena offsets) as the step before, so after the first step no bind group is created.
   * Buffers are told apart by an id given on first sight (a WeakMap, so ids never repeat).
   */
  private readonly bindGroups = new WeakMap<GPUComputePipeline, { layout: GPUBindGroupLayout; groups: Map<string, GPUBindGroup> }>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  /** Bind groups created, for tests and benchmarks. */
  bindGroupsCreated = 0;
  /** Queue submissions (run() and read()), for tests and benchmarks: each one is a wait for the GPU. */
  submissions = 0;

  constructor(
    readonly device: GPUDevice,
    readonly adapterDescription: string,
    readonly features: GpuFeatures,
    /**
     * The adapter runs shaders on the CPU (SwiftShader, llvmpipe, WARP). There, cost follows
     * barriers and workgroups rather than bytes, so some kernels pick a different shape.
     */
    readonly cpuBacked = false,
  ) {
    this.limits = device.limits;
    device.lost.then((info) => {
      this.lostError = new GpuError('device-lost', `The GPU device was lost (${info.reason}): ${info.message || 'no message'}`);
      for (const reject of this.pendingReads) reject(this.lostError);
      this.pendingReads.clear();
    });
  }

  /** A compute pipeline for `key`, compiled once from `code()`. The key names the variant. */
  pipeline(key: string, code: () => string, entryPoint = 'main'): GPUComputePipeline {
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const module = this.device.createShaderModule({ label: key, code: code() });
      this.newModules.push(module);
      pipeline = this.device.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint } });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  buffer(size: number, label = 'buffer', usage = STORAGE): GPUBuffer {
    this.throwIfLost();
    check(size <= this.limits.maxBufferSize, () => `${label}: ${size} bytes is over this device's maxBufferSize (${this.limits.maxBufferSize})`);
    // Zero-sized buffers cannot be bound; keep 4 bytes so empty tensors still work.
    return this.device.createBuffer({ label, size: Math.max(4, align(size, 4)), usage });
  }

  /**
   * A storage buffer of at least `bytes` kept under `name` for a kernel's temporaries (attention's
   * split partials, token merging's plan), grown as needed. A grown-out buffer is left to the
   * garbage collector rather than destroyed: a pass being recorded may still use it.
   */
  scratch(name: string, bytes: number): GPUBuffer {
    let buffer = this.scratchBuffers.get(name);
    if (!buffer || buffer.size < bytes) this.scratchBuffers.set(name, (buffer = this.buffer(Math.max(bytes, 2 * (buffer?.size ?? 0)), name)));
    return buffer;
  }

  /** A storage buffer holding `data` (padded to 4 bytes). */
  upload(data: ArrayBufferView | ArrayBuffer, label = 'upload', usage = STORAGE): GPUBuffer {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const buffer = this.device.createBuffer({ label, size: Math.max(4, align(bytes.byteLength, 4)), usage, mappedAtCreation: true });
    new Uint8Array(buffer.getMappedRange()).set(bytes);
    buffer.unmap();
    return buffer;
  }

  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    this.device.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, align(data.byteLength, 4));
  }

  /**
   * Small per-dispatch parameters (at most 256 bytes), written to a shared uniform buffer just
   * before the submission. Reused every submission: queue.writeBuffer is ordered with submits.
   */
  uniform(words: ArrayBufferView): GPUBufferBinding {
    const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
    check(bytes.byteLength <= UNIFORM_ALIGN, 'uniform parameters are limited to 256 bytes');
    let chunk = this.uniformChunks[this.uniformChunk];
    if (chunk && chunk.used + UNIFORM_ALIGN > chunk.staging.byteLength) chunk = this.uniformChunks[++this.uniformChunk];
    if (!chunk) {
      const size = UNIFORM_CHUNK_SLOTS * UNIFORM_ALIGN;
      const buffer = this.device.createBuffer({ label: 'uniform arena', size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      chunk = { buffer, staging: new Uint8Array(size), used: 0 };
      this.uniformChunks.push(chunk);
    }
    const offset = chunk.used;
    chunk.staging.fill(0, offset, offset + UNIFORM_ALIGN);
    chunk.staging.set(bytes, offset);
    chunk.used += UNIFORM_ALIGN;
    return { buffer: chunk.buffer, offset, size: align(Math.max(bytes.byteLength, 16), 16) };
  }

  private flushUniforms(): void {
    for (const chunk of this.uniformChunks) {
      if (chunk.used > 0) this.device.queue.writeBuffer(chunk.buffer, 0, chunk.staging.buffer, 0, chunk.used);
      chunk.used = 0;
    }
    this.uniformChunk = 0;
  }

  /** Bind `resources` in order to @group(0) @binding(0..n-1) and dispatch. */
  dispatch(pass: GPUComputePassEncoder, pipeline: GPUComputePipeline, resources: Binding[], workgroups: [number, number?, number?]): void {
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    const [x, y = 1, z = 1] = workgroups;
    check(x <= max && y <= max && z <= max, () => `${pipeline.label}: dispatch ${x}x${y}x${z} is over maxComputeWorkgroupsPerDimension (${max})`);
    if (x === 0 || y === 0 || z === 0) return;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.bindGroup(pipeline, resources));
    pass.dispatchWorkgroups(x, y, z);
  }

  /**
   * Bind and dispatch with workgroup counts an earlier dispatch wrote to `args` (three u32 at
   * byte `offset`): the GPU decides how much work runs, e.g. none when a result can be reused.
   */
  dispatchIndirect(pass: GPUComputePassEncoder, pipeline: GPUComputePipeline, resources: Binding[], args: GPUBuffer, offset: number): void {
    check(offset % 4 === 0 && offset + 12 <= args.size, () => `${pipeline.label}: indirect arguments at byte ${offset} are not three u32 inside the buffer`);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.bindGroup(pipeline, resources));
    pass.dispatchWorkgroupsIndirect(args, offset);
  }

  private bindGroup(pipeline: GPUComputePipeline, resources: Binding[]): GPUBindGroup {
    let cache = this.bindGroups.get(pipeline);
    if (!cache) {
      cache = { layout: pipeline.getBindGroupLayout(0), groups: new Map() };
      this.bindGroups.set(pipeline, cache);
    }
    const ranges = resources.map((r) => ('size' in r && 'usage' in r ? { buffer: r as GPUBuffer } : (r as GPUBufferBinding)));
    const key = ranges.map(({ buffer, offset, size }) => {
      let id = this.bufferIds.get(buffer);
      if (id === undefined) this.bufferIds.set(buffer, (id = this.nextBufferId++));
      return `${id}:${offset ?? 0}:${size ?? ''}`;
    }).join(',');
    let group = cache.groups.get(key);
    if (!group) {
      // Per-step temporary buffers never come back: bound the cache rather than track them.
      if (cache.groups.size >= 2048) cache.groups.clear();
      group = this.device.createBindGroup({ label: pipeline.label, layout: cache.layout, entries: ranges.map((resource, binding) => ({ binding, resource })) });
      cache.groups.set(key, group);
      this.bindGroupsCreated++;
    }
    return group;
  }

  /**
   * Record compute work into one pass and submit it. Validation and out-of-memory errors
   * (bad WGSL, bad bindings) are raised here as GpuError, so a broken kernel never looks like
   * it ran. Dispatches inside one pass are ordered: each sees the previous one's writes.
   */
  async run(record: (pass: GPUComputePassEncoder, encoder: GPUCommandEncoder) => void, label = 'run', timestampWrites?: GPUComputePassTimestampWrites): Promise<void> {
    this.throwIfLost();
    const device = this.device;
    device.pushErrorScope('internal');
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let thrown: unknown = null;
    try {
      const encoder = device.createCommandEncoder({ label });
      const pass = encoder.beginComputePass({ label, timestampWrites });
      try {
        record(pass, encoder);
      } finally {
        pass.end();
      }
      this.flushUniforms();
      device.queue.submit([encoder.finish()]);
      this.submissions++;
    } catch (error) {
      thrown = error;
      for (const chunk of this.uniformChunks) chunk.used = 0;
      this.uniformChunk = 0;
    }
    const validation = await device.popErrorScope();
    const outOfMemory = await device.popErrorScope();
    const internal = await device.popErrorScope();
    this.throwIfLost();
    const modules = this.newModules;
    this.newModules = [];
    if (validation) throw new GpuError('validation', `${label}: ${await describeCompileErrors(modules)}${validation.message}`);
    if (outOfMemory) throw new GpuError('out-of-memory', `${label}: out of GPU memory: ${outOfMemory.message}`);
    if (internal) throw new GpuError('validation', `${label}: internal GPU error: ${internal.message}`);
    if (thrown) throw thrown;
  }

  /** Copy `size` bytes of `buffer` from `offset` back to the CPU. */
  async read(buffer: GPUBuffer, offset = 0, size = buffer.size - offset): Promise<ArrayBuffer> {
    this.throwIfLost();
    const bytes = align(size, 4);
    // Small reads (token ids, every decoding step) reuse staging buffers: a new mappable buffer
    // per read slowed a long run on a real GPU as they piled up for the garbage collector.
    const pooled = bytes <= STAGING_POOL_BYTES;
    const staging = (pooled && this.stagingPool.pop()) || this.device.createBuffer({ label: 'readback', size: pooled ? STAGING_POOL_BYTES : bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    let reusable = false;
    try {
      const encoder = this.device.createCommandEncoder({ label: 'readback' });
      encoder.copyBufferToBuffer(buffer, offset, staging, 0, bytes);
      this.device.queue.submit([encoder.finish()]);
      this.submissions++;
      await new Promise<void>((resolve, reject) => {
        this.pendingReads.add(reject);
        staging.mapAsync(GPUMapMode.READ, 0, bytes).then(resolve, reject).finally(() => this.pendingReads.delete(reject));
      });
      this.throwIfLost();
      const data = staging.getMappedRange(0, bytes).slice(0, size);
      staging.unmap();
      reusable = pooled;
      return data;
    } finally {
      if (reusable && this.stagingPool.length < 8) this.stagingPool.push(staging);
      else staging.destroy();
    }
  }

  async readF32(buffer: GPUBuffer, count?: number): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, 0, count === undefined ? undefined : count * 4));
  }

  async readU32(buffer: GPUBuffer, count?: number): Promise<Uint32Array> {
    return new Uint32Array(await this.read(buffer, 0, count === undefined ? undefined : count * 4));
  }

  throwIfLost(): void {
    if (this.lostError) throw this.lostError;
  }

  destroy(): void {
    for (const chunk of this.uniformChunks) chunk.buffer.destroy();
    for (const staging of this.stagingPool) staging.destroy();
    this.stagingPool.length = 0;
    this.pipelines.clear();
    this.device.destroy();
  }
}

/** "kernel <label>: <first error>; " for modules that failed to compile, to say which kernel broke. */
async function describeCompileErrors(modules: GPUShaderModule[]): Promise<string> {
  const failed: string[] = [];
  for (const module of modules) {
    const info = await module.getCompilationInfo();
    const error = info.messages.find((m) => m.type === 'error');
    if (error) failed.push(`kernel ${module.label} line ${error.lineNum}: ${error.message}`);
  }
  return failed.length ? `${failed.join('; ')}; ` : '';
}

export function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** Storage bindings at an offset must start at a multiple of this (WebGPU's default minStorageBufferOffsetAlignment). */
export const BINDING_ALIGN = 256;

/** Split a 1-D workgroup count over x and y when it is over the per-dimension limit. */
export function grid(workgroups: number, maxPerDimension = 65535): [number, number] {
  if (workgroups <= maxPerDimension) return [workgroups, 1];
  const y = Math.ceil(workgroups / maxPerDimension);
  return [Math.ceil(workgroups / y), y];
}
