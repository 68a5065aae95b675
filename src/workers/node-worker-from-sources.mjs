// Starts the Node engine worker from the TypeScript sources (tests, tsx scripts): tsx compiles
// them inside the worker thread, where Node 20 ignores an `--import tsx` in execArgv.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.script);
