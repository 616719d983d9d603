/**
 * zennit-crp's `exclude_parallel` on a residual block: x -> conv1 -> relu1 -> [conv2, identity] -> Add ->
 * relu2 -> global average pool -> dense. A condition on conv2 (inside the block) must not let relevance reach
 * the input around conv2 through the skip connection (default), unlike plain masking
 * (`excludeParallel: false`). Expectations are derived by hand from single engine steps
 * (`Attributor.backward` from a given layer with a given relevance) and linearity:
 *
 * - excludeParallel: heatmap = B_conv2(m_c * R_conv2), the backward pass from conv2's output alone;
 * - plain masking:   heatmap = B_full(R) - B_conv2((1 - m_c) * R_conv2), i.e. everything except what the
 *                    masked-out channels of conv2 would have sent down (the skip share still arrives).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CondAttribution, disposeCondResult } from '../src/index.js';
import {
  channelMask,
  expectClose,
  expectCrpError,
  maxAbs,
  mulberry32,
  uniform,
  useWasm,
  values,
} from './helpers.js';

useWasm();

const CH = 3;

function buildResidual(): tfl.LayersModel {
  const x = tfl.input({ shape: [5, 5, 2], name: 'image' });
  const ap = (l: tfl.layers.Layer, t: tfl.SymbolicTensor | tfl.SymbolicTensor[]) =>
    l.apply(t) as tfl.SymbolicTensor;
  const a1 = ap(tfl.layers.conv2d({ filters: CH, kernelSize: 3, padding: 'same', name: 'conv1' }), x);
  const h1 = ap(tfl.layers.reLU({ name: 'relu1' }), a1);
  const a2 = ap(tfl.layers.conv2d({ filters: CH, kernelSize: 3, padding: 'same', name: 'conv2' }), h1);
  const side = ap(tfl.layers.conv2d({ filters: CH, kernelSize: 1, name: 'side' }), h1);
  const s = ap(tfl.layers.add({ name: 'sum' }), [a2, side]);
  const h2 = ap(tfl.layers.reLU({ name: 'relu2' }), s);
  const p = ap(tfl.layers.globalAveragePooling2d({ name: 'gap' }), h2);
  const y = ap(tfl.layers.dense({ units: 3, name: 'dense' }), p);
  const model = tfl.model({ inputs: x, outputs: y });
  const rng = mulberry32(31);
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    const made = ws.map((w) => tf.tensor(Array.from(uniform(rng, w.size, -0.7, 0.8)), w.shape));
    layer.setWeights(made);
    tf.dispose(made);
  }
  return model;
}

let model: tfl.LayersModel;
let crp: CondAttribution;
let x: tf.Tensor;

beforeAll(() => {
  model = buildResidual();
  crp = new CondAttribution(model);
  x = tf.tensor4d(Array.from(uniform(mulberry32(5), 50, -1, 1)), [1, 5, 5, 2]);
});

afterAll(() => {
  crp.dispose();
  x.dispose();
  model.dispose();
});

/** Hand-derived heatmaps and relevance at relu1 for the condition { y: [target], conv2: [channel] }. */
function expected(target: number, channel: number) {
  const lrp = crp.attributor;
  const pass = lrp.forward(x);
  const tensors: tf.Tensor[] = [];
  const own = <T extends tf.Tensor>(t: T): T => {
    tensors.push(t);
    return t;
  };
  try {
    const init = own(tf.tidy(() => tf.mul(tf.oneHot(tf.tensor1d([target], 'int32'), 3), pass.prediction)));
    const full = lrp.backward(pass, { from: 'dense', relevance: init, record: ['conv2'] });
    const rConv2 = own(full.get('conv2')!);
    const heatFull = own(full.get('image')!);
    const keep = own(channelMask(rConv2.shape.slice(1), [channel]));
    const drop = own(tf.sub(1, keep));
    const through = lrp.backward(pass, {
      from: 'conv2',
      relevance: own(tf.mul(rConv2, keep)),
      record: ['relu1'],
    });
    const around = lrp.backward(pass, { from: 'conv2', relevance: own(tf.mul(rConv2, drop)) });
    const heatExclude = values(own(tf.sum(own(through.get('image')!), -1)));
    const relu1Exclude = values(own(through.get('relu1')!));
    const heatMasked = values(own(tf.sum(own(tf.sub(heatFull, own(around.get('image')!))), -1)));
    const heatSum = values(own(tf.sum(heatFull, -1)));
    return { heatExclude, relu1Exclude, heatMasked, heatSum };
  } finally {
    tf.dispose(tensors);
    pass.dispose();
  }
}

describe('excludeParallel (zennit-crp exclude_parallel)', () => {
  test('by default relevance of a condition inside a residual block does not bypass the layer', () => {
    for (const [target, channel] of [
      [0, 0],
      [2, 1],
      [1, 2],
    ] as const) {
      const want = expected(target, channel);
      const result = crp.run(x, [{ y: [target], conv2: [channel] }], { recordLayers: ['relu1', 'side'] });
      try {
        expectClose(result.heatmap!, want.heatExclude, 1e-5);
        expectClose(result.relevances.relu1!, want.relu1Exclude, 1e-5);
        // the parallel 1x1 conv receives nothing: everything below conv2 comes through conv2
        expect(maxAbs(values(result.relevances.side!))).toBe(0);
        // and it is a different number than plain masking: the skip share is missing
        const gap = maxAbs(want.heatMasked.map((v, i) => v - want.heatExclude[i]!));
        expect(gap).toBeGreaterThan(1e-3 * maxAbs(want.heatMasked));
      } finally {
        disposeCondResult(result);
      }
    }
  });

  test('excludeParallel: false masks in one backward pass and the skip share flows on', () => {
    const want = expected(2, 1);
    const result = crp.run(x, [{ y: [2], conv2: [1] }], { excludeParallel: false });
    try {
      expectClose(result.heatmap!, want.heatMasked, 1e-5);
    } finally {
      disposeCondResult(result);
    }
  });

  test('a condition on the layer that feeds both branches gets relevance from both, either way', () => {
    for (const excludeParallel of [true, false]) {
      const a = crp.run(x, [{ y: [0], relu1: [0, 1, 2] }], { excludeParallel });
      const b = crp.run(x, [{ y: [0] }]);
      try {
        // all channels of relu1: the full heatmap (both branches pass relu1)
        expectClose(a.heatmap!, values(b.heatmap!), 1e-5);
      } finally {
        disposeCondResult(a);
        disposeCondResult(b);
      }
    }
  });

  test('two layers on one path in any order: the second restarts from the first', () => {
    const one = crp.run(x, [{ y: [1], conv1: [2], conv2: [0] }]);
    const other = crp.run(x, [{ conv2: [0], conv1: [2], y: [1] }]);
    try {
      expectClose(one.heatmap!, values(other.heatmap!), 0);
      expect(maxAbs(values(one.heatmap!))).toBeGreaterThan(0);
    } finally {
      disposeCondResult(one);
      disposeCondResult(other);
    }
  });

  test('layers on parallel branches in one condition: an error that says what to do', () => {
    expectCrpError(
      () => crp.run(x, [{ y: [0], conv2: [0], side: [1] }]),
      'invalid-argument',
      'parallel branches',
      'excludeParallel: false',
    );
    const r = crp.run(x, [{ y: [0], conv2: [0], side: [1] }], { excludeParallel: false });
    disposeCondResult(r);
  });

  test('a condition without y needs a start layer or initRelevance (as zennit-crp)', () => {
    expectCrpError(() => crp.run(x, [{ conv2: [0] }]), 'invalid-argument', "has no 'y'", 'startLayer');
    const a = crp.run(x, [{ conv2: [0] }], { startLayer: 'sum' });
    const b = crp.run(x, [{ conv2: [0] }], { initRelevance: 1 });
    disposeCondResult(a);
    disposeCondResult(b);
  });

  test('no tensors leak, including on errors', () => {
    crp.run(x, [{ y: [0], conv2: [0] }], { recordLayers: ['relu1', 'side'] }); // warm-up
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      disposeCondResult(
        crp.run(x, [{ y: [0], conv2: [i % CH] }], { recordLayers: ['relu1', 'side', 'conv2'] }),
      );
      disposeCondResult(
        crp.run(x, [{ y: [1], conv2: [1], conv1: [0] }], { heatmap: false, recordLayers: ['relu1'] }),
      );
      try {
        crp.run(x, [{ y: [0], conv2: [0], side: [1] }]);
      } catch {
        // expected
      }
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
