/**
 * Seeded values and weights shared by the test suites. No vitest import: job workers and child processes of the
 * @crp/attribution tests load this through `@crp/testing/seeded`.
 */

import { mulberry32 } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

export { mulberry32 } from '@crp/common';

/** n uniform values in [lo, hi), rounded to float32 (so a tensor made from them holds exactly these). */
export function uniform(rng: () => number, n: number, lo = -1, hi = 1): number[] {
  return Array.from({ length: n }, () => Math.fround(lo + (hi - lo) * rng()));
}

/** A float32 tensor of `shape` filled with {@link uniform} values of `mulberry32(seed)` in [lo, hi), in order. The
 * caller owns it. */
export function uniformTensor(shape: readonly number[], seed: number, lo = -1, hi = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(uniform(mulberry32(seed), n, lo, hi), [...shape]);
}

/**
 * Sets every weight of a model from a seeded PRNG, layer by layer in getWeights order: the first weight of a
 * layer (the kernel) uniform in `kernel`, the others (bias) in `bias`. With `batchNorm`, the i-th weight of a
 * BatchNormalization layer (gamma, beta, moving mean, moving variance) is uniform in `batchNorm[i]`.
 */
export function seedWeights(
  model: tfl.LayersModel,
  seed: number,
  kernel: readonly number[] = [-0.6, 0.6],
  bias: readonly number[] = [-0.1, 0.3],
  batchNorm?: readonly (readonly [number, number])[],
): void {
  const rng = mulberry32(seed);
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    const isBn = batchNorm !== undefined && layer.getClassName() === 'BatchNormalization';
    const made = ws.map((w, i) => {
      const [lo, hi] = isBn ? batchNorm[i]! : i === 0 ? kernel : bias;
      return tf.tensor(uniform(rng, w.size, lo, hi), w.shape);
    });
    layer.setWeights(made);
    for (const t of made) t.dispose();
  }
}
