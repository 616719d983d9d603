import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';

/** The conformance CLI is an application, so it picks the backend: wasm by default (the Node default of the
 * toolkit), cpu on request. */
export async function useBackend(name: 'wasm' | 'cpu'): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`TF.js backend '${name}' could not be initialised`);
  await tf.ready();
}
