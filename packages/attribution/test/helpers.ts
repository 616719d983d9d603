/** Shared setup of the @crp/attribution suite: wasm backend, a seeded PRNG and tiny seeded models. */
import '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '@crp/testing';
import type * as tf from '@tensorflow/tfjs-core';

export function useWasm(): void {
  useBackend('wasm');
}

export { expectCrpErrorAsync as expectCrpError } from '@crp/testing';
export { mulberry32, seedWeights, tinyImages, tinyModel, uniform } from './fixtures/models.js';

export function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}
