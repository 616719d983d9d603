/**
 * A small residual (functional) model: conv -> ReLU -> [conv, identity] -> Add -> ReLU -> GAP -> dense,
 * attributed with EpsilonPlusFlat and compared with a float64 hand computation of every step, in particular
 * the Add split R_i = x_i * R / stab(sum x).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { Attributor, disposeResult } from '../src/index.js';
import {
  expectClose,
  mulberry32,
  randomizeWeights,
  uniform,
  useBackend,
  values,
  weightsOf,
} from './helpers.js';
import {
  add,
  addNormRef,
  type ConvGeom,
  convLin,
  denseLin,
  epsilonRef,
  type F,
  flatRef,
  gapNormRef,
  gapRef,
  relu,
  zPlusRef,
} from './reference.js';

useBackend('wasm');

function buildResidual(): tfl.LayersModel {
  const x = tfl.input({ shape: [4, 4, 1], name: 'x' });
  const a1 = tfl.layers
    .conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'conv1' })
    .apply(x) as tfl.SymbolicTensor;
  const h1 = tfl.layers.reLU({ name: 'relu1' }).apply(a1) as tfl.SymbolicTensor;
  const a2 = tfl.layers
    .conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'conv2' })
    .apply(h1) as tfl.SymbolicTensor;
  const s = tfl.layers.add({ name: 'add' }).apply([a2, h1]) as tfl.SymbolicTensor;
  const h2 = tfl.layers.reLU({ name: 'relu2' }).apply(s) as tfl.SymbolicTensor;
  const p = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(h2) as tfl.SymbolicTensor;
  const y = tfl.layers.dense({ units: 3, name: 'dense' }).apply(p) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: x, outputs: y, name: 'residual' });
  randomizeWeights(model, 77, 0.8);
  return model;
}

const g1: ConvGeom = { h: 4, w: 4, cin: 1, kh: 3, kw: 3, cout: 2, padding: 'same' };
const g2: ConvGeom = { h: 4, w: 4, cin: 2, kh: 3, kw: 3, cout: 2, padding: 'same' };

/** The whole EpsilonPlusFlat backward pass of one sample, by hand. */
function reference(model: tfl.LayersModel, x: F, target: number) {
  const [w1, b1] = weightsOf(model, 'conv1');
  const [w2, b2] = weightsOf(model, 'conv2');
  const [wd, bd] = weightsOf(model, 'dense');
  const L1 = convLin(g1);
  const L2 = convLin(g2);
  const Ld = denseLin(2, 3);
  // forward
  const a1 = L1.forward(x, w1!, b1!);
  const h1 = relu(a1);
  const a2 = L2.forward(h1, w2!, b2!);
  const s = add(a2, h1);
  const h2 = relu(s);
  const p = gapRef(h2, 16, 2);
  const y = Ld.forward(p, wd!, bd!);
  // backward
  const rY = y.map((v, j) => (j === target ? v : 0));
  const rP = epsilonRef(Ld, p, wd!, bd!, rY, 1e-6); // dense: Epsilon
  const rH2 = gapNormRef(h2, 16, 2, rP); // GAP: Norm
  const rS = rH2; // ReLU: Pass
  const [rA2, rH1Direct] = addNormRef([a2, h1], rS); // Add: Norm
  const rH1 = add(zPlusRef(L2, h1, w2!, b2!, rA2!), rH1Direct!); // conv2: ZPlus, plus the identity branch
  const rX = flatRef(L1, w1!.length, rH1); // conv1 (first layer): Flat; relu1: Pass
  return { y, rS, rA2: rA2!, rH1Direct: rH1Direct!, rH1, rX };
}

describe('residual model with Add', () => {
  const rng = mulberry32(78);
  const xs = [uniform(rng, 16, -1, 1), uniform(rng, 16, -1, 1)];
  const targets = [1, 2];

  test('the graph has the model’s own layer names and the Add’s inputs', () => {
    const model = buildResidual();
    const lrp = new Attributor(model);
    expect(lrp.layerNames).toEqual(['x', 'conv1', 'relu1', 'conv2', 'add', 'relu2', 'gap', 'dense']);
    expect(new Set(lrp.layerNames)).toEqual(new Set(model.layers.map((l) => l.name)));
    expect(lrp.graph.node('add').inputs).toEqual(['conv2', 'relu1']);
    expect(lrp.graph.inputId).toBe('x');
    expect(lrp.graph.outputId).toBe('dense');
    expect(['conv1', 'conv2', 'add', 'gap', 'dense', 'relu1'].map((n) => lrp.ruleOf(n).name)).toEqual([
      'Flat',
      'ZPlus',
      'Norm',
      'Norm',
      'Epsilon',
      'Pass',
    ]);
    lrp.dispose();
    model.dispose();
  });

  test('attribution equals the hand computation (batch of 2, one target per row)', () => {
    const model = buildResidual();
    const lrp = new Attributor(model, { composite: 'epsilon_plus_flat' });
    const x = tf.tensor4d([...xs[0]!, ...xs[1]!], [2, 4, 4, 1]);
    const result = lrp.attribute(x, { target: targets, recordLayers: ['add', 'relu1', 'conv2'] });
    const rel = values(result.relevance);
    const pred = values(result.prediction);
    const relu1 = values(result.relevances.relu1!);
    const addR = values(result.relevances.add!);
    const conv2 = values(result.relevances.conv2!);
    for (let b = 0; b < 2; b++) {
      const ref = reference(model, xs[b]!, targets[b]!);
      expectClose(pred.slice(b * 3, b * 3 + 3), ref.y, 1e-5);
      expectClose(addR.slice(b * 32, b * 32 + 32), ref.rS, 1e-4);
      expectClose(conv2.slice(b * 32, b * 32 + 32), ref.rA2, 1e-4);
      expectClose(relu1.slice(b * 32, b * 32 + 32), ref.rH1, 1e-4);
      expectClose(rel.slice(b * 16, b * 16 + 16), ref.rX, 1e-4);
      // the identity branch really carries relevance
      expect(Math.max(...ref.rH1Direct.map(Math.abs))).toBeGreaterThan(1e-3);
    }
    disposeResult(result);
    x.dispose();
    lrp.dispose();
    model.dispose();
  });

  test('the Add split alone, at a single layer', () => {
    const model = buildResidual();
    const lrp = new Attributor(model);
    const ref = reference(model, xs[0]!, 1);
    const x = tf.tensor4d(Array.from(xs[0]!), [1, 4, 4, 1]);
    const r = tf.tensor4d(Array.from(ref.rS), [1, 4, 4, 2]);
    const pass = lrp.forward(x);
    const out = lrp.backward(pass, { from: 'add', relevance: r, stopAt: ['conv2', 'relu1'] });
    expectClose(out.get('conv2')!, ref.rA2, 1e-5);
    expectClose(out.get('relu1')!, ref.rH1Direct, 1e-5);
    for (const t of out.values()) t.dispose();
    pass.dispose();
    x.dispose();
    r.dispose();
    lrp.dispose();
    model.dispose();
  });
});
