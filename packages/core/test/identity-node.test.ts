/**
 * A batch norm merged into its conv is an identity node whose forward tensor is its input's (one tensor under two
 * ids). What CRP returns at that layer, recorded relevance and activation, is the caller's and outlives the
 * forward pass; the pass frees the shared tensor once, also when the run starts at that layer in several chunks.
 */
import { seedWeights } from '@crp/testing';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { CondAttribution, disposeCondResult } from '../src/index.js';
import {
  activationOf,
  expectClose,
  expectIdentical,
  expectNonZero,
  images,
  row,
  useWasm,
} from './helpers.js';

useWasm();

/** image [6, 6, 3] -> c1 -> bn (merged: identity) -> relu -> flatten -> dense (3 logits) */
function model(): tfl.LayersModel {
  const L = tfl.layers;
  const x = tfl.input({ shape: [6, 6, 3], name: 'image' });
  let y = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c1' }).apply(x) as tfl.SymbolicTensor;
  y = L.batchNormalization({ name: 'bn' }).apply(y) as tfl.SymbolicTensor;
  y = L.reLU({ name: 'r' }).apply(y) as tfl.SymbolicTensor;
  y = L.flatten({ name: 'f' }).apply(y) as tfl.SymbolicTensor;
  y = L.dense({ units: 3, name: 'd' }).apply(y) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: x, outputs: y });
  // gamma, beta, moving mean, moving variance (> 0)
  seedWeights(
    m,
    9,
    [-0.6, 0.6],
    [-0.1, 0.3],
    [
      [0.5, 1.5],
      [-0.2, 0.2],
      [-0.2, 0.2],
      [0.5, 1.5],
    ],
  );
  return m;
}

describe('a merged batch norm (identity node)', () => {
  test('recorded relevance and activation at it outlive the pass, with its values', () => {
    const m = model();
    const crp = new CondAttribution(m);
    expect(crp.attributor.graph.node('bn').kind).toBe('identity');
    const x = images(1, 5);
    const conditions = [
      { y: [0], bn: [1] },
      { y: [0], bn: [2] },
      { y: [0], bn: [0, 3] },
    ];
    const options = { recordLayers: ['bn', 'c1'], recordActivations: ['bn', 'c1'] };
    disposeCondResult(crp.run(x, conditions, options)); // warm-up: the attributor's caches
    const before = tf.memory().numTensors;
    const bnOut = activationOf(m, 'bn', x);
    expectNonZero(bnOut);
    for (const chunkSize of [1, 3]) {
      const result = crp.run(x, conditions, { ...options, chunkSize });
      const { activations: a, relevances: r } = result;
      for (const t of [a.bn!, a.c1!, r.bn!, r.c1!]) expect(t.isDisposed).toBe(false);
      expect(a.bn).not.toBe(a.c1);
      expect(r.bn).not.toBe(r.c1);
      for (let i = 0; i < 3; i++) {
        expectClose(row(a.bn!, i), bnOut, 1e-5);
        expectIdentical(row(a.c1!, i), row(a.bn!, i));
      }
      // the identity passes the masked relevance down: at c1 only the conditioned channels of each row carry any
      expectNonZero(r.bn!);
      conditions.forEach((c, i) => {
        const v = row(r.c1!, i);
        for (let ch = 0; ch < 4; ch++) {
          let s = 0;
          for (let k = ch; k < v.length; k += 4) s += Math.abs(v[k]!);
          expect(s > 0, `row ${i} channel ${ch}`).toBe(c.bn.includes(ch));
        }
      });
      disposeCondResult(result);
    }
    expect(tf.memory().numTensors).toBe(before);
    crp.dispose();
    x.dispose();
    m.dispose();
  });

  test('a run starting at it, in chunks of one forward pass, starts every chunk from its activation', () => {
    const m = model();
    const crp = new CondAttribution(m);
    const x = images(1, 6);
    const conditions = [{ bn: [1] }, { bn: [2] }, { bn: [3] }];
    const whole = crp.run(x, conditions, { startLayer: 'bn', recordActivations: ['bn'] });
    const before = tf.memory().numTensors;
    const chunked = crp.run(x, conditions, { startLayer: 'bn', recordActivations: ['bn'], chunkSize: 2 });
    expectNonZero(whole.heatmap!);
    expectIdentical(chunked.heatmap!, whole.heatmap!);
    expectIdentical(chunked.activations.bn!, whole.activations.bn!);
    expectIdentical(chunked.prediction, whole.prediction);
    disposeCondResult(chunked);
    expect(tf.memory().numTensors).toBe(before);
    disposeCondResult(whole);
    crp.dispose();
    x.dispose();
    m.dispose();
  });
});
