/**
 * The products of attention per head on wasm (ops/head-matmul.ts): every product equals TF.js's batched
 * `tf.matMul` (the plain path, which the cpu backend also runs) to 1e-5, for one and several rows of relevance,
 * shapes where no two of the axes are equal (so a swapped axis cannot pass), several head axes and none; under
 * a gradient tape the plain path is taken (autodiff cannot follow values through JavaScript); the AttnLRP
 * relevance of a small attention block equals the cpu backend's; nothing leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Attributor, transformerLayers } from '../src/index.js';
import { matMulShared, sharedFactor } from '../src/ops/head-matmul.js';
import { expectClose, mulberry32, switchBackend, uniform, useBackend, values } from './helpers.js';

useBackend('wasm');

function random(rng: () => number, shape: number[]): tf.Tensor {
  return tf.tensor(
    Array.from(
      uniform(
        rng,
        shape.reduce((a, b) => a * b, 1),
      ),
    ),
    shape,
  );
}

// [R, ...heads, M, P] against a shared factor [1, ...heads, P, Q]: M, P, Q and the heads all differ
const CASES: { name: string; rows: number; heads: number[]; m: number; p: number; q: number }[] = [
  { name: 'one row, 3 heads', rows: 1, heads: [3], m: 5, p: 7, q: 4 },
  { name: '4 rows, 3 heads', rows: 4, heads: [3], m: 5, p: 7, q: 4 },
  { name: '2 rows, 2 x 3 head axes', rows: 2, heads: [2, 3], m: 6, p: 5, q: 9 },
  { name: '3 rows, no head axis', rows: 3, heads: [], m: 4, p: 6, q: 5 },
];

describe('per-head products on wasm equal tf.matMul', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const rng = mulberry32(7);
      const s = random(rng, [1, ...c.heads, c.p, c.q]);
      const x = random(rng, [c.rows, ...c.heads, c.m, c.p]);
      const xt = random(rng, [c.rows, ...c.heads, c.p, c.m]);
      const y = random(rng, [c.rows, ...c.heads, c.m, c.q]);
      const z = random(rng, [c.rows, ...c.heads, c.p, c.m]);
      const before = tf.memory().numTensors;
      const factor = sharedFactor(s);
      const pairs: [string, () => tf.Tensor, () => tf.Tensor][] = [
        ['x S', () => factor.times(x), () => tf.matMul(x, s)],
        ['x^T S', () => factor.times(xt, true), () => tf.matMul(xt, s, true, false)],
        ['y S^T', () => factor.timesTransposed(y), () => tf.matMul(y, s, false, true)],
        ['S^T z', () => factor.transposedTimes(z), () => tf.matMul(s, z, true, false)],
      ];
      for (const [what, fast, plain] of pairs) {
        const [a, e] = [fast(), plain()];
        expect(a.shape, what).toEqual(e.shape);
        expectClose(a, values(e), 1e-5);
        tf.dispose([a, e]);
      }
      // a second call reuses the heads packed by the first and gives the same numbers
      const [again, first] = [factor.times(x), tf.matMul(x, s)];
      expectClose(again, values(first), 1e-5);
      tf.dispose([again, first]);
      factor.dispose();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([s, x, xt, y, z]);
    });
  }

  test('matMulShared: a op(b) of one image, and rows of a against one b', () => {
    const rng = mulberry32(11);
    const before = tf.memory().numTensors;
    for (const rows of [1, 3]) {
      const a = random(rng, [rows, 2, 5, 3]);
      const b = random(rng, [1, 2, 3, 6]);
      const bt = random(rng, [1, 2, 6, 3]);
      for (const [fast, plain] of [
        [() => matMulShared(a, b, false), () => tf.matMul(a, b)],
        [() => matMulShared(a, bt, true), () => tf.matMul(a, bt, false, true)],
      ] as const) {
        const [x, e] = [fast(), plain()];
        expectClose(x, values(e), 1e-5);
        tf.dispose([x, e, a.shape[0] === rows ? [] : a]);
      }
      tf.dispose([a, b, bt]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  test('a factor with several images, or rows with other heads, takes the plain path', () => {
    const rng = mulberry32(3);
    const s = random(rng, [2, 3, 4, 5]);
    const x = random(rng, [2, 3, 6, 4]);
    const factor = sharedFactor(s);
    expectClose(factor.times(x), values(tf.matMul(x, s)), 1e-6);
    const one = random(rng, [1, 3, 4, 5]);
    const other = random(rng, [1, 1, 6, 4]); // broadcast head axis: not the factor's heads
    const f1 = sharedFactor(one);
    expectClose(f1.times(other), values(tf.matMul(other, one)), 1e-6);
    factor.dispose();
    f1.dispose();
  });

  test('under a gradient tape the plain, differentiable product is taken', () => {
    const rng = mulberry32(5);
    const a = random(rng, [1, 2, 4, 3]);
    const b = random(rng, [1, 2, 5, 3]);
    const g = random(rng, [1, 2, 4, 5]);
    const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => matMulShared(x, y, true))([a, b], g);
    // d<g, a b^T>/da = g b, d/db = g^T a
    expectClose(ga!, values(tf.matMul(g, b)), 1e-5);
    expectClose(gb!, values(tf.matMul(g, a, true, false)), 1e-5);
  });
});

/** One attention block of 2 heads on 5 tokens of width 6 (q, k, v from one Dense, scores, softmax, A v). */
function attentionModel(): tfl.LayersModel {
  const [t, d, heads] = [5, 6, 2];
  const input = tfl.input({ shape: [t, d] });
  const split = (name: string) => {
    const y = tfl.layers.dense({ units: d, name }).apply(input) as tfl.SymbolicTensor;
    const r = tfl.layers.reshape({ targetShape: [t, heads, d / heads] }).apply(y) as tfl.SymbolicTensor;
    return tfl.layers.permute({ dims: [2, 1, 3] }).apply(r) as tfl.SymbolicTensor;
  };
  const [q, k, v] = [split('q'), split('k'), split('v')];
  const scores = transformerLayers
    .matMul({ transposeB: true, scale: 1 / Math.sqrt(d / heads), name: 'scores' })
    .apply([q, k]) as tfl.SymbolicTensor;
  const attn = tfl.layers.softmax({ axis: -1, name: 'softmax' }).apply(scores) as tfl.SymbolicTensor;
  const out = transformerLayers.matMul({ name: 'values' }).apply([attn, v]) as tfl.SymbolicTensor;
  const merged = tfl.layers.permute({ dims: [2, 1, 3] }).apply(out) as tfl.SymbolicTensor;
  const flat = tfl.layers.reshape({ targetShape: [t * d] }).apply(merged) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ units: 3, name: 'head' }).apply(flat) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits });
}

describe('AttnLRP through an attention block: wasm (per head) equals cpu (tf.matMul)', () => {
  let model: tfl.LayersModel;
  beforeAll(() => {
    model = attentionModel();
  });
  afterAll(() => model.dispose());

  for (const composite of ['attn_lrp', 'cp_lrp'] as const) {
    test(`${composite}, 3 rows of relevance on one forward pass`, async () => {
      const x = Array.from(uniform(mulberry32(21), 5 * 6));
      const run = (): Float64Array => {
        const lrp = new Attributor(model, { composite });
        const input = tf.tensor(x, [1, 5, 6]);
        const pass = lrp.forward(input);
        // rows k = 0..2: the logit of class k
        const relevance = tf.tidy(() => tf.mul(tf.eye(3), pass.output(lrp.graph.outputId)));
        const result = lrp.backward(pass, { from: lrp.graph.outputId, relevance });
        const out = [...result.values()].map((t) => values(t));
        for (const t of result.values()) t.dispose();
        tf.dispose([relevance, input]);
        pass.dispose();
        lrp.dispose();
        expect(out).toHaveLength(1);
        return out[0]!;
      };
      const before = tf.memory().numTensors;
      const onWasm = run();
      expect(onWasm).toHaveLength(3 * 5 * 6);
      expect(tf.memory().numTensors).toBe(before);
      await switchBackend('cpu');
      try {
        expectClose(onWasm, run(), 1e-5);
      } finally {
        await switchBackend('wasm');
      }
    });
  }
});
