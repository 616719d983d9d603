/** Shared setup of the @crp/attribution suite: wasm backend, a seeded PRNG and tiny seeded models. */
import '@tensorflow/tfjs-backend-wasm';
import { CrpError } from '@crp/lrp';
import { useBackend } from '@crp/testing';
import type * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';

export function useWasm(): void {
  useBackend('wasm');
}

export { mulberry32, seedWeights, tinyImages, tinyModel, uniform } from './fixtures/models.js';

/** Runs `fn` (sync or async), checks that it throws a CrpError with `code` and a message matching every pattern. */
export async function expectCrpError(
  fn: () => unknown,
  code: string,
  ...patterns: (string | RegExp)[]
): Promise<void> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a CrpError').toBeInstanceOf(CrpError);
  const err = caught as CrpError;
  expect(err.code).toBe(code);
  for (const p of patterns) {
    if (typeof p === 'string') expect(err.message).toContain(p);
    else expect(err.message).toMatch(p);
  }
}

export function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}
