import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { flipSpatial, transpose2d } from '../src/ops/linear.js';
import { useBackend } from './helpers.js';

useBackend('wasm');

// the transposes' weights are permutations of the kernel's values: bit-equal to the plain ops
describe('weight permutations of the transposes', () => {
  it('flipSpatial equals tf.reverse over the two spatial axes, and frees what it makes', () => {
    const before = tf.memory().numTensors;
    for (const shape of [
      [3, 3, 4, 5],
      [1, 3, 2, 2],
      [5, 2, 3, 1],
      [1, 1, 3, 4],
    ] as const) {
      tf.tidy(() => {
        const k = tf.randomUniform([...shape], -1, 1, 'float32', 7);
        const got = flipSpatial(k);
        expect(got.shape).toEqual([...shape]);
        expect(Array.from(got.dataSync())).toEqual(Array.from(tf.reverse(k, [0, 1]).dataSync()));
      });
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('transpose2d equals tf.transpose, in blocks and not', () => {
    const before = tf.memory().numTensors;
    for (const shape of [
      [512, 10],
      [384, 7],
      [128, 3],
      [300, 4],
      [3, 500],
    ] as const) {
      tf.tidy(() => {
        const w = tf.randomUniform([...shape], -1, 1, 'float32', 3) as tf.Tensor2D;
        const got = transpose2d(w);
        expect(got.shape).toEqual([shape[1], shape[0]]);
        expect(Array.from(got.dataSync())).toEqual(Array.from(tf.transpose(w).dataSync()));
      });
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
