/**
 * mergeBatchNorm: folds BatchNormalization into the preceding Conv2D / DepthwiseConv2D / Dense in Sequential
 * and functional models without changing predictions or the user's model, and the merged weights are the
 * hand-computed W * s, (b - mean) * s + beta with s = gamma / sqrt(var + eps).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { Attributor, disposeResult, mergeBatchNorm, nameMapComposite, rules } from '../src/index.js';
import {
  expectClose,
  lrpInput,
  mulberry32,
  randomizeWeights,
  snapshotWeights,
  uniform,
  useBackend,
  values,
  weightsOf,
} from './helpers.js';
import { denseLin, epsilonRef, f64 } from './reference.js';

useBackend('wasm');

function predict(model: tfl.LayersModel, x: tf.Tensor): Float64Array {
  const y = model.predict(x) as tf.Tensor;
  const v = values(y);
  y.dispose();
  return v;
}

function prediction(lrp: Attributor, x: tf.Tensor): Float64Array {
  const pass = lrp.forward(x);
  const v = values(pass.prediction);
  pass.dispose();
  return v;
}

/** s, b' of a batch norm following a layer with bias b (per channel). */
function merged(bn: Float64Array[], bias: Float64Array, eps: number) {
  const [gamma, beta, mean, variance] = bn as [Float64Array, Float64Array, Float64Array, Float64Array];
  const s = gamma.map((g, c) => g / Math.sqrt(variance[c]! + eps));
  const b = bias.map((v, c) => (v - mean[c]!) * s[c]! + beta[c]!);
  return { s, b };
}

function sequentialModel() {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', inputShape: [5, 5, 2], name: 'conv' }),
      tfl.layers.batchNormalization({ name: 'bn_conv', epsilon: 0.01 }),
      tfl.layers.reLU({ name: 'relu' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 4, name: 'dense' }),
      tfl.layers.batchNormalization({ name: 'bn_dense' }),
    ],
  });
  randomizeWeights(model, 41, 0.7);
  return model;
}

function functionalModel() {
  const x = tfl.input({ shape: [5, 5, 2], name: 'x' });
  const dw = tfl.layers
    .depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, name: 'dw' })
    .apply(x) as tfl.SymbolicTensor;
  const bn1 = tfl.layers.batchNormalization({ name: 'bn_dw' }).apply(dw) as tfl.SymbolicTensor;
  const c = tfl.layers.conv2d({ filters: 4, kernelSize: 2, name: 'conv' }).apply(bn1) as tfl.SymbolicTensor;
  const bn2 = tfl.layers.batchNormalization({ name: 'bn_conv' }).apply(c) as tfl.SymbolicTensor;
  const r = tfl.layers.reLU({ name: 'relu' }).apply(bn2) as tfl.SymbolicTensor;
  const f = tfl.layers.flatten({ name: 'flat' }).apply(r) as tfl.SymbolicTensor;
  const d = tfl.layers.dense({ units: 3, name: 'dense' }).apply(f) as tfl.SymbolicTensor;
  const bn3 = tfl.layers.batchNormalization({ name: 'bn_dense' }).apply(d) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: x, outputs: bn3 });
  randomizeWeights(model, 42, 0.7);
  return model;
}

const input = (n: number, seed: number) =>
  tf.tensor4d(Array.from(uniform(mulberry32(seed), n * 50, -1, 1)), [n, 5, 5, 2]);

describe('mergeBatchNorm', () => {
  for (const [label, build, bns] of [
    ['Sequential (conv->BN, dense->BN)', sequentialModel, ['bn_conv', 'bn_dense']],
    ['functional (depthwise->BN, conv->BN, dense->BN)', functionalModel, ['bn_dw', 'bn_conv', 'bn_dense']],
  ] as const) {
    describe(label, () => {
      test('every BN is merged: it becomes an identity and the layer before it gets new weights', () => {
        const model = build();
        const lrp = new Attributor(model); // mergeBatchNorm() is the default canonizer
        for (const bn of bns) {
          expect(lrp.graph.node(bn).kind).toBe('identity');
          expect(lrp.ruleOf(bn).name).toBe('Pass');
        }
        const plain = new Attributor(model, { canonizers: [] });
        for (const bn of bns) expect(plain.graph.node(bn).kind).toBe('batchNorm');
        lrp.dispose();
        plain.dispose();
        model.dispose();
      });

      test('predictions unchanged (1e-5) and the user’s weights untouched', () => {
        const model = build();
        const before = snapshotWeights(model);
        const x = input(3, 7);
        const expected = predict(model, x);
        const lrp = new Attributor(model, { canonizers: [mergeBatchNorm()] });
        expectClose(prediction(lrp, x), expected, 1e-5);
        const result = lrp.attribute(x, { target: 0 });
        expect(values(result.relevance).every(Number.isFinite)).toBe(true);
        disposeResult(result);
        lrp.dispose();
        const after = snapshotWeights(model);
        expect(after.length).toBe(before.length);
        expect(after.map((w) => Array.from(w))).toEqual(before.map((w) => Array.from(w)));
        // the model still works after the attributor is gone (its weights were not disposed)
        expectClose(predict(model, x), expected, 0);
        x.dispose();
        model.dispose();
      });
    });
  }

  const lastBn: [string, () => tfl.LayersModel, () => tf.Tensor][] = [
    [
      'Dense -> BN',
      () =>
        tfl.sequential({
          layers: [
            tfl.layers.dense({ units: 2, inputShape: [3], name: 'd' }),
            tfl.layers.batchNormalization({ name: 'bn', epsilon: 0.02 }),
          ],
        }),
      () => tf.tensor2d([1, -2, 0.5, 0.25, 1, -1], [2, 3]),
    ],
    [
      'Conv2D -> BN -> Flatten (Sequential)',
      () =>
        tfl.sequential({
          layers: [
            tfl.layers.conv2d({ filters: 2, kernelSize: 2, inputShape: [3, 3, 2], name: 'c' }),
            tfl.layers.batchNormalization({ name: 'bn', epsilon: 0.02 }),
            tfl.layers.flatten({ name: 'f' }),
          ],
        }),
      () => tf.tensor4d(Array.from(uniform(mulberry32(9), 36)), [2, 3, 3, 2]),
    ],
    [
      'DepthwiseConv2D -> BN (functional)',
      () => {
        const x = tfl.input({ shape: [3, 3, 2] });
        const d = tfl.layers
          .depthwiseConv2d({ kernelSize: 2, depthMultiplier: 2, name: 'dw' })
          .apply(x) as tfl.SymbolicTensor;
        const bn = tfl.layers
          .batchNormalization({ name: 'bn', epsilon: 0.02 })
          .apply(d) as tfl.SymbolicTensor;
        return tfl.model({ inputs: x, outputs: bn });
      },
      () => tf.tensor4d(Array.from(uniform(mulberry32(10), 36)), [2, 3, 3, 2]),
    ],
  ];
  for (const [label, build, makeInput] of lastBn) {
    test(`keepEpsilon (${label}): prediction = model.predict / sqrt(1 + eps); default: = model.predict`, () => {
      const model = build();
      randomizeWeights(model, 43);
      const x = makeInput();
      const expected = predict(model, x);
      const kept = new Attributor(model, { canonizers: [mergeBatchNorm({ keepEpsilon: true })] });
      expect(kept.graph.node('bn').kind).toBe('batchNorm');
      expectClose(
        prediction(kept, x),
        expected.map((v) => v / Math.sqrt(1.02)),
        1e-5,
      );
      const exact = new Attributor(model);
      expect(exact.graph.node('bn').kind).toBe('identity');
      expectClose(prediction(exact, x), expected, 1e-5);
      kept.dispose();
      exact.dispose();
      x.dispose();
      model.dispose();
    });
  }

  test('merged Dense weights by hand, and Epsilon explains the merged layer', () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({ units: 2, inputShape: [3], name: 'd' }),
        tfl.layers.batchNormalization({ name: 'bn', epsilon: 0.001 }),
      ],
    });
    randomizeWeights(model, 44);
    const [w, b] = weightsOf(model, 'd') as [Float64Array, Float64Array];
    const { s, b: b2 } = merged(weightsOf(model, 'bn'), b, 0.001);
    const w2 = w.map((v, i) => v * s[i % 2]!);
    const lrp = new Attributor(model);
    const p = lrp.graph.node('d').params;
    if (p.kind !== 'dense') throw new Error('not dense');
    expectClose(p.kernel.dataSync(), w2, 1e-6);
    expectClose(p.bias!.dataSync(), b2, 1e-6);
    lrp.dispose();
    const x = f64([1, -2, 0.5]);
    const R = f64([1, 0.5]);
    const expected = epsilonRef(denseLin(3, 2), x, w2, b2, R, 0.1);
    const got = lrpInput(model, x, nameMapComposite({ d: rules.epsilon(0.1) }), R, {
      canonizers: [mergeBatchNorm()],
    });
    expectClose(got, expected, 1e-5);
    // without merging, the rule would see the unmerged layer: a different result
    const unmerged = lrpInput(model, x, nameMapComposite({ d: rules.epsilon(0.1) }), R);
    expect(Math.max(...unmerged.map((v, i) => Math.abs(v - expected[i]!)))).toBeGreaterThan(1e-3);
    model.dispose();
  });

  test('merged depthwise kernel by hand: output channel c*M + m scales entry [.., c, m]', () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.depthwiseConv2d({ kernelSize: 2, depthMultiplier: 2, inputShape: [3, 3, 2], name: 'dw' }),
        tfl.layers.batchNormalization({ name: 'bn' }),
      ],
    });
    randomizeWeights(model, 45);
    const [k, b] = weightsOf(model, 'dw') as [Float64Array, Float64Array];
    const { s, b: b2 } = merged(weightsOf(model, 'bn'), b, 0.001);
    // kernel [2, 2, 2, 2] = [kh, kw, c, m]; flat index ((ky*2 + kx)*2 + c)*2 + m -> channel c*2 + m = i % 4
    const k2 = k.map((v, i) => v * s[i % 4]!);
    const lrp = new Attributor(model);
    const p = lrp.graph.node('dw').params;
    if (p.kind !== 'depthwiseConv2d') throw new Error('not depthwise');
    expectClose(p.kernel.dataSync(), k2, 1e-6);
    expectClose(p.bias!.dataSync(), b2, 1e-6);
    lrp.dispose();
    model.dispose();
  });

  test('not merged: a conv with a fused activation, or a conv whose output has two consumers', () => {
    const x = tfl.input({ shape: [4, 4, 1], name: 'x' });
    const c1 = tfl.layers
      .conv2d({ filters: 2, kernelSize: 2, activation: 'relu', name: 'c_relu' })
      .apply(x) as tfl.SymbolicTensor;
    const bn1 = tfl.layers.batchNormalization({ name: 'bn1' }).apply(c1) as tfl.SymbolicTensor;
    const c2 = tfl.layers
      .conv2d({ filters: 2, kernelSize: 1, name: 'c_shared' })
      .apply(bn1) as tfl.SymbolicTensor;
    const bn2 = tfl.layers.batchNormalization({ name: 'bn2' }).apply(c2) as tfl.SymbolicTensor;
    const sum = tfl.layers.add({ name: 'add' }).apply([bn2, c2]) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: x, outputs: sum });
    randomizeWeights(model, 46);
    const lrp = new Attributor(model);
    expect(lrp.graph.node('bn1').kind).toBe('batchNorm');
    expect(lrp.graph.node('bn2').kind).toBe('batchNorm');
    const xt = tf.tensor4d(Array.from(uniform(mulberry32(1), 16)), [1, 4, 4, 1]);
    expectClose(prediction(lrp, xt), predict(model, xt), 1e-5);
    xt.dispose();
    lrp.dispose();
    model.dispose();
  });
});
