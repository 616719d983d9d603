/**
 * PyTorch's padding inside a convolution (mergeZeroPadding, part of resnetCanonizer): a ZeroPadding2D folded into
 * the 'valid' conv after it gives the same forward values, a transpose that passes the dot-product test for
 * asymmetric padding with strides, and the relevance of a conv with 'same' padding where that is the same
 * padding, for the rules whose input modifiers replace the input (ZBox, Flat): without the merge, the bounds or
 * ones would sit on the padded border, unlike zennit.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import {
  Attributor,
  disposeResult,
  epsilonGammaBox,
  epsilonPlusFlat,
  graphFromLayersModel,
  mergeZeroPadding,
  resnetCanonizer,
} from '../src/index.js';
import { linearMapOf } from '../src/internal.js';
import { mulberry32, randomizeWeights, uniform, useBackend, values } from './helpers.js';

useBackend('cpu');

/** input -> [ZeroPadding2D(1) -> conv 3x3 valid] or [conv 3x3 same] -> ReLU -> conv 3x3 stride 2 -> GAP -> dense */
function model(padded: boolean): tfl.LayersModel {
  const x = tfl.input({ shape: [6, 6, 2], name: 'x' });
  let h = x;
  if (padded) h = tfl.layers.zeroPadding2d({ padding: 1, name: 'conv1.pad' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers
    .conv2d({ filters: 3, kernelSize: 3, padding: padded ? 'valid' : 'same', name: 'conv1' })
    .apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.reLU({ name: 'relu' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers
    .conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 'conv2' })
    .apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(h) as tfl.SymbolicTensor;
  const y = tfl.layers.dense({ units: 3, name: 'fc' }).apply(h) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: x, outputs: y });
  randomizeWeights(m, 5, 0.7);
  return m;
}

/** Seeded values in [-1, 1) as float32. */
function u(seed: number, n: number): Float32Array {
  return Float32Array.from(uniform(mulberry32(seed), n));
}

function twin(): [tfl.LayersModel, tfl.LayersModel] {
  const a = model(true);
  const b = model(false);
  for (const name of ['conv1', 'conv2', 'fc']) b.getLayer(name).setWeights(a.getLayer(name).getWeights());
  return [a, b];
}

describe('mergeZeroPadding', () => {
  test('folds the padding into the conv: the padding layer becomes an identity, the forward values stay', () => {
    const [padded] = twin();
    const graph = graphFromLayersModel(padded);
    const merged = mergeZeroPadding().apply(graph);
    expect(merged.node('conv1.pad').kind).toBe('identity');
    expect(merged.node('conv1.pad').outputShape).toEqual([6, 6, 2]);
    const p = merged.node('conv1').params;
    expect(p.kind === 'conv2d' && p.padding).toEqual([
      [1, 1],
      [1, 1],
    ]);
    const x = tf.tensor4d(u(3, 72), [1, 6, 6, 2]);
    const plain = new Attributor(padded);
    const canon = new Attributor(padded, { canonizers: [mergeZeroPadding()] });
    const a = plain.forward(x);
    const b = canon.forward(x);
    expect(Array.from(values(b.prediction))).toEqual(Array.from(values(a.prediction)));
    a.dispose();
    b.dispose();
    plain.dispose();
    canon.dispose();
    merged.dispose();
    x.dispose();
    padded.dispose();
  });

  test('the explicit-padding transpose passes the dot-product test (asymmetric padding, stride 2)', () => {
    const kernel = tf.tensor4d(u(9, 3 * 2 * 2 * 5), [3, 2, 2, 5]);
    const node = {
      id: 'c',
      layerName: 'c',
      className: 'Conv2D',
      kind: 'conv2d' as const,
      inputs: ['x'],
      outputShape: [],
      activation: 'linear' as const,
      index: 1,
      params: {
        kind: 'conv2d' as const,
        kernel,
        bias: null,
        strides: [2, 2] as [number, number],
        padding: [
          [2, 1],
          [0, 3],
        ] as [[number, number], [number, number]],
      },
    };
    const map = linearMapOf(node, [1, 7, 8, 2])!;
    const x = tf.tensor4d(u(1, 7 * 8 * 2), [1, 7, 8, 2]);
    const y = map.forward(x, { weight: kernel, bias: null });
    // PyTorch's output size: floor((7 + 3 - 3) / 2) + 1 = 4, floor((8 + 3 - 2) / 2) + 1 = 5
    expect(y.shape).toEqual([1, 4, 5, 5]);
    const g = tf.tensor4d(u(2, 4 * 5 * 5), [1, 4, 5, 5]);
    const back = map.backWeight(kernel);
    const t = map.transpose(g, back);
    expect(t.shape).toEqual([1, 7, 8, 2]);
    const lhs = tf.sum(tf.mul(y, g)).dataSync()[0]!;
    const rhs = tf.sum(tf.mul(x, t)).dataSync()[0]!;
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-5 * Math.max(1, Math.abs(lhs)));
    tf.dispose([kernel, x, y, g, back!, t]);
  });

  for (const [name, composite] of [
    ['EpsilonGammaBox (ZBox on the first conv)', () => epsilonGammaBox({ low: -1, high: 1 })],
    ['EpsilonPlusFlat (Flat on the first conv)', () => epsilonPlusFlat()],
  ] as const) {
    test(`${name}: relevance equals that of the 'same'-padded conv, and differs without the merge`, () => {
      const [padded, same] = twin();
      const x = tf.tensor4d(u(4, 72), [1, 6, 6, 2]);
      const run = (m: tfl.LayersModel, canonize: boolean) => {
        const a = new Attributor(m, {
          composite: composite(),
          canonizers: canonize ? [resnetCanonizer()] : [],
        });
        const r = a.attribute(x, { target: 1 });
        const v = values(r.relevance);
        disposeResult(r);
        a.dispose();
        return v;
      };
      const reference = run(same, false);
      const merged = run(padded, true);
      const unmerged = run(padded, false);
      const maxAbs = Math.max(...reference.map(Math.abs));
      expect(maxAbs).toBeGreaterThan(0);
      for (let i = 0; i < reference.length; i++) {
        expect(Math.abs(merged[i]! - reference[i]!)).toBeLessThan(1e-5 * maxAbs);
      }
      const worst = Math.max(...reference.map((r, i) => Math.abs(unmerged[i]! - r)));
      expect(worst).toBeGreaterThan(1e-3 * maxAbs);
      tf.dispose(x);
      padded.dispose();
      same.dispose();
    });
  }

  test('leaves no tensor behind', () => {
    const [padded, same] = twin();
    same.dispose();
    const x = tf.tensor4d(u(4, 72), [1, 6, 6, 2]);
    const before = tf.memory().numTensors;
    for (let k = 0; k < 3; k++) {
      const a = new Attributor(padded, { composite: epsilonPlusFlat(), canonizers: [resnetCanonizer()] });
      disposeResult(a.attribute(x, { target: 0, recordLayers: ['conv1', 'conv1.pad'] }));
      a.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    padded.dispose();
  });
});
