/**
 * Attributor.refreshLayers: after a layer's weights change in place, the kept attributor explains as a new one
 * built on the changed model, and refuses (false) where a canonizer merged the layer's weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, test } from 'vitest';
import { Attributor } from '../src/index.js';
import { mulberry32, randomizeWeights, uniform, useBackend, values } from './helpers.js';

useBackend('cpu');

function cnn(withBatchNorm: boolean): tfl.LayersModel {
  const m = tfl.sequential();
  m.add(
    tfl.layers.conv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, padding: 'same', name: 'conv1' }),
  );
  if (withBatchNorm) m.add(tfl.layers.batchNormalization({ name: 'bn' }));
  // a convolution after the first: EpsilonPlusFlat's z+ rule derives its positive weights (cached)
  m.add(tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'conv2' }));
  m.add(tfl.layers.reLU({ name: 'relu' }));
  m.add(tfl.layers.flatten({ name: 'flat' }));
  m.add(tfl.layers.dense({ units: 4, name: 'out' }));
  randomizeWeights(m, 3);
  return m;
}

function relevance(lrp: Attributor, x: tf.Tensor): Float64Array {
  const r = lrp.attribute(x, { target: 1 });
  const v = values(r.relevance);
  tf.dispose([r.relevance, r.prediction, ...Object.values(r.relevances)]);
  return v;
}

test('a refreshed attributor explains as a new one on the changed weights, and leaks nothing', () => {
  const model = cnn(false);
  const x = tf.tensor4d(Float32Array.from(uniform(mulberry32(5), 72)), [1, 6, 6, 2]);
  const kept = new Attributor(model, { composite: 'epsilon_plus_flat' });
  const stale = new Attributor(model, { composite: 'epsilon_plus_flat' });
  const before = relevance(kept, x);
  relevance(stale, x);
  for (const name of ['out', 'conv2', 'conv1']) {
    const layer = model.getLayer(name);
    const rng = mulberry32(name.length);
    layer.setWeights(
      layer.getWeights().map((w) => tf.tensor(Float32Array.from(uniform(rng, w.size)), w.shape)),
    );
    const tensors = tf.memory().numTensors;
    expect(kept.refreshLayers(model, [name])).toBe(true);
    // the derived parameters of the layer are freed; the next pass derives them again
    expect(tf.memory().numTensors).toBeLessThanOrEqual(tensors);
    const fresh = new Attributor(model, { composite: 'epsilon_plus_flat' });
    expect(relevance(kept, x)).toEqual(relevance(fresh, x));
    fresh.dispose();
  }
  expect(relevance(kept, x)).not.toEqual(before);
  // not refreshed, the z+ rule of conv2 still uses the old positive weights: the refresh is what made them equal
  const fresh = new Attributor(model, { composite: 'epsilon_plus_flat' });
  expect(relevance(stale, x)).not.toEqual(relevance(fresh, x));
  fresh.dispose();
  stale.dispose();
  kept.dispose();
  x.dispose();
  model.dispose();
});

test('refuses a layer whose weights a canonizer merged (batch norm into the convolution)', () => {
  const model = cnn(true);
  const lrp = new Attributor(model, { composite: 'epsilon_plus_flat' });
  expect(lrp.refreshLayers(model, ['conv1'])).toBe(false);
  expect(lrp.refreshLayers(model, ['bn'])).toBe(false);
  expect(lrp.refreshLayers(model, ['out'])).toBe(true);
  lrp.dispose();
  model.dispose();
});
