import * as tf from '@tensorflow/tfjs-core';

/** Backends whose tensors live in host memory: reading a tensor back is a copy there, not a download, and a
 * loop in JS or whole-row copies can beat a kernel that a GPU backend would run in parallel. */
const HOST_BACKENDS: ReadonlySet<string> = new Set(['cpu', 'wasm']);

/** Whether the current backend is a host backend (cpu, wasm); the ops pick their host forms by it. */
export function onHostBackend(): boolean {
  return HOST_BACKENDS.has(tf.getBackend());
}
