/**
 * withFusedBias falls back to the separate Add only when the backend refuses the bias (wasm's kernel reads the
 * shape the bias's data was made with, so a [1, 1, 1, C] tensor reshaped to [C] is refused) and remembers that
 * bias; any other error inside the fused op is thrown, not taken for a refusal.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { withFusedBias } from '../src/ops/fused-bias.js';
import { useBackend } from './helpers.js';

describe('withFusedBias (wasm)', () => {
  useBackend('wasm');

  test('a bias wasm refuses gets undefined, is remembered, and leaks nothing', () => {
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    const w = tf.tensor4d([2, -1], [1, 1, 1, 2]);
    const bias4 = tf.tensor4d([0.5, -0.5], [1, 1, 1, 2]);
    const bias = tf.reshape(bias4, [2]); // the view keeps the [1, 1, 1, 2] shape of its data
    const before = tf.memory().numTensors;
    let calls = 0;
    const conv = () => {
      calls++;
      return tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'valid', bias });
    };
    expect(withFusedBias(bias, conv)).toBeUndefined();
    expect(tf.memory().numTensors).toBe(before);
    expect(withFusedBias(bias, conv)).toBeUndefined();
    expect(calls).toBe(1);

    const fresh = tf.tensor1d([0.5, -0.5]);
    const y = withFusedBias(fresh, () =>
      tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'valid', bias: fresh }),
    );
    expect(Array.from(y!.dataSync())).toEqual([2.5, -1.5, 4.5, -2.5, 6.5, -3.5, 8.5, -4.5]);
    tf.dispose([x, w, bias4, bias, fresh, y!]);
  });

  test('another error inside the fused op is thrown, and the bias stays fusable', () => {
    const bias = tf.tensor1d([1, 2]);
    expect(() =>
      withFusedBias(bias, () => {
        throw new TypeError("Cannot read properties of null (reading 'shape')");
      }),
    ).toThrow(TypeError);
    // a TypeError that names the bias is still the op's bug: Firefox's and Safari's messages name the variable
    for (const message of [
      'can\'t access property "shape", bias is undefined',
      "undefined is not an object (evaluating 'bias.shape')",
    ]) {
      expect(() =>
        withFusedBias(bias, () => {
          throw new TypeError(message);
        }),
      ).toThrow(message);
    }
    const y = withFusedBias(bias, () => tf.add(bias, 1));
    expect(y).toBeDefined();
    expect(Array.from(y!.dataSync())).toEqual([2, 3]);
    tf.dispose([bias, y!]);
  });
});
