import { CrpError } from '@crp/common';
/**
 * New rules in a few lines with `basicRule` (input / parameter / output modifiers, gradient mapper, reducer),
 * checked against hand computations.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import {
  Attributor,
  basicRule,
  layerMapComposite,
  nameMapComposite,
  paramModifiers,
  stabilize,
} from '../src/index.js';
import { expectClose, gridValues, lrpInput, mulberry32, setWeights, uniform, useBackend } from './helpers.js';
import { type ConvGeom, convLin, denseLin, f64, mul, neg, pos, sub } from './reference.js';

useBackend('wasm');

/** Epsilon with a smooth stabiliser: R_in = x * back(W, R * z / (z^2 + eps)). */
const smoothEpsilon = (eps: number) =>
  basicRule({
    name: 'SmoothEpsilon',
    params: { epsilon: eps },
    branches: [{ input: 'identity', params: paramModifiers.identity }],
    gradientMapper: (r, [z]) => [tf.div(tf.mul(r, z!), tf.add(tf.square(z!), eps))],
    reducer: [{ branch: 0 }],
  });

/** Spread in proportion to |W| (a WSquare variant): R_in = back(|W|, R / stab(f(1; |W|, 0))). */
const absWeight = () =>
  basicRule({
    name: 'AbsW',
    branches: [
      {
        input: 'ones',
        params: paramModifiers.custom(
          (p) => ({ weight: p.weight === null ? null : tf.abs(p.weight), bias: null }),
          'abs',
        ),
      },
    ],
    gradientMapper: (r, [o]) => [tf.div(r, stabilize(o!, 1e-6))],
    reducer: [{ branch: 0, timesInput: false }],
  });

/** A z^B variant with bounds +-1 whose bound terms drop the bias, written with a function reducer and an
 * output modifier: z = f(x; W, b) - f(-1; W+, 0) - f(1; W-, 0); R_in = x g - l g+ - h g-. */
const boundedNoBias = () =>
  basicRule({
    name: 'ZBNoBias',
    branches: [
      { input: 'identity', params: paramModifiers.identity },
      { input: { fill: -1 }, params: paramModifiers.positive(false), output: (z) => tf.neg(z) },
      { input: { fill: 1 }, params: paramModifiers.negative(false), output: (z) => tf.neg(z) },
    ],
    gradientMapper: (r, [z, l, h]) => {
      const s = tf.div(r, stabilize(tf.add(tf.add(z!, l!), h!), 1e-6));
      return [s, s, s];
    },
    reducer: (inputs, grads) =>
      tf.sub(
        tf.sub(tf.mul(inputs[0]!, grads[0]!), tf.mul(inputs[1]!, grads[1]!)),
        tf.mul(inputs[2]!, grads[2]!),
      ),
  });

const W = [1, -2, 1, 0.5, 1, 2, -1, 0.5, 0];
const B = [0.5, -0.25, 0];
const X = [2, -1, 1];

function denseModel() {
  const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [3], name: 'd' })] });
  setWeights(model, 'd', W, B);
  return model;
}

describe('custom rules', () => {
  test('SmoothEpsilon by hand on Dense 3->3', () => {
    // z = [1, -4.75, 0], R = [1, 2, 3], eps = 0.25:
    // s = [1/1.25, 2*(-4.75)/(22.5625 + 0.25), 0] = [0.8, -9.5/22.8125, 0]
    const s1 = -9.5 / 22.8125;
    // back = W s: [0.8 - 2 s1, 0.4 + s1, -0.8 + 0.5 s1]; R_in = x * back
    const expected = [2 * (0.8 - 2 * s1), -1 * (0.4 + s1), 1 * (-0.8 + 0.5 * s1)];
    const model = denseModel();
    const rule = smoothEpsilon(0.25);
    expectClose(lrpInput(model, X, nameMapComposite({ d: rule }), [1, 2, 3]), expected, 1e-5);
    const lrp = new Attributor(model, { composite: nameMapComposite({ d: rule }) });
    expect(lrp.ruleOf('d').name).toBe('SmoothEpsilon');
    expect(lrp.ruleOf('d').params).toEqual({ epsilon: 0.25 });
    lrp.dispose();
    model.dispose();
  });

  test('AbsW (custom parameter modifier, all-ones input) by hand on Dense', () => {
    // |W| columns: [1, 0.5, 1], [2, 1, 0.5], [1, 2, 0]: o = [2.5, 3.5, 3]; R = [1, 2, 3]
    // s = [0.4, 4/7, 1]; R_in = |W| s
    const s = [0.4, 2 / 3.5, 1];
    const expected = [
      1 * s[0]! + 2 * s[1]! + 1 * s[2]!,
      0.5 * s[0]! + 1 * s[1]! + 2 * s[2]!,
      1 * s[0]! + 0.5 * s[1]!,
    ];
    const model = denseModel();
    expectClose(lrpInput(model, X, nameMapComposite({ d: absWeight() }), [1, 2, 3]), expected, 1e-5);
    model.dispose();
  });

  test('ZBNoBias (fill inputs, output modifiers, function reducer) on a conv by loops', () => {
    const g: ConvGeom = { h: 4, w: 4, cin: 1, kh: 2, kw: 2, cout: 2, padding: 'valid' };
    const L = convLin(g);
    const rng = mulberry32(17);
    const w = gridValues(rng, 8, 1.5);
    const b = gridValues(rng, 2, 1);
    const x = gridValues(rng, 16, 1);
    const R = uniform(rng, L.nOut, 0, 1);
    const low = f64(new Array(16).fill(-1));
    const high = f64(new Array(16).fill(1));
    const z = sub(sub(L.forward(x, w, b), L.forward(low, pos(w), null)), L.forward(high, neg(w), null));
    const s = R.map((r, j) => r / (z[j]! >= 0 ? z[j]! + 1e-6 : z[j]! - 1e-6));
    const expected = sub(
      sub(mul(x, L.back(w, s)), mul(low, L.back(pos(w), s))),
      mul(high, L.back(neg(w), s)),
    );
    const model = tfl.sequential({
      layers: [tfl.layers.conv2d({ filters: 2, kernelSize: 2, inputShape: [4, 4, 1], name: 'c' })],
    });
    setWeights(model, 'c', w, b);
    expectClose(lrpInput(model, x, layerMapComposite([['conv2d', boundedNoBias()]]), R), expected, 1e-5);
    model.dispose();
  });

  test('a custom rule with a batch of 2 explains each row', () => {
    const model = denseModel();
    const lrp = new Attributor(model, {
      composite: nameMapComposite({ d: smoothEpsilon(0.5) }),
      canonizers: [],
    });
    const x = tf.tensor2d([X, [0.5, 1, -2]]);
    const r = tf.tensor2d([
      [1, 0, 0],
      [0, 0, 2],
    ]);
    const result = lrp.attribute(x, { initRelevance: r });
    const got = result.relevance.dataSync();
    const L = denseLin(3, 3);
    [f64(X), f64([0.5, 1, -2])].forEach((xi, row) => {
      const z = L.forward(xi, f64(W), f64(B));
      const rr = f64(row === 0 ? [1, 0, 0] : [0, 0, 2]);
      const sv = rr.map((v, j) => (v * z[j]!) / (z[j]! * z[j]! + 0.5));
      expectClose(got.slice(row * 3, row * 3 + 3), mul(xi, L.back(f64(W), sv)), 1e-5);
    });
    for (const t of [result.relevance, result.prediction, x, r]) t.dispose();
    lrp.dispose();
    model.dispose();
  });

  test('a rule without branches, or on a layer without a linear map, is a CrpError', () => {
    expect(() =>
      basicRule({ name: 'Empty', branches: [], gradientMapper: () => [], reducer: [] }),
    ).toThrowError(CrpError);
    const model = tfl.sequential({
      layers: [tfl.layers.maxPooling2d({ poolSize: 2, inputShape: [2, 2, 1], name: 'mp' })],
    });
    let err: unknown;
    try {
      lrpInput(model, [1, 2, 3, 4], nameMapComposite({ mp: smoothEpsilon(1) }), [1]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CrpError);
    expect((err as CrpError).code).toBe('invalid-rule');
    expect((err as CrpError).message).toContain('mp');
    model.dispose();
  });
  test('a function reducer gets zeros for an input that is zero by construction (the negative part after a ReLU)', () => {
    // alpha1-beta1 written twice: with reducer terms and with a reducer function. After the ReLU the negative
    // part of the input is zero by construction; the function must see zeros there, not the input itself.
    const branches = [
      { input: 'positive' as const, params: paramModifiers.positive(false) },
      { input: 'negative' as const, params: paramModifiers.negative(false) },
    ];
    const gradientMapper = (r: tf.Tensor, [p, n]: readonly tf.Tensor[]) => [
      tf.div(r, stabilize(tf.add(p!, n!), 1e-6)),
      tf.div(r, stabilize(tf.add(p!, n!), 1e-6)),
    ];
    const byTerms = basicRule({
      name: 'Terms',
      branches,
      gradientMapper,
      reducer: [{ branch: 0 }, { branch: 1 }],
    });
    const byFunction = basicRule({
      name: 'Function',
      branches,
      gradientMapper,
      reducer: ([xp, xn], [gp, gn]) => tf.add(tf.mul(xp!, gp!), tf.mul(xn!, gn!)),
    });
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({ units: 3, inputShape: [3], name: 'a' }),
        tfl.layers.reLU({ name: 'relu' }),
        tfl.layers.dense({ units: 3, name: 'b' }),
      ],
    });
    setWeights(model, 'a', [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0]);
    setWeights(model, 'b', W, B);
    const x = [2, 1, 3];
    const terms = lrpInput(model, x, nameMapComposite({ b: byTerms }), [1, 2, 3]);
    const fn = lrpInput(model, x, nameMapComposite({ b: byFunction }), [1, 2, 3]);
    expect(terms.some((v) => Math.abs(v) > 1e-3)).toBe(true);
    expectClose(fn, terms, 1e-6);
    model.dispose();
  });
});
