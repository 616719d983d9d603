/**
 * The fused forward of the perturbation metrics' batched passes (a conv or dense layer and the ReLU layer after
 * it as one op) gives model.predict's logits to the bit, on the wasm backend the bench uses, and leaks nothing.
 */
import { smallVgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { fusedForward, predictTargets } from '../src/predict.js';
import { images, mulberry32, useBackend } from './helpers.js';

useBackend('wasm');

/** Every layer kind the plan meets: conv + ReLU layer (fused), conv + Activation('relu') (fused), a conv with
 * its own ReLU and a strided one without (not fused), pools, dropout, dense + ReLU (fused), the logits. */
function mixed(): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [12, 12, 3], filters: 5, kernelSize: 3, padding: 'same', name: 'c1' }),
      tfl.layers.reLU({ name: 'r1' }),
      tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'valid', name: 'c2' }),
      tfl.layers.activation({ activation: 'relu', name: 'r2' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'p1' }),
      tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c3' }),
      tfl.layers.conv2d({
        filters: 4,
        kernelSize: 2,
        strides: 2,
        padding: 'same',
        dilationRate: 1,
        name: 'c4',
      }),
      tfl.layers.averagePooling2d({ poolSize: 1, name: 'p2' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 7, name: 'fc1' }),
      tfl.layers.reLU({ name: 'fc1_relu' }),
      tfl.layers.dropout({ rate: 0.5, name: 'drop' }),
      tfl.layers.dense({ units: 3, name: 'logits' }),
    ],
  });
  const next = mulberry32(21);
  model.setWeights(
    model.getWeights().map((w) =>
      tf.tensor(
        Float32Array.from({ length: w.size }, () => next() - 0.45),
        w.shape,
      ),
    ),
  );
  return model;
}

describe('fused forward', () => {
  for (const [name, make, shape] of [
    ['a mixed chain', mixed, [12, 12, 3]],
    ['the small VGG', () => smallVgg({ seed: 3 }), [64, 64, 3]],
  ] as const) {
    it(`${name}: model.predict's logits to the bit, through predictTargets too, no tensor leaked`, async () => {
      const model = make();
      const forward = fusedForward(model);
      expect(forward).toBeDefined();
      const x = images(5, shape[0], shape[1], shape[2], 4);
      const expected = model.predict(x) as tf.Tensor;
      const before = tf.memory().numTensors;
      const y = forward!(x);
      expect(tf.memory().numTensors).toBe(before + 1);
      expect(y.shape).toEqual(expected.shape);
      expect(y.dataSync()).toEqual(expected.dataSync());
      // the values are not all cut to 0 by the ReLUs
      expect(new Set(y.dataSync()).size).toBe(y.size);
      const classes = expected.shape[1]!;
      const labels = [0, 1, 2, 1, 0];
      const values = x.dataSync() as Float32Array;
      const features = shape[0] * shape[1] * shape[2];
      const scored = await predictTargets(
        model,
        shape,
        labels.map((label, i) => ({ input: values.subarray(i * features, (i + 1) * features), label })),
        labels.length,
        { batchSize: 2, softmax: false, phase: 'test', describe: (i) => `input ${i}` },
      );
      const logits = expected.dataSync();
      expect(Array.from(scored)).toEqual(labels.map((l, i) => logits[i * classes + l]!));
      expect(tf.memory().numTensors).toBe(before + 1);
      tf.dispose([x, y, expected]);
      model.dispose();
    });
  }

  it('is not used where nothing would be fused', () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.flatten({ inputShape: [2, 2, 1] }),
        tfl.layers.dense({ units: 2, activation: 'relu' }),
        tfl.layers.dense({ units: 2 }),
      ],
    });
    expect(fusedForward(model)).toBeUndefined();
    model.dispose();
  });
});
