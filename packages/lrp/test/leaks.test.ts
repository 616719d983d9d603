/**
 * No tensor leaks: tf.memory().numTensors is unchanged after 500 attributions (results disposed), after
 * one-shot `attribute` calls, after forward/backward passes, and Attributor.dispose() releases what the
 * attributor made (merged batch norms, modified weights), never the model's own weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { Attributor, attribute, disposeResult, epsilonGammaBox } from '../src/index.js';
import { mulberry32, randomizeWeights, snapshotWeights, uniform, useBackend, values } from './helpers.js';

useBackend('wasm');

/** conv -> BN -> ReLU -> maxpool -> [conv, identity] -> add -> avgpool -> flatten -> dense */
function smallModel(): tfl.LayersModel {
  const L = tfl.layers;
  const x = tfl.input({ shape: [8, 8, 1], name: 'x' });
  const c1 = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c1' }).apply(
    x,
  ) as tfl.SymbolicTensor;
  const bn = L.batchNormalization({ name: 'bn' }).apply(c1) as tfl.SymbolicTensor;
  const r = L.reLU({ name: 'r' }).apply(bn) as tfl.SymbolicTensor;
  const mp = L.maxPooling2d({ poolSize: 2, name: 'mp' }).apply(r) as tfl.SymbolicTensor;
  const c2 = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c2' }).apply(
    mp,
  ) as tfl.SymbolicTensor;
  const add = L.add({ name: 'add' }).apply([c2, mp]) as tfl.SymbolicTensor;
  const ap = L.averagePooling2d({ poolSize: 2, name: 'ap' }).apply(add) as tfl.SymbolicTensor;
  const f = L.flatten({ name: 'f' }).apply(ap) as tfl.SymbolicTensor;
  const d = L.dense({ units: 3, activation: 'softmax', name: 'd' }).apply(f) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: x, outputs: d });
  randomizeWeights(model, 8);
  return model;
}

describe('no tensor leaks', () => {
  test('500 attributions with an Attributor: numTensors unchanged', () => {
    const model = smallModel();
    const x = tf.tensor4d(Array.from(uniform(mulberry32(1), 64)), [1, 8, 8, 1]);
    const lrp = new Attributor(model, { composite: 'epsilon_plus_flat' });
    disposeResult(lrp.attribute(x, { target: 0 })); // warm-up: the attributor caches modified weights once
    const before = tf.memory().numTensors;
    let checksum = 0;
    for (let i = 0; i < 500; i++) {
      const result = lrp.attribute(x, { target: i % 3, recordLayers: i % 2 === 0 ? ['c2', 'mp'] : [] });
      if (i === 499) checksum = values(result.relevance).reduce((a, b) => a + Math.abs(b), 0);
      disposeResult(result);
    }
    expect(checksum).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
    lrp.dispose();
    x.dispose();
    model.dispose();
  });

  test('other composites, batches, initRelevance tensors and functions, forward/backward', () => {
    const model = smallModel();
    const x = tf.tensor4d(Array.from(uniform(mulberry32(2), 3 * 64)), [3, 8, 8, 1]);
    const r = tf.ones([3, 3]);
    const composites = [
      'epsilon_plus',
      'epsilon_alpha2_beta1',
      'epsilon_alpha2_beta1_flat',
      epsilonGammaBox({ low: 0, high: 1 }),
    ] as const;
    const attributors = composites.map((composite) => new Attributor(model, { composite }));
    for (const a of attributors) disposeResult(a.attribute(x, { target: [0, 1, 2] }));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) {
      for (const a of attributors) {
        disposeResult(a.attribute(x, { target: [0, 1, 2], recordLayers: ['r', 'add', 'x'] }));
        disposeResult(a.attribute(x, { initRelevance: r }));
        disposeResult(a.attribute(x, { initRelevance: (p) => tf.mul(p, 2) }));
        const pass = a.forward(x);
        const rAdd = tf.onesLike(pass.output('add'));
        const out = a.backward(pass, { from: 'add', relevance: rAdd, stopAt: ['mp'], record: ['add'] });
        expect(out.get('add')).not.toBe(rAdd); // a recorded copy, not the caller's tensor
        for (const t of out.values()) t.dispose();
        expect(rAdd.isDisposed).toBe(false);
        rAdd.dispose();
        pass.dispose();
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(r.isDisposed).toBe(false); // the caller's initRelevance is not disposed
    for (const a of attributors) a.dispose();
    for (const t of [x, r]) t.dispose();
    model.dispose();
  });

  test('one-shot attribute(): numTensors unchanged', () => {
    const model = smallModel();
    const x = tf.tensor4d(Array.from(uniform(mulberry32(3), 64)), [1, 8, 8, 1]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 30; i++) disposeResult(attribute(model, x, { target: 1, composite: 'epsilon_plus' }));
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  });

  test('Attributor.dispose() releases the attributor’s tensors, not the model’s', () => {
    const model = smallModel();
    const weights = snapshotWeights(model);
    const x = tf.tensor4d(Array.from(uniform(mulberry32(4), 64)), [1, 8, 8, 1]);
    const before = tf.memory().numTensors;
    const lrp = new Attributor(model, { composite: 'epsilon_alpha2_beta1_flat' });
    const result = lrp.attribute(x, { target: 2 });
    disposeResult(result);
    // merged conv + BN weights and the rules' modified weights are held now
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    lrp.dispose();
    expect(tf.memory().numTensors).toBe(before);
    lrp.dispose(); // idempotent
    expect(tf.memory().numTensors).toBe(before);
    // the model is intact and usable
    expect(snapshotWeights(model).map((w) => Array.from(w))).toEqual(weights.map((w) => Array.from(w)));
    const y = model.predict(x) as tf.Tensor;
    expect(values(y).every(Number.isFinite)).toBe(true);
    y.dispose();
    x.dispose();
    model.dispose();
  });
});
