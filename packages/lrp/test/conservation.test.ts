/**
 * Conservation where it holds: Epsilon with zero biases and a tiny epsilon, and ZPlus on non-negative
 * inputs without biases, keep the total relevance at every layer equal to the explained logit.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import {
  Attributor,
  type Composite,
  compositeByName,
  disposeResult,
  layerMapComposite,
  rules,
} from '../src/index.js';
import { mulberry32, randomizeWeights, relDiff, uniform, useBackend, values } from './helpers.js';

useBackend('wasm');

const BATCH = 3;
const RECORDED = ['conv1', 'relu1', 'pool', 'conv2', 'flat'];

/** conv -> ReLU -> maxpool -> conv(relu) -> flatten -> dense, seeded weights. */
function buildModel(useBias: boolean, seed: number): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        filters: 4,
        kernelSize: 3,
        padding: 'same',
        useBias,
        inputShape: [8, 8, 2],
        name: 'conv1',
      }),
      tfl.layers.reLU({ name: 'relu1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
      tfl.layers.conv2d({
        filters: 4,
        kernelSize: 3,
        padding: 'same',
        useBias,
        activation: 'relu',
        name: 'conv2',
      }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 5, useBias, name: 'dense' }),
    ],
  });
  randomizeWeights(model, seed, 0.6);
  return model;
}

/** Per-sample relevance sums at the input and each recorded layer, and the explained logits. */
function sums(model: tfl.LayersModel, composite: Composite, input: Float64Array) {
  const lrp = new Attributor(model, { composite, canonizers: [] });
  const x = tf.tensor4d(Array.from(input), [BATCH, 8, 8, 2]);
  // explain each sample's largest |logit|, so that there is a non-trivial amount to conserve
  const own = model.predict(x) as tf.Tensor;
  const ownValues = values(own);
  own.dispose();
  const TARGETS = Array.from({ length: BATCH }, (_, b) => {
    const row = Array.from(ownValues.slice(b * 5, b * 5 + 5), Math.abs);
    return row.indexOf(Math.max(...row));
  });
  const result = lrp.attribute(x, { target: TARGETS, recordLayers: RECORDED });
  const perSample = (t: tf.Tensor) => {
    const v = values(t);
    const n = v.length / BATCH;
    return Array.from({ length: BATCH }, (_, b) => v.slice(b * n, (b + 1) * n).reduce((s, e) => s + e, 0));
  };
  const pred = values(result.prediction);
  const logits = TARGETS.map((t, b) => pred[b * 5 + t]!);
  const layers = Object.fromEntries(RECORDED.map((name) => [name, perSample(result.relevances[name]!)]));
  const inputSums = perSample(result.relevance);
  disposeResult(result);
  x.dispose();
  lrp.dispose();
  return { logits, layers, inputSums };
}

describe('conservation on a seeded conv + relu + maxpool + dense model', () => {
  test('Epsilon with zero biases and a tiny epsilon conserves at every layer (1e-5 relative)', () => {
    const model = buildModel(false, 11);
    const composite = layerMapComposite([[['conv2d', 'dense'], rules.epsilon(1e-9)]]);
    const input = uniform(mulberry32(12), BATCH * 128, -1, 1);
    const { logits, layers, inputSums } = sums(model, composite, input);
    for (let b = 0; b < BATCH; b++) {
      expect(Math.abs(logits[b]!)).toBeGreaterThan(0.05); // a non-trivial amount to conserve
      for (const name of RECORDED) expect(relDiff(layers[name]![b]!, logits[b]!)).toBeLessThan(1e-5);
      expect(relDiff(inputSums[b]!, logits[b]!)).toBeLessThan(1e-5);
    }
    model.dispose();
  });

  test('ZPlus on non-negative inputs without biases conserves at every layer (1e-5 relative)', () => {
    const model = buildModel(false, 21);
    const composite = layerMapComposite([[['conv2d', 'dense'], rules.zPlus()]]);
    const input = uniform(mulberry32(22), BATCH * 128, 0, 1);
    const { logits, layers, inputSums } = sums(model, composite, input);
    for (let b = 0; b < BATCH; b++) {
      expect(Math.abs(logits[b]!)).toBeGreaterThan(0.05);
      for (const name of RECORDED) expect(relDiff(layers[name]![b]!, logits[b]!)).toBeLessThan(1e-5);
      expect(relDiff(inputSums[b]!, logits[b]!)).toBeLessThan(1e-5);
    }
    model.dispose();
  });

  test('EpsilonPlusFlat (Flat, ZPlus, Epsilon) without biases on non-negative inputs conserves too', () => {
    const model = buildModel(false, 31);
    const input = uniform(mulberry32(32), BATCH * 128, 0, 1);
    const { logits, layers, inputSums } = sums(model, compositeByName('epsilon_plus_flat'), input);
    for (let b = 0; b < BATCH; b++) {
      for (const name of RECORDED) expect(relDiff(layers[name]![b]!, logits[b]!)).toBeLessThan(1e-5);
      expect(relDiff(inputSums[b]!, logits[b]!)).toBeLessThan(1e-5);
    }
    model.dispose();
  });

  test('control: with biases Epsilon does not conserve (the check above has power)', () => {
    const model = buildModel(true, 11);
    const composite = layerMapComposite([[['conv2d', 'dense'], rules.epsilon(1e-9)]]);
    const input = uniform(mulberry32(12), BATCH * 128, -1, 1);
    const { logits, inputSums } = sums(model, composite, input);
    const worst = Math.max(...logits.map((l, b) => relDiff(inputSums[b]!, l)));
    expect(worst).toBeGreaterThan(1e-3);
    model.dispose();
  });
});
