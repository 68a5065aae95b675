// The engine's worker thread in Node: the same EngineCore as the Web Worker, behind Comlink, over
// worker_threads' parentPort. Dawn (npm `webgpu`) runs in worker threads as it does in the main one.
import { parentPort } from 'node:worker_threads';
import { EngineCore } from '../engine/engine-core';
import { Comlink, nodeEndpoint } from './transfer';

if (!parentPort) throw new Error('engine.node-worker runs as a worker thread (createEngine starts it)');
Comlink.expose(new EngineCore(), nodeEndpoint(parentPort));
