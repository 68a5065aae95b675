// Errors thrown in the worker arrive in the page as EngineErrors with their kind. Comlink's own
// handler keeps only name, message and stack, so both sides install this one instead.
import * as Comlink from 'comlink';
import { EngineError, toEngineError } from '../engine/errors';

interface SerializedThrow {
  isError: boolean;
  value: unknown;
}

const builtin = Comlink.transferHandlers.get('throw')!;

Comlink.transferHandlers.set('throw', {
  canHandle: builtin.canHandle,
  serialize(thrown: unknown): [SerializedThrow, Transferable[]] {
    const value = (thrown as { value: unknown }).value;
    if (value instanceof Error) {
      const error = toEngineError(value);
      return [{ isError: true, value: { kind: error.kind, message: error.message, stack: error.stack } }, []];
    }
    return [{ isError: false, value }, []];
  },
  deserialize(serialized: unknown): never {
    const { isError, value } = serialized as SerializedThrow;
    if (!isError) throw value;
    const { kind, message, stack } = value as { kind: EngineError['kind']; message: string; stack?: string };
    const error = new EngineError(kind, message);
    if (stack) error.stack = `${error.stack}\n--- in the engine worker ---\n${stack}`;
    throw error;
  },
});

/** A worker_threads port or Worker, as much of it as Comlink needs. */
export interface NodePort {
  postMessage(message: unknown, transfer?: readonly unknown[]): void;
  on(event: 'message', listener: (data: unknown) => void): unknown;
  off(event: 'message', listener: (data: unknown) => void): unknown;
  start?(): void;
}

/** Comlink's endpoint over Node's worker_threads, whose ports deliver the data itself, not an event. */
export function nodeEndpoint(port: NodePort): Comlink.Endpoint {
  const listeners = new Map<EventListenerOrEventListenerObject, (data: unknown) => void>();
  return {
    postMessage: (message, transfer) => port.postMessage(message, transfer),
    addEventListener(_type, handler) {
      const listener = (data: unknown) => {
        const event = { data } as MessageEvent;
        if ('handleEvent' in handler) handler.handleEvent(event);
        else handler(event);
      };
      listeners.set(handler, listener);
      port.on('message', listener);
    },
    removeEventListener(_type, handler) {
      const listener = listeners.get(handler);
      if (listener) port.off('message', listener);
      listeners.delete(handler);
    },
    start: port.start?.bind(port),
  };
}

export { Comlink };
