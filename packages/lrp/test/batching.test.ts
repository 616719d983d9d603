import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { Attributor, disposeResult } from '../src/index.js';
import { mulberry32, randomizeWeights, uniform, useBackend } from './helpers.js';

useBackend('wasm');

function model(): tfl.LayersModel {
  const m = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, padding: 'same', name: 'c1' }),
      tfl.layers.reLU({ name: 'r1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'p1' }),
      tfl.layers.flatten({ name: 'f' }),
      tfl.layers.dense({ units: 4, name: 'out' }),
    ],
  });
  randomizeWeights(m, 7);
  return m;
}

describe('large inputs are split into batches (wasm heap) without changing the result', () => {
  it('batchSize 2 and 3 give the same relevance, prediction and records as one batch', () => {
    const m = model();
    const lrp = new Attributor(m, { composite: 'epsilon_plus_flat' });
    const x = tf.tensor4d(Float32Array.from(uniform(mulberry32(3), 7 * 6 * 6 * 2)), [7, 6, 6, 2]);
    const target = [0, 1, 2, 3, 0, 1, 2];
    const whole = lrp.attribute(x, { target, recordLayers: ['c1'], batchSize: 64 });
    for (const batchSize of [2, 3]) {
      const before = tf.memory().numTensors;
      const split = lrp.attribute(x, { target, recordLayers: ['c1'], batchSize });
      expect(split.relevance.shape).toEqual([7, 6, 6, 2]);
      expect(Array.from(split.relevance.dataSync())).toEqual(Array.from(whole.relevance.dataSync()));
      expect(Array.from(split.prediction.dataSync())).toEqual(Array.from(whole.prediction.dataSync()));
      expect(Array.from(split.relevances.c1!.dataSync())).toEqual(
        Array.from(whole.relevances.c1!.dataSync()),
      );
      disposeResult(split);
      expect(tf.memory().numTensors).toBe(before);
    }
    // a tensor initial relevance is split with the rows
    const init = tf.tidy(() => tf.mul(whole.prediction, tf.oneHot(tf.tensor1d(target, 'int32'), 4)));
    const viaInit = lrp.attribute(x, { initRelevance: init, batchSize: 3 });
    expect(Array.from(viaInit.relevance.dataSync())).toEqual(Array.from(whole.relevance.dataSync()));
    disposeResult(viaInit);
    // recorded layers are split and joined with the rows too; a result holds its three fields only
    const before = tf.memory().numTensors;
    const rec = lrp.attribute(x, { initRelevance: init, recordLayers: ['c1'], batchSize: 3 });
    expect(Array.from(rec.relevance.dataSync())).toEqual(Array.from(whole.relevance.dataSync()));
    expect(Array.from(rec.relevances.c1!.dataSync())).toEqual(Array.from(whole.relevances.c1!.dataSync()));
    expect(Object.keys(rec)).toEqual(['relevance', 'prediction', 'relevances']);
    disposeResult(rec);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => lrp.attribute(x, { target: [0, 1], batchSize: 3 })).toThrow(/2 targets for a batch of 7/);
    expect(() => lrp.attribute(x, { target: 0, batchSize: 0 })).toThrow(/positive integer/);
    init.dispose();
    disposeResult(whole);
    x.dispose();
    lrp.dispose();
    m.dispose();
  });

  it('picks a default batch size from the largest layer (VGG16-sized layers give a few rows)', () => {
    const m = model();
    const lrp = new Attributor(m);
    // 6x6x3 is the largest output here: the budget allows the cap of 64 rows
    expect(lrp.rowsThatFit()).toBe(64);
    // 224x224x64 floats, 12 tensors: 1.5 GiB / 154 MB = 10 rows
    expect(lrp.rowsThatFit(1.5 * 2 ** 30, [])).toBe(64);
    lrp.dispose();
    m.dispose();
  });
});
