/** Backend selection for a test file. The backend itself must be registered (imported) by the caller. */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll } from 'vitest';

/** Selects the backend for the test file (wasm, the toolkit's Node default, unless a file asks for cpu). */
export function useBackend(name: 'wasm' | 'cpu' = 'wasm'): void {
  beforeAll(async () => {
    await switchBackend(name);
  });
}

/** Sets the backend, waits for it and checks it is active. */
export async function switchBackend(name: 'wasm' | 'cpu'): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} failed to initialise`);
  await tf.ready();
  if (tf.getBackend() !== name) throw new Error(`backend is ${tf.getBackend()}, wanted ${name}`);
}
