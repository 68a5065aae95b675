// One error type for everything the engine reports, with a kind a caller can act on. It crosses
// the worker boundary intact (see workers/transfer.ts), so a page sees the same error in-thread
// and from the worker.
import { GGUFError } from '../formats/gguf';
import { SafetensorsError } from '../formats/safetensors';
import { GpuError } from '../gpu';
import { ModelFormatError } from '../models/config';
import { AbortError } from './generate';

export type EngineErrorKind =
  | 'bad-model' // not a model file, truncated, corrupt, inconsistent
  | 'unsupported' // an architecture, quant type or projector this build does not run
  | 'too-large' // over the device's limits or the session's context
  | 'device-lost'
  | 'no-webgpu'
  | 'network' // the URL could not be fetched
  | 'integrity' // the bytes do not match the expected SHA-256
  | 'aborted'
  | 'bad-request' // a call with arguments that cannot work (no model loaded, unknown session, ...)
  | 'internal';

export class EngineError extends Error {
  constructor(
    readonly kind: EngineErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/** Maps any thrown value to an EngineError with the most useful kind, keeping the message. */
export function toEngineError(error: unknown): EngineError {
  if (error instanceof EngineError) return error;
  if (error instanceof AbortError || (error instanceof Error && error.name === 'AbortError')) return new EngineError('aborted', error.message || 'aborted');
  if (error instanceof GGUFError || error instanceof SafetensorsError) {
    return new EngineError(/unknown GGML type|unsupported|not supported/i.test(error.message) ? 'unsupported' : 'bad-model', error.message);
  }
  if (error instanceof ModelFormatError) return new EngineError(error.kind === 'unsupported-architecture' ? 'unsupported' : 'bad-model', error.message);
  if (error instanceof GpuError) {
    const kinds: Record<string, EngineErrorKind> = {
      'no-webgpu': 'no-webgpu', unsupported: 'unsupported', 'too-large': 'too-large', 'out-of-memory': 'too-large',
      'device-lost': 'device-lost', 'bad-argument': 'bad-request', validation: 'internal',
    };
    return new EngineError(kinds[error.kind] ?? 'internal', error.message);
  }
  if (error instanceof RangeError && /past the end of the source/.test(error.message)) return new EngineError('bad-model', `file is truncated: ${error.message}`);
  if (error instanceof Error) return new EngineError('internal', error.message);
  return new EngineError('internal', String(error));
}
