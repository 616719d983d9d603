/**
 * A batch norm the canonizer merged into its conv is an identity node: the forward pass holds its input's tensor
 * under both ids (no clone). The pass frees that tensor once, never a borrowed one (also where an own identity
 * node passes a borrowed input through), never the caller's input, and what it returned stays valid until then.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { Attributor } from '../src/index.js';
import { mulberry32, randomizeWeights, uniform, useBackend, values } from './helpers.js';

useBackend('wasm');

/** x -> c1 -> bn (merged: identity) -> relu -> c2 -> flatten -> dense */
function model(): tfl.LayersModel {
  const L = tfl.layers;
  const x = tfl.input({ shape: [6, 6, 2], name: 'x' });
  let y = L.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'c1' }).apply(x) as tfl.SymbolicTensor;
  y = L.batchNormalization({ name: 'bn' }).apply(y) as tfl.SymbolicTensor;
  y = L.reLU({ name: 'r' }).apply(y) as tfl.SymbolicTensor;
  y = L.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'c2' }).apply(y) as tfl.SymbolicTensor;
  y = L.flatten({ name: 'f' }).apply(y) as tfl.SymbolicTensor;
  y = L.dense({ units: 2, name: 'd' }).apply(y) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: x, outputs: y });
  randomizeWeights(m, 5);
  return m;
}

describe('an identity node shares its input tensor', () => {
  test('one tensor under both ids, freed once with the pass; the caller input stays', () => {
    const m = model();
    const lrp = new Attributor(m);
    expect(lrp.graph.node('bn').kind).toBe('identity');
    const x = tf.tensor4d(Array.from(uniform(mulberry32(3), 72)), [1, 6, 6, 2]);
    lrp.forward(x).dispose(); // warm-up: the attributor's caches
    const before = tf.memory().numTensors;
    const pass = lrp.forward(x);
    const shared = pass.output('bn');
    expect(shared).toBe(pass.output('c1'));
    // the merged conv's output is the Keras model's batch norm output
    const sub = tfl.model({ inputs: m.inputs, outputs: m.getLayer('bn').output as tfl.SymbolicTensor });
    const keras = sub.predict(x) as tf.Tensor;
    const [a, b] = [values(shared), values(keras)];
    for (let i = 0; i < b.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5);
    keras.dispose();
    pass.dispose();
    expect(shared.isDisposed).toBe(true);
    expect(x.isDisposed).toBe(false);
    expect(tf.memory().numTensors).toBe(before);
    lrp.dispose();
    x.dispose();
    m.dispose();
  });

  test('reuse: a recomputed identity node passes the borrowed tensor through, which the lender keeps', () => {
    const m = model();
    const lrp = new Attributor(m);
    const x = tf.tensor4d(Array.from(uniform(mulberry32(4), 72)), [1, 6, 6, 2]);
    lrp.forward(x).dispose();
    const before = tf.memory().numTensors;
    const first = lrp.forward(x);
    const c1 = first.output('c1');
    const expected = values(first.prediction);
    for (const changed of [['bn'], ['r'], ['c2']]) {
      const second = lrp.forward(x, { reuse: { pass: first, changed } });
      expect(second.output('bn')).toBe(c1);
      expect(values(second.prediction)).toEqual(expected); // no weights changed: the same values
      second.dispose();
      expect(c1.isDisposed).toBe(false);
      expect(values(first.output('bn'))).toEqual(values(c1));
    }
    first.dispose();
    expect(c1.isDisposed).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    lrp.dispose();
    x.dispose();
    m.dispose();
  });
});
