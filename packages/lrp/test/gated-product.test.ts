/**
 * Gated products (`Multiply`, squeeze-excitation: a feature map times a gate broadcast over height and width).
 * PassToFeature (the default) gives the feature branch the relevance unchanged and the gate none; the plain
 * gradient gives x the share g * R and the gate x * R summed over the broadcast axes. Both against a float64
 * hand computation, the dot-product test of their adjoints, and no leaked tensors.
 */
import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import {
  Attributor,
  attribute,
  type Composite,
  disposeResult,
  layerMapComposite,
  type NodeKind,
  type Rule,
  rules,
} from '../src/index.js';
import { mulberry32, uniform, useBackend, values } from './helpers.js';

useBackend('cpu');

const [H, W, C] = [3, 2, 2];

/** x -> GAP -> reshape [1, 1, C] -> sigmoid -> multiply([x, gate]) -> flatten -> dense(2, no bias) */
function seModel(kernel: Float64Array): tfl.LayersModel {
  const x = tfl.input({ shape: [H, W, C], name: 'x' });
  const ap = (l: tfl.layers.Layer, t: tfl.SymbolicTensor | tfl.SymbolicTensor[]) =>
    l.apply(t) as tfl.SymbolicTensor;
  const pooled = ap(tfl.layers.globalAveragePooling2d({ name: 'squeeze' }), x);
  const shaped = ap(tfl.layers.reshape({ targetShape: [1, 1, C], name: 'unsqueeze' }), pooled);
  const gate = ap(tfl.layers.activation({ activation: 'sigmoid', name: 'gate' }), shaped);
  const y = ap(tfl.layers.multiply({ name: 'excite' }), [x, gate]);
  const flat = ap(tfl.layers.flatten({ name: 'flat' }), y);
  const out = ap(tfl.layers.dense({ units: 2, useBias: false, name: 'out' }), flat);
  const model = tfl.model({ inputs: x, outputs: out, name: 'se' });
  // class 0 reads the kernel, class 1 nothing (attribution needs two classes)
  const k2 = tf.tensor2d(
    Array.from(kernel).flatMap((v) => [v, 0]),
    [H * W * C, 2],
  );
  model.getLayer('out').setWeights([k2]);
  k2.dispose();
  return model;
}

const rng = mulberry32(21);
const input = uniform(rng, H * W * C, 0.1, 1.5);
const kernel = uniform(rng, H * W * C, -1, 1);

/** Float64 forward values: the gate per channel, the output, the channel means. */
function forward64() {
  const mean = new Float64Array(C);
  for (let i = 0; i < H * W * C; i++) mean[i % C]! += input[i]! / (H * W);
  const gate = mean.map((m) => 1 / (1 + Math.exp(-m)));
  let y = 0;
  for (let i = 0; i < H * W * C; i++) y += input[i]! * gate[i % C]! * kernel[i]!;
  return { mean, gate, y };
}

function composite(multiply?: 'gradient'): Composite {
  const entries: [NodeKind[], Rule][] = [[['dense'], rules.epsilon(1e-9)]];
  if (multiply === 'gradient') entries.push([['multiply'], rules.gradient()]);
  return layerMapComposite(entries);
}

describe('a gated product (squeeze-excitation)', () => {
  test('PassToFeature by default: the feature map gets the relevance at the product, the gate none', () => {
    const model = seModel(kernel);
    const x = tf.tensor4d(Array.from(input), [1, H, W, C]);
    const result = attribute(model, x, {
      composite: composite(),
      target: 0,
      recordLayers: ['gate', 'excite'],
    });
    const { gate, y } = forward64();
    // the dense layer's Epsilon: R_i = a_i w_i y / (y + eps) with a = x * gate
    const expected = Array.from(input, (v, i) => (v * gate[i % C]! * kernel[i]! * y) / (y + 1e-9));
    const got = values(result.relevance);
    expected.forEach((e, i) => {
      expect(got[i]).toBeCloseTo(e, 6);
    });
    expect(Array.from(values(result.relevances.excite!))).toEqual(Array.from(got));
    expect(Array.from(values(result.relevances.gate!))).toEqual(new Array(C).fill(0));
    disposeResult(result);
    x.dispose();
    model.dispose();
  });

  test("the plain gradient: x gets g * R, the gate x * R summed over height and width (zennit's autograd)", () => {
    const model = seModel(kernel);
    const x = tf.tensor4d(Array.from(input), [1, H, W, C]);
    const result = attribute(model, x, {
      composite: composite('gradient'),
      target: 0,
      recordLayers: ['gate'],
    });
    const { mean, gate, y } = forward64();
    const r = Array.from(input, (v, i) => (v * gate[i % C]! * kernel[i]! * y) / (y + 1e-9));
    const rGate = new Float64Array(C);
    r.forEach((ri, i) => {
      rGate[i % C]! += input[i]! * ri;
    });
    // the gate's share passes the sigmoid (Pass) and reaches x through the pool's Norm rule
    const expected = r.map(
      (ri, i) => gate[i % C]! * ri + (input[i]! * rGate[i % C]!) / (H * W * (mean[i % C]! + 1e-6)),
    );
    const got = values(result.relevance);
    expected.forEach((e, i) => {
      expect(got[i]).toBeCloseTo(e, 5);
    });
    Array.from(values(result.relevances.gate!)).forEach((v, c) => {
      expect(v).toBeCloseTo(rGate[c]!, 5);
    });
    disposeResult(result);
    x.dispose();
    model.dispose();
  });

  for (const which of [undefined, 'gradient'] as const) {
    test(`dot-product test of ${which ?? 'PassToFeature'}: <v, B(u)> = <B^T(v), u> from every layer`, () => {
      const model = seModel(kernel);
      const lrp = new Attributor(model, { composite: composite(which) });
      const x = tf.tensor4d(Array.from(input), [1, H, W, C]);
      const pass = lrp.forward(x);
      const layers = lrp.graph.nodes.filter((n) => n.id !== lrp.graph.inputId).map((n) => n.id);
      const v = tf.tensor(Array.from(uniform(mulberry32(5), 2 * H * W * C)), [2, H, W, C]);
      const adj = lrp.adjoint(pass, { values: v, record: layers });
      layers.forEach((layer, i) => {
        const shape = [2, ...pass.output(layer).shape.slice(1)];
        const n = shape.reduce((a, b) => a * b, 1);
        const u = tf.tensor(Array.from(uniform(mulberry32(50 + i), n)), shape);
        const back = lrp.backward(pass, { from: layer, relevance: u });
        const dot = (a: tf.Tensor, b: tf.Tensor) => values(a).reduce((s, ai, k) => s + ai * values(b)[k]!, 0);
        const lhs = dot(v, back.get(lrp.graph.inputId)!);
        const rhs = dot(adj.get(layer)!, u);
        expect(Math.abs(lhs - rhs), layer).toBeLessThan(1e-5 * Math.max(1, Math.abs(lhs)));
        for (const t of back.values()) t.dispose();
        u.dispose();
      });
      for (const t of adj.values()) t.dispose();
      v.dispose();
      pass.dispose();
      x.dispose();
      lrp.dispose();
      model.dispose();
    });
  }

  test('no tensor leaks: 100 attributions through the product leave tf.memory().numTensors unchanged', () => {
    const model = seModel(kernel);
    const lrp = new Attributor(model, { composite: composite() });
    const x = tf.tensor4d(Array.from(input), [1, H, W, C]);
    const warm = lrp.attribute(x, { target: 0, recordLayers: ['gate'] });
    disposeResult(warm);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) disposeResult(lrp.attribute(x, { target: 0, recordLayers: ['gate'] }));
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    lrp.dispose();
    model.dispose();
  });

  test('a Multiply of three tensors is refused by name', () => {
    const x = tfl.input({ shape: [2, 2, 1] });
    const y = tfl.layers.multiply({ name: 'triple' }).apply([x, x, x]) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: x, outputs: y });
    expect(() => new Attributor(model)).toThrowError(CrpError);
    expect(() => new Attributor(model)).toThrowError(/'triple' \(Multiply\) has 3 inputs; supported: 2/);
    model.dispose();
  });
});
