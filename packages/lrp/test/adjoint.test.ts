import { CrpError } from '@crp/common';
/**
 * The adjoint pass is the transpose of the backward pass: for the backward map B_L from a layer L down to the
 * input (with the forward pass fixed), <v, B_L(u)> = <B_L^T(v), u> for every u at L and v at the input (the
 * dot-product test). Checked for every rule on every layer kind the engine supports, on Sequential and
 * functional graphs (Add, Concatenate, global pools, Reshape), for every layer L at once.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  Attributor,
  basicRule,
  type Composite,
  epsilonAlpha2Beta1Flat,
  epsilonGammaBox,
  epsilonPlus,
  epsilonPlusFlat,
  layerMapComposite,
  type NodeKind,
  paramModifiers,
  type Rule,
  rules,
} from '../src/index.js';
import { randomizeWeights, switchBackend, uniformTensor, useBackend, values } from './helpers.js';

useBackend('cpu');

const LINEAR: NodeKind[] = ['conv2d', 'depthwiseConv2d', 'dense'];

/** conv (fused ReLU) -> max pool (tiles, cropped) -> valid conv -> ReLU -> zero padding -> depthwise ->
 * batch norm -> same avg pool (border windows count fewer inputs) -> strided same max pool (general path)
 * -> flatten -> dense (fused ReLU) -> dense */
function sequentialModel(): tfl.LayersModel {
  const m = tfl.sequential({ name: 'seq' });
  m.add(
    tfl.layers.conv2d({
      inputShape: [9, 9, 2],
      filters: 3,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      name: 'c1',
    }),
  );
  m.add(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'mp1' }));
  m.add(tfl.layers.conv2d({ filters: 4, kernelSize: 2, padding: 'valid', name: 'c2' }));
  m.add(tfl.layers.reLU({ name: 'r2' }));
  m.add(tfl.layers.zeroPadding2d({ padding: [1, 2], name: 'pad' }));
  m.add(
    tfl.layers.depthwiseConv2d({
      kernelSize: 3,
      depthMultiplier: 2,
      strides: 2,
      padding: 'same',
      name: 'dw',
    }),
  );
  m.add(tfl.layers.batchNormalization({ name: 'bn' }));
  m.add(tfl.layers.averagePooling2d({ poolSize: 2, strides: 1, padding: 'same', name: 'ap' }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'mp2' }));
  m.add(tfl.layers.flatten({ name: 'flat' }));
  m.add(tfl.layers.dense({ units: 5, activation: 'relu', name: 'd1' }));
  m.add(tfl.layers.dense({ units: 3, name: 'out' }));
  randomizeWeights(m, 5, 0.6);
  return m;
}

/** conv -> ReLU -> [conv, 1x1 conv] -> Add -> ReLU -> Concatenate with the first ReLU -> strided conv ->
 * [global avg pool, global max pool] -> Concatenate -> Reshape -> Dense */
function functionalModel(): tfl.LayersModel {
  const x = tfl.input({ shape: [6, 6, 2], name: 'x' });
  const ap = (l: tfl.layers.Layer, t: tfl.SymbolicTensor | tfl.SymbolicTensor[]) =>
    l.apply(t) as tfl.SymbolicTensor;
  const a = ap(tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'a' }), x);
  const ra = ap(tfl.layers.reLU({ name: 'ra' }), a);
  const b = ap(tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'b' }), ra);
  const c = ap(tfl.layers.conv2d({ filters: 3, kernelSize: 1, name: 'c' }), ra);
  const s = ap(tfl.layers.add({ name: 'sum' }), [b, c]);
  const rs = ap(tfl.layers.reLU({ name: 'rs' }), s);
  const cat = ap(tfl.layers.concatenate({ name: 'cat' }), [rs, ra]);
  const d = ap(tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 'd' }), cat);
  const rd = ap(tfl.layers.reLU({ name: 'rd' }), d);
  const gap = ap(tfl.layers.globalAveragePooling2d({ name: 'gap' }), rd);
  const gmp = ap(tfl.layers.globalMaxPooling2d({ name: 'gmp' }), rd);
  const both = ap(tfl.layers.concatenate({ name: 'pools' }), [gap, gmp]);
  const shaped = ap(tfl.layers.reshape({ targetShape: [2, 4], name: 'shape' }), both);
  const flat = ap(tfl.layers.flatten({ name: 'flat' }), shaped);
  const y = ap(tfl.layers.dense({ units: 3, name: 'out' }), flat);
  const model = tfl.model({ inputs: x, outputs: y, name: 'fn' });
  randomizeWeights(model, 9, 0.6);
  return model;
}

const RULES: [string, () => Rule][] = [
  ['epsilon(0.25)', () => rules.epsilon(0.25)],
  ['epsilon(1e-6)', () => rules.epsilon(1e-6)],
  ['zPlus', () => rules.zPlus()],
  ['alphaBeta(2,1)', () => rules.alphaBeta(2, 1)],
  ['gamma(0.25)', () => rules.gamma(0.25)],
  ['flat', () => rules.flat()],
  ['wSquare', () => rules.wSquare()],
  ['zBox(-3,3)', () => rules.zBox(-3, 3)],
  ['gradient', () => rules.gradient()],
];

/** <a, b> in float64, and the sum of |a * b| as the scale of its rounding error. */
function dot(a: tf.Tensor, b: tf.Tensor): [number, number] {
  expect(a.shape).toEqual(b.shape);
  const x = values(a);
  const y = values(b);
  let s = 0;
  let abs = 0;
  for (let i = 0; i < x.length; i++) {
    s += x[i]! * y[i]!;
    abs += Math.abs(x[i]! * y[i]!);
  }
  return [s, abs];
}

/** For every non-input layer L: <v, B_L(u)> = <B_L^T(v), u>, with K rows of u and v. */
function dotProductTest(lrp: Attributor, input: tf.Tensor, rows: number, seed: number): number {
  const g = lrp.graph;
  const layers = g.nodes.filter((n) => n.id !== g.inputId).map((n) => n.id);
  const pass = lrp.forward(input);
  let checked = 0;
  try {
    const v = uniformTensor([rows, ...input.shape.slice(1)], seed);
    const adj = lrp.adjoint(pass, { values: v, record: layers });
    layers.forEach((layer, i) => {
      const u = uniformTensor([rows, ...pass.output(layer).shape.slice(1)], seed + 1 + i);
      const back = lrp.backward(pass, { from: layer, relevance: u });
      const bu = back.get(g.inputId)!;
      const [lhs, lhsScale] = dot(v, bu);
      const [rhs, rhsScale] = dot(adj.get(layer)!, u);
      const scale = Math.max(lhsScale, rhsScale, 1e-30);
      if (Math.abs(lhs - rhs) > 1e-5 * scale) {
        throw new Error(`layer ${layer}: <v, B(u)> = ${lhs} but <B^T(v), u> = ${rhs} (scale ${scale})`);
      }
      for (const t of back.values()) t.dispose();
      u.dispose();
      checked++;
    });
    for (const t of adj.values()) t.dispose();
    v.dispose();
  } finally {
    pass.dispose();
  }
  return checked;
}

function compositeWith(rule: Rule, activations?: Rule): Composite {
  const entries: [NodeKind[], Rule][] = [[LINEAR, rule]];
  if (activations !== undefined) entries.push([['activation', 'batchNorm'], activations]);
  return layerMapComposite(entries);
}

describe('dot-product test: the adjoint pass is the transpose of the backward pass', () => {
  let seq: tfl.LayersModel;
  let fn: tfl.LayersModel;
  beforeAll(() => {
    seq = sequentialModel();
    fn = functionalModel();
  });

  for (const [name, make] of RULES) {
    test(`${name} on every layer of a Sequential model (batch-1 pass, 3 rows)`, () => {
      const before = tf.memory().numTensors;
      const lrp = new Attributor(seq, { composite: compositeWith(make()), canonizers: [] });
      const x = uniformTensor([1, 9, 9, 2], 11, -2, 2);
      expect(dotProductTest(lrp, x, 3, 100)).toBe(12);
      x.dispose();
      lrp.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    test(`${name} on a functional model with Add, Concatenate, global pools and Reshape (batch-2 pass)`, () => {
      const lrp = new Attributor(fn, { composite: compositeWith(make()) });
      const x = uniformTensor([2, 6, 6, 2], 12, -2, 2);
      expect(dotProductTest(lrp, x, 2, 200)).toBe(15);
      x.dispose();
      lrp.dispose();
    });
  }

  test('plain gradients of activations (ReLU derivative) and batch norm (scale), fused activations too', () => {
    const lrp = new Attributor(seq, {
      composite: compositeWith(rules.gradient(), rules.gradient()),
      canonizers: [],
    });
    const x = uniformTensor([1, 9, 9, 2], 13, -2, 2);
    expect(dotProductTest(lrp, x, 2, 300)).toBe(12);
    x.dispose();
    lrp.dispose();
  });

  test('the built-in composites, with the batch-norm merge', () => {
    const composites = [
      epsilonPlusFlat(),
      epsilonAlpha2Beta1Flat(),
      epsilonGammaBox({ low: -2, high: 2 }),
      epsilonPlus(),
    ];
    for (const composite of composites) {
      const lrp = new Attributor(seq, { composite });
      const x = uniformTensor([1, 9, 9, 2], 14, -2, 2);
      expect(dotProductTest(lrp, x, 2, 400)).toBe(12);
      x.dispose();
      lrp.dispose();
    }
  });

  test('on wasm as well', async () => {
    // the weights move to the new backend on first use
    await switchBackend('wasm');
    try {
      const lrp = new Attributor(fn, { composite: 'epsilon_plus_flat' });
      const x = uniformTensor([1, 6, 6, 2], 15, -2, 2);
      expect(dotProductTest(lrp, x, 3, 500)).toBe(15);
      x.dispose();
      lrp.dispose();
    } finally {
      await switchBackend('cpu');
    }
  });
});

describe('adjoint pass: recorded values and errors', () => {
  let seq: tfl.LayersModel;
  beforeAll(() => {
    seq = sequentialModel();
  });

  test('returns one tensor per recorded name (also when one layer is named twice) and frees the rest', () => {
    const start = tf.memory().numTensors;
    const lrp = new Attributor(seq);
    const x = uniformTensor([1, 9, 9, 2], 21);
    const pass = lrp.forward(x);
    const v = uniformTensor([2, 9, 9, 2], 22);
    const run = () => lrp.adjoint(pass, { values: v, record: ['c2', 'd1', 'c2', 'out'] });
    // the first call prepares the rules against the pass (kept by the pass until it is disposed)
    for (const t of run().values()) t.dispose();
    const before = tf.memory().numTensors;
    const out = run();
    expect([...out.keys()]).toEqual(['c2', 'd1', 'out']);
    expect(out.get('c2')!.shape).toEqual([2, 3, 3, 4]);
    expect(out.get('d1')!.shape).toEqual([2, 5]);
    expect(new Set(out.values()).size).toBe(3);
    for (const t of out.values()) t.dispose();
    expect(tf.memory().numTensors).toBe(before);
    v.dispose();
    pass.dispose();
    x.dispose();
    lrp.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  test('an adjoint from an inner layer equals the part of the full adjoint above it', () => {
    // B_L for L above c2 factors as B_{c2 below} B_{c2..L}: its transpose from c2 upwards with values
    // B_{c2 below}^T(v) gives the same as from the input with v
    const lrp = new Attributor(seq);
    const x = uniformTensor([1, 9, 9, 2], 23);
    const pass = lrp.forward(x);
    const v = uniformTensor([1, 9, 9, 2], 24);
    const full = lrp.adjoint(pass, { values: v, record: ['c2', 'd1'] });
    const part = lrp.adjoint(pass, { from: 'c2', values: full.get('c2')!, record: ['d1'] });
    expect(Array.from(values(part.get('d1')!))).toEqual(Array.from(values(full.get('d1')!)));
    for (const t of [...full.values(), ...part.values(), v, x]) t.dispose();
    pass.dispose();
    lrp.dispose();
  });

  test('bad shapes, layers below the start, and a rule without adjoint are typed errors', () => {
    const lrp = new Attributor(seq);
    const x = uniformTensor([1, 9, 9, 2], 25);
    const pass = lrp.forward(x);
    const v = uniformTensor([1, 9, 9, 2], 26);
    const wrong = uniformTensor([1, 8, 9, 2], 27);
    expect(() => lrp.adjoint(pass, { values: wrong, record: ['c2'] })).toThrow(
      /must have shape \[batch, 9, 9, 2\]/,
    );
    expect(() => lrp.adjoint(pass, { from: 'c2', values: v, record: ['c1'] })).toThrow(CrpError);
    expect(() => lrp.adjoint(pass, { values: v, record: ['nope'] })).toThrow(/nope/);
    pass.dispose();
    lrp.dispose();

    // a basic rule whose reducer is a function has no known transpose
    const reducerFn = basicRule({
      name: 'ReducerFn',
      branches: [{ input: 'identity', params: paramModifiers.identity }],
      gradientMapper: (r, [z]) => [tf.div(r, tf.add(z!, 1e-6))],
      reducer: ([x], [g]) => tf.mul(x!, g!),
    });
    const lrp1 = new Attributor(seq, { composite: layerMapComposite([['dense', reducerFn]]) });
    const pass1 = lrp1.forward(x);
    expect(() => lrp1.adjoint(pass1, { values: v, record: ['out'] })).toThrow(/ReducerFn at 'd1'/);
    pass1.dispose();
    lrp1.dispose();
    // and a hand-written rule without adjoint()
    const noAdjoint: Rule = {
      name: 'MyRule',
      params: {},
      prepare: () => ({ backward: (r) => [r], dispose: () => {} }),
    };
    const lrp2 = new Attributor(seq, { composite: layerMapComposite([['activation', noAdjoint]]) });
    const pass2 = lrp2.forward(x);
    let err: unknown;
    try {
      lrp2.adjoint(pass2, { values: v, record: ['out'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CrpError);
    expect((err as CrpError).code).toBe('no-adjoint');
    expect((err as CrpError).message).toMatch(/MyRule at 'r2'/);
    pass2.dispose();
    lrp2.dispose();
    for (const t of [x, v, wrong]) t.dispose();
  });
});
