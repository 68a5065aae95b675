/** Kinds of failure a caller can act on. Messages say what went wrong in words. */
export type GpuErrorKind =
  | 'no-webgpu' // no navigator.gpu / no adapter
  | 'unsupported' // a feature or format this device lacks
  | 'too-large' // a request over the device's limits
  | 'validation' // WGSL compile error or invalid command: a bug, never silent
  | 'out-of-memory'
  | 'device-lost'
  | 'bad-argument';

export class GpuError extends Error {
  constructor(
    readonly kind: GpuErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'GpuError';
  }
}

export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new GpuError('bad-argument', typeof message === 'string' ? message : message());
}
