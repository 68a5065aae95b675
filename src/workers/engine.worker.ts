// The engine's Web Worker: GPU objects cannot cross threads, so the device, the model and the KV
// caches all live here, and the page talks to this EngineCore through Comlink.
import { EngineCore } from '../engine/engine-core';
import { Comlink } from './transfer';

Comlink.expose(new EngineCore());
