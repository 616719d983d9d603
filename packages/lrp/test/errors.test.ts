import { CrpError, type CrpErrorCode } from '@crp/common';
/**
 * Clear, typed errors (CrpError with a `code`) whose messages say what was wrong and what would be valid;
 * none of them leaves tensors behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Attributor, attribute, rules } from '../src/index.js';
import { expectClose, mulberry32, randomizeWeights, uniform, useBackend, values } from './helpers.js';

useBackend('wasm');

function caught(fn: () => unknown): CrpError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof CrpError)) throw new Error(`expected a CrpError, got ${String(err)}`);
  return err;
}

function expectCrp(fn: () => unknown, code: CrpErrorCode, ...fragments: (string | RegExp)[]): CrpError {
  const before = tf.memory().numTensors;
  const err = caught(fn);
  expect(err.name).toBe('CrpError');
  expect(err.code).toBe(code);
  for (const f of fragments) {
    if (typeof f === 'string') expect(err.message).toContain(f);
    else expect(err.message).toMatch(f);
  }
  expect(tf.memory().numTensors).toBe(before); // failing leaves nothing behind
  return err;
}

let model: tfl.LayersModel;
let lrp: Attributor;
beforeAll(() => {
  model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ filters: 2, kernelSize: 3, inputShape: [6, 6, 2], name: 'conv' }),
      tfl.layers.reLU({ name: 'relu' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 3, name: 'dense' }),
    ],
  });
  randomizeWeights(model, 1);
  lrp = new Attributor(model);
});
afterAll(() => {
  lrp.dispose();
  model.dispose();
});

const good = () => tf.tensor4d(Array.from(uniform(mulberry32(2), 2 * 72)), [2, 6, 6, 2]);

describe('unsupported layers', () => {
  test.each([
    [
      'Conv1D',
      () => [tfl.layers.conv1d({ filters: 2, kernelSize: 3, inputShape: [8, 2], name: 'my_conv1d' })],
    ],
    [
      'LSTM',
      () => [
        tfl.layers.lstm({
          units: 2,
          inputShape: [4, 3],
          recurrentInitializer: 'glorotUniform',
          name: 'my_lstm',
        }),
      ],
    ],
    [
      'SeparableConv2D',
      () => [
        tfl.layers.separableConv2d({
          filters: 2,
          kernelSize: 3,
          inputShape: [6, 6, 2],
          name: 'my_separableconv2d',
        }),
      ],
    ],
  ])('%s: names the layer and its class, and says how to give it a rule', (cls, layers) => {
    const m = tfl.sequential({ layers: layers() });
    const name = m.layers[0]!.name;
    const err = expectCrp(
      () => new Attributor(m),
      'unsupported-layer',
      `'${name}'`,
      cls,
      'customLayers',
      `${cls}: { forward, rule }`,
    );
    expect(err.message).toContain('Supported classes: InputLayer, Conv2D');
    const x = tf.zeros([1, ...m.inputs[0]!.shape.slice(1).map(Number)]);
    expectCrp(() => attribute(m, x, { target: 0 }), 'unsupported-layer', name);
    x.dispose();
    m.dispose();
  });

  test('customLayers gives an unsupported layer a forward and a rule', () => {
    const m = tfl.sequential({
      layers: [
        tfl.layers.dense({ units: 4, inputShape: [3], name: 'd1' }),
        tfl.layers.layerNormalization({ name: 'ln' }),
        tfl.layers.dense({ units: 2, name: 'd2' }),
      ],
    });
    randomizeWeights(m, 3);
    const [gamma, beta] = m.getLayer('ln').getWeights();
    const layerNorm = (inputs: tf.Tensor[]) =>
      tf.tidy(() => {
        const x = inputs[0]!;
        const { mean, variance } = tf.moments(x, -1, true);
        const normed = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-3)));
        return tf.add(tf.mul(normed, gamma!), beta!);
      });
    const withLn = new Attributor(m, {
      customLayers: { LayerNormalization: { forward: layerNorm, rule: rules.pass() } },
    });
    expect(withLn.graph.node('ln').kind).toBe('custom');
    expect(withLn.ruleOf('ln').name).toBe('Pass');
    const x = tf.tensor2d([
      [1, -2, 0.5],
      [0.3, 0.2, -1],
    ]);
    const pass = withLn.forward(x);
    const y = m.predict(x) as tf.Tensor;
    expectClose(pass.prediction, values(y), 1e-4);
    pass.dispose();
    const result = withLn.attribute(x, { target: 1 });
    expect(values(result.relevance).every(Number.isFinite)).toBe(true);
    for (const t of [result.relevance, result.prediction, x, y]) t.dispose();
    withLn.dispose();
    m.dispose();
  });

  test('an unsupported activation is named with the supported ones', () => {
    const m = tfl.sequential({
      layers: [tfl.layers.dense({ units: 2, inputShape: [3], activation: 'hardSigmoid', name: 'hs' })],
    });
    expectCrp(
      () => new Attributor(m),
      'unsupported-activation',
      "'hs'",
      'hardSigmoid',
      'supported: linear, relu',
    );
    m.dispose();
  });

  test('a model with two outputs is refused', () => {
    const x = tfl.input({ shape: [3] });
    const a = tfl.layers.dense({ units: 2 }).apply(x) as tfl.SymbolicTensor;
    const b = tfl.layers.dense({ units: 2 }).apply(x) as tfl.SymbolicTensor;
    const m = tfl.model({ inputs: x, outputs: [a, b] });
    expectCrp(() => new Attributor(m), 'unsupported-model', '2 outputs');
    m.dispose();
  });
});

describe('bad inputs', () => {
  test('wrong input shape: the message has the expected shape', () => {
    for (const shape of [
      [1, 5, 6, 2],
      [1, 6, 6, 3],
      [6, 6, 2],
      [1, 72],
    ]) {
      const x = tf.zeros(shape);
      expectCrp(
        () => lrp.attribute(x, { target: 0 }),
        'invalid-shape',
        '[batch, 6, 6, 2]',
        `[${shape.join(', ')}]`,
      );
      expectCrp(() => attribute(model, x, { target: 0 }), 'invalid-shape', '[batch, 6, 6, 2]');
      x.dispose();
    }
  });

  test('non-float input', () => {
    const x = tf.zeros([1, 6, 6, 2], 'int32');
    expectCrp(() => lrp.attribute(x, { target: 0 }), 'invalid-shape', 'float32', 'int32');
    x.dispose();
  });

  test.each([
    ['NaN', Number.NaN, 'NaN'],
    ['Infinity', Number.POSITIVE_INFINITY, 'Infinity'],
    ['-Infinity', Number.NEGATIVE_INFINITY, 'Infinity'],
  ])('%s input', (_label, value, word) => {
    const data = new Float32Array(2 * 72).fill(0.5);
    data[77] = value;
    const x = tf.tensor4d(data, [2, 6, 6, 2]);
    expectCrp(() => lrp.attribute(x, { target: 0 }), 'invalid-value', word, 'flat index 77');
    expectCrp(() => lrp.forward(x), 'invalid-value', word);
    x.dispose();
  });
});

describe('bad names and targets', () => {
  test('unknown composite name lists the valid ones', () => {
    expectCrp(
      () => new Attributor(model, { composite: 'epsilon' }),
      'unknown-composite',
      "'epsilon'",
      'epsilon_plus, epsilon_plus_flat, epsilon_alpha2_beta1, epsilon_alpha2_beta1_flat, epsilon_gamma_box',
    );
    const x = good();
    expectCrp(
      () => attribute(model, x, { composite: 'zplus', target: 0 }),
      'unknown-composite',
      'epsilon_plus_flat',
    );
    x.dispose();
  });

  test('unknown layer in recordLayers lists the layers', () => {
    const x = good();
    expectCrp(
      () => lrp.attribute(x, { target: 0, recordLayers: ['relu', 'conv_2'] }),
      'unknown-layer',
      "'conv_2'",
      'conv_input, conv, relu, flat, dense',
    );
    const pass = lrp.forward(x);
    const r = tf.ones([2, 3]);
    expectCrp(
      () => lrp.backward(pass, { from: 'dense', relevance: r, stopAt: ['nope'] }),
      'unknown-layer',
      "'nope'",
    );
    expectCrp(() => lrp.backward(pass, { from: 'densee', relevance: r }), 'unknown-layer', "'densee'");
    expectCrp(() => lrp.ruleOf('Dense'), 'unknown-layer', "'Dense'", 'dense');
    r.dispose();
    pass.dispose();
    x.dispose();
  });

  test.each([
    [{ target: 3 }, 'target 3 is not a class index; valid: integers 0..2'],
    [{ target: -1 }, 'target -1'],
    [{ target: 1.5 }, 'target 1.5'],
    [{ target: [0, 1, 2] }, 'got 3 targets for a batch of 2'],
    [{ target: [0] }, 'got 1 targets for a batch of 2'],
    [{}, 'give a target class'],
  ])('bad target %j', (options, fragment) => {
    const x = good();
    expectCrp(() => lrp.attribute(x, options), 'invalid-target', fragment);
    x.dispose();
  });

  test('initRelevance of the wrong shape', () => {
    const x = good();
    const r = tf.ones([2, 4]);
    expectCrp(() => lrp.attribute(x, { initRelevance: r }), 'invalid-argument', '[2, 3]', '[2, 4]');
    expectCrp(() => lrp.attribute(x, { initRelevance: () => tf.ones([1, 3]) }), 'invalid-argument', '[2, 3]');
    r.dispose();
    x.dispose();
  });

  test('invalid rule parameters', () => {
    expectCrp(() => rules.epsilon(-1), 'invalid-argument', 'epsilon', '-1');
    expectCrp(() => rules.alphaBeta(Number.NaN, 1), 'invalid-argument', 'alpha');
    expectCrp(() => rules.gamma(Number.POSITIVE_INFINITY), 'invalid-argument', 'gamma');
  });

  test('a disposed attributor refuses work', () => {
    const a = new Attributor(model);
    a.dispose();
    const x = good();
    expectCrp(() => a.attribute(x, { target: 0 }), 'disposed');
    x.dispose();
  });
});
