/**
 * The graph built from Sequential and functional models: layer names, kinds, edges, and a forward pass that
 * reproduces `model.predict` for a model using every supported layer kind; a final softmax is dropped
 * (logits) unless `keepSoftmax`.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import {
  Attributor,
  COMPOSITE_NAMES,
  compositeByName,
  disposeResult,
  graphFromLayersModel,
} from '../src/index.js';
import { expectClose, mulberry32, randomizeWeights, uniform, useBackend, values } from './helpers.js';

useBackend('wasm');

/** A functional model with every supported layer kind the issue lists. */
function buildAllKinds(finalActivation: 'softmax' | 'linear'): tfl.LayersModel {
  const L = tfl.layers;
  const x = tfl.input({ shape: [8, 8, 3], name: 'image' });
  const apply = (
    layer: { apply: (t: tfl.SymbolicTensor | tfl.SymbolicTensor[]) => unknown },
    t: tfl.SymbolicTensor | tfl.SymbolicTensor[],
  ) => layer.apply(t) as tfl.SymbolicTensor;
  const zp = apply(L.zeroPadding2d({ padding: 1, name: 'pad' }), x); // 10x10x3
  const c1 = apply(L.conv2d({ filters: 4, kernelSize: 3, name: 'conv1' }), zp); // 8x8x4
  const bn1 = apply(L.batchNormalization({ name: 'bn1' }), c1);
  const r1 = apply(L.reLU({ name: 'relu1' }), bn1);
  const dw = apply(L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', name: 'dw' }), r1); // 8x8x8
  const bn2 = apply(L.batchNormalization({ name: 'bn2' }), dw);
  const act1 = apply(L.activation({ activation: 'relu', name: 'act_relu' }), bn2);
  const mp = apply(L.maxPooling2d({ poolSize: 2, name: 'maxpool' }), act1); // 4x4x8
  const c2 = apply(L.conv2d({ filters: 8, kernelSize: 1, activation: 'relu', name: 'conv2' }), mp);
  const sum = apply(L.add({ name: 'add' }), [mp, c2]);
  const act2 = apply(L.activation({ activation: 'linear', name: 'act_linear' }), sum);
  const ap = apply(L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'avgpool' }), act2); // 2x2x8
  const gap = apply(L.globalAveragePooling2d({ name: 'gap' }), act2); // 8
  const fl = apply(L.flatten({ name: 'flatten' }), ap); // 32
  const cat = apply(L.concatenate({ name: 'concat' }), [fl, gap]); // 40
  const drop = apply(L.dropout({ rate: 0.5, name: 'dropout' }), cat);
  const d1 = apply(L.dense({ units: 16, name: 'dense1' }), drop);
  const bn3 = apply(L.batchNormalization({ name: 'bn3' }), d1);
  const r2 = apply(L.reLU({ name: 'relu2' }), bn3);
  const rs = apply(L.reshape({ targetShape: [4, 4], name: 'reshape' }), r2);
  const fl2 = apply(L.flatten({ name: 'flatten2' }), rs);
  const out = apply(L.dense({ units: 5, activation: finalActivation, name: 'out' }), fl2);
  const model = tfl.model({ inputs: x, outputs: out, name: 'all_kinds' });
  randomizeWeights(model, 1234, 0.6);
  return model;
}

const EXPECTED_KINDS: Record<string, string> = {
  image: 'input',
  pad: 'zeroPadding2d',
  conv1: 'conv2d',
  bn1: 'batchNorm',
  relu1: 'activation',
  dw: 'depthwiseConv2d',
  bn2: 'batchNorm',
  act_relu: 'activation',
  maxpool: 'maxPool2d',
  conv2: 'conv2d',
  add: 'add',
  act_linear: 'activation',
  avgpool: 'avgPool2d',
  gap: 'globalAvgPool2d',
  flatten: 'flatten',
  concat: 'concatenate',
  dropout: 'identity',
  dense1: 'dense',
  bn3: 'batchNorm',
  relu2: 'activation',
  reshape: 'reshape',
  flatten2: 'flatten',
  out: 'dense',
};

function predict(model: tfl.LayersModel, x: tf.Tensor): Float64Array {
  const y = model.predict(x) as tf.Tensor;
  const v = values(y);
  y.dispose();
  return v;
}

function attributorPrediction(lrp: Attributor, x: tf.Tensor): Float64Array {
  const pass = lrp.forward(x);
  const v = values(pass.prediction);
  pass.dispose();
  return v;
}

describe('a functional model with every supported layer kind', () => {
  const input = () => tf.tensor4d(Array.from(uniform(mulberry32(55), 2 * 8 * 8 * 3, -1, 1)), [2, 8, 8, 3]);

  test('nodes: the model’s layer names, kinds, activations and edges', () => {
    const model = buildAllKinds('softmax');
    const graph = graphFromLayersModel(model);
    expect(graph.ids).toEqual(model.layers.map((l) => l.name));
    for (const [name, kind] of Object.entries(EXPECTED_KINDS)) expect(graph.node(name).kind).toBe(kind);
    expect(graph.node('act_relu').activation).toBe('relu');
    expect(graph.node('act_linear').activation).toBe('linear');
    expect(graph.node('conv2').activation).toBe('relu');
    expect(graph.node('out').activation).toBe('linear'); // the softmax is dropped ...
    expect(graph.droppedSoftmax).toBe('out');
    expect(graphFromLayersModel(model, { keepSoftmax: true }).node('out').activation).toBe('softmax'); // ... or kept
    expect(graph.node('add').inputs).toEqual(['maxpool', 'conv2']);
    expect(graph.node('concat').inputs).toEqual(['flatten', 'gap']);
    expect(graph.node('gap').inputs).toEqual(['act_linear']);
    expect(graph.node('dw').className).toBe('DepthwiseConv2D');
    expect(graph.node('out').outputShape).toEqual([5]);
    expect(graph.inputShape).toEqual([8, 8, 3]);
    expect([...graph.consumersOf('act_linear')].sort()).toEqual(['avgpool', 'gap']);
    model.dispose();
  });

  test('prediction = logits by default: equals predict of a copy without the softmax (1e-5)', () => {
    const model = buildAllKinds('softmax');
    const logitsModel = buildAllKinds('linear');
    logitsModel.setWeights(model.getWeights());
    const x = input();
    const logits = predict(logitsModel, x);
    for (const canonizers of [undefined, []]) {
      const lrp = new Attributor(model, canonizers === undefined ? {} : { canonizers });
      expectClose(attributorPrediction(lrp, x), logits, 1e-5);
      lrp.dispose();
    }
    // and the logits are not the probabilities
    const probs = predict(model, x);
    expect(Math.max(...logits.map((v, i) => Math.abs(v - probs[i]!)))).toBeGreaterThan(1e-2);
    x.dispose();
    model.dispose();
    logitsModel.dispose();
  });

  test('keepSoftmax: prediction equals model.predict (probabilities)', () => {
    const model = buildAllKinds('softmax');
    const x = input();
    const lrp = new Attributor(model, { keepSoftmax: true });
    const p = attributorPrediction(lrp, x);
    expectClose(p, predict(model, x), 1e-5);
    expect(p.slice(0, 5).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    lrp.dispose();
    x.dispose();
    model.dispose();
  });

  test('every built-in composite attributes it: relevance of the input’s shape, finite, prediction = logits', () => {
    const model = buildAllKinds('linear');
    const x = input();
    const logits = predict(model, x);
    for (const name of COMPOSITE_NAMES) {
      const lrp = new Attributor(model, { composite: compositeByName(name, { low: -1, high: 1 }) });
      const result = lrp.attribute(x, { target: [0, 3] });
      expect(result.relevance.shape).toEqual([2, 8, 8, 3]);
      expect(values(result.relevance).every(Number.isFinite)).toBe(true);
      expect(values(result.relevance).some((v) => v !== 0)).toBe(true);
      expectClose(result.prediction, logits, 1e-5);
      disposeResult(result);
      lrp.dispose();
    }
    x.dispose();
    model.dispose();
  });
});

describe('Sequential models', () => {
  function buildSequential(finalActivation: 'softmax' | 'linear') {
    const model = tfl.sequential({
      name: 'seq',
      layers: [
        tfl.layers.conv2d({ filters: 3, kernelSize: 3, inputShape: [6, 6, 2], name: 'c1' }),
        tfl.layers.batchNormalization({ name: 'bn' }),
        tfl.layers.activation({ activation: 'relu', name: 'act' }),
        tfl.layers.maxPooling2d({ poolSize: 2, name: 'mp' }),
        tfl.layers.flatten({ name: 'fl' }),
        tfl.layers.dropout({ rate: 0.3, name: 'drop' }),
        tfl.layers.dense({ units: 4, activation: finalActivation, name: 'logits' }),
      ],
    });
    randomizeWeights(model, 99, 0.7);
    return model;
  }

  test('node ids are the model’s layer names, input first, in order', () => {
    const model = buildSequential('softmax');
    const lrp = new Attributor(model);
    const inputName = model.inputs[0]!.sourceLayer.name;
    expect(lrp.layerNames).toEqual([inputName, 'c1', 'bn', 'act', 'mp', 'fl', 'drop', 'logits']);
    expect(lrp.graph.node('logits').inputs).toEqual(['drop']);
    lrp.dispose();
    model.dispose();
  });

  test('prediction: logits by default, probabilities with keepSoftmax', () => {
    const model = buildSequential('softmax');
    const copy = buildSequential('linear');
    copy.setWeights(model.getWeights());
    const x = tf.tensor4d(Array.from(uniform(mulberry32(5), 3 * 72, -1, 1)), [3, 6, 6, 2]);
    const lrp = new Attributor(model);
    expectClose(attributorPrediction(lrp, x), predict(copy, x), 1e-5);
    const kept = new Attributor(model, { keepSoftmax: true });
    expectClose(attributorPrediction(kept, x), predict(model, x), 1e-5);
    const result = lrp.attribute(x, { target: 1 });
    expectClose(result.prediction, predict(copy, x), 1e-5); // attribute's prediction too
    disposeResult(result);
    for (const a of [lrp, kept]) a.dispose();
    x.dispose();
    model.dispose();
    copy.dispose();
  });
});

test('a layer called twice gets one node per call (name@k)', () => {
  const x = tfl.input({ shape: [3], name: 'in' });
  const shared = tfl.layers.dense({ units: 3, name: 'shared' });
  const h = shared.apply(x) as tfl.SymbolicTensor;
  const y = shared.apply(h) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: x, outputs: y });
  randomizeWeights(model, 3);
  const lrp = new Attributor(model);
  expect(lrp.layerNames).toEqual(['in', 'shared@0', 'shared@1']);
  const xt = tf.tensor2d([[0.5, -1, 2]]);
  expectClose(attributorPrediction(lrp, xt), predict(model, xt), 1e-5);
  xt.dispose();
  lrp.dispose();
  model.dispose();
});
