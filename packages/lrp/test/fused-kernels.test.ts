/**
 * The cheaper kernels of the engine give the values of the plain ones: the conv and matrix-product forward with the
 * bias in the product's kernel (XNNPACK's fused bias on wasm), the one-kernel stabiliser of outputs that cannot be
 * negative, and the sums of branch outputs that skip the all-zero x- W- branch after a ReLU.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import type { GraphNode } from '../src/graph/types.js';
import { attribute, basicRule, nameMapComposite, type Rule, rules } from '../src/index.js';
import { linearMapOf } from '../src/ops/linear.js';
import { paramModifiers as P } from '../src/rules/modifiers.js';
import { stabilize, stabilizeNonNegative } from '../src/rules/stabilizer.js';
import { gridValues, mulberry32, randomizeWeights, uniform, useBackend } from './helpers.js';

useBackend('wasm');

const bits = (t: tf.Tensor) => Array.from(new Uint32Array(Float32Array.from(t.dataSync()).buffer));

describe('stabilize', () => {
  test('is where(z >= 0, z + eps, z - eps), bit for bit, on both signs, zeros, NaN and infinities', () => {
    const z = tf.tensor1d([
      0,
      -0,
      1e-30,
      -1e-30,
      1e-7,
      -1e-7,
      5e-7,
      -5e-7,
      3,
      -3,
      -65504,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]);
    for (const eps of [1e-6, 0.25, 0]) {
      const want = tf.where(tf.greaterEqual(z, 0), tf.add(z, eps), tf.sub(z, eps));
      const got = stabilize(z, eps);
      expect(bits(got), `eps ${eps}`).toEqual(bits(want));
      tf.dispose([want, got]);
    }
    z.dispose();
  });
});

describe('stabilizeNonNegative', () => {
  test('is stabilize, bit for bit, on z >= 0, -0 and NaN', () => {
    const z = tf.tensor1d([0, -0, 1e-30, 1e-7, 3, 65504, Number.NaN, Number.POSITIVE_INFINITY]);
    const [a, b] = [stabilize(z, 1e-6), stabilizeNonNegative(z, 1e-6)];
    expect(bits(b)).toEqual(bits(a));
    tf.dispose([z, a, b]);
  });
});

/** ZPlus and AlphaBeta as they were written before: tf.add of the branch outputs, the four-kernel stabiliser. */
function plainZPlus(eps = 1e-6): Rule {
  return basicRule({
    name: 'ZPlus',
    branches: [
      { input: 'positive', params: P.positive(true) },
      { input: 'negative', params: P.negative(false) },
    ],
    gradientMapper: (r, [a, b]) => {
      const s = tf.div(r, stabilize(tf.add(a!, b!), eps));
      return [s, s];
    },
    reducer: [{ branch: 0 }, { branch: 1 }],
  });
}

function plainAlphaBeta(alpha = 2, beta = 1, eps = 1e-6): Rule {
  return basicRule({
    name: 'AlphaBeta',
    branches: [
      { input: 'positive', params: P.positive(true) },
      { input: 'negative', params: P.negative(false) },
      { input: 'positive', params: P.negative(true) },
      { input: 'negative', params: P.positive(false) },
    ],
    gradientMapper: (r, [a, b, c, d]) => {
      const sp = tf.div(r, stabilize(tf.add(a!, b!), eps));
      const sn = tf.div(r, stabilize(tf.add(c!, d!), eps));
      return [sp, sp, sn, sn];
    },
    reducer: [
      { branch: 0, coefficient: alpha },
      { branch: 1, coefficient: alpha },
      { branch: 2, coefficient: -beta },
      { branch: 3, coefficient: -beta },
    ],
  });
}

describe('ZPlus and AlphaBeta after a ReLU (x- W- all zero) and before one (x of both signs)', () => {
  // c1's ReLU output feeds c2 (the zero branch is skipped); the input feeds c1 (both branches run); zeros in the
  // input and dead ReLUs make zero outputs, where only sign0 tells +eps from -eps
  function relevance(rule: () => Rule): Float64Array {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({
          filters: 4,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          inputShape: [6, 6, 3],
          name: 'c1',
        }),
        tfl.layers.conv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', name: 'c2' }),
      ],
    });
    randomizeWeights(model, 7);
    const x = tf.tensor4d(Float32Array.from(gridValues(mulberry32(3), 6 * 6 * 3)), [1, 6, 6, 3]);
    const before = tf.memory().numTensors;
    const r = attribute(model, x, {
      canonizers: [],
      composite: nameMapComposite({ c1: rule(), c2: rule() }),
      // the output itself as relevance: both signs
      initRelevance: (prediction) => tf.mul(prediction, 1),
    });
    const out = Float64Array.from(r.relevance.dataSync());
    tf.dispose([r.relevance, r.prediction]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
    return out;
  }

  test.each([
    ['ZPlus', () => rules.zPlus(), () => plainZPlus()],
    ['AlphaBeta(2, 1)', () => rules.alphaBeta(2, 1), () => plainAlphaBeta(2, 1)],
  ])('%s: the same relevance, bit for bit', (_, fast, plain) => {
    const [a, b] = [relevance(fast), relevance(plain)];
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(a.some((v) => v !== 0)).toBe(true);
  });
});

function convNode(kernel: tf.Tensor, bias: tf.Tensor, strides: [number, number]): GraphNode {
  return {
    id: 'c',
    layerName: 'c',
    className: 'Conv2D',
    kind: 'conv2d',
    inputs: [],
    outputShape: [],
    activation: 'linear',
    params: { kind: 'conv2d', kernel, bias, strides, padding: 'same' },
    index: 0,
  };
}

describe('the conv forward with the bias in the product kernel', () => {
  // grid values: every sum is exact in float32, so fused and separate bias agree to the bit
  const rng = mulberry32(11);
  const grid = (shape: number[]) =>
    tf.tensor(
      Float32Array.from(
        gridValues(
          rng,
          shape.reduce((a, b) => a * b, 1),
        ),
      ),
      shape,
    );
  test.each([
    ['3x3 stride 1 (Conv2D)', [3, 3], [1, 1]],
    ['3x3 stride 2 (Conv2D)', [3, 3], [2, 2]],
    ['1x1 stride 1 (the patch path: a matrix product)', [1, 1], [1, 1]],
  ] as [string, number[], [number, number]][])(
    '%s: equals conv + bias, also for a bias that is a reshaped view',
    (_, k, strides) => {
      const x = grid([2, 7, 7, 3]);
      const kernel = grid([k[0]!, k[1]!, 3, 4]);
      const vector = grid([4]);
      // a bias whose data was made as [1, 1, 1, 4]: wasm's fused kernels refuse it, the separate Add takes over
      const view = tf.reshape(tf.add(tf.reshape(vector, [1, 1, 1, 4]), 0), [4]);
      const before = tf.memory().numTensors;
      for (const bias of [vector, view]) {
        const got = linearMapOf(convNode(kernel, bias, strides), x.shape)!.forward(x, {
          weight: kernel,
          bias,
        });
        const want = tf.tidy(() =>
          tf.add(tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, strides, 'same'), bias),
        );
        expect(got.shape).toEqual(want.shape);
        expect(bits(got)).toEqual(bits(want));
        tf.dispose([got, want]);
      }
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, kernel, vector, view]);
    },
  );
});

describe('the patch path on values that round (not grid values)', () => {
  const rng = mulberry32(23);
  const random = (shape: number[], scale = 1) =>
    tf.tensor(
      Float32Array.from(
        uniform(
          rng,
          shape.reduce((a, b) => a * b, 1),
          -scale,
          scale,
        ),
      ),
      shape,
    );

  test('a 1x1 conv with the fused bias stays within float32 error of the float64 sum, as the separate Add', () => {
    // |fl(z) - z| <= gamma(K + 1) * (sum_k |x_k w_k| + |b|), gamma(n) = n u / (1 - n u), u = 2^-24
    const [cin, cout] = [96, 8];
    const x = random([1, 5, 5, cin]);
    const kernel = random([1, 1, cin, cout], 0.2);
    const bias = random([cout], 0.05);
    const map = linearMapOf(convNode(kernel, bias, [1, 1]), x.shape)!;
    const fused = map.forward(x, { weight: kernel, bias });
    const separate = tf.tidy(() =>
      tf.add(tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, 1, 'same'), bias),
    );
    const [xs, ks, bs, fs, ss] = [x, kernel, bias, fused, separate].map((t) => t.dataSync());
    const u = 2 ** -24;
    const gamma = ((cin + 1) * u) / (1 - (cin + 1) * u);
    let worst = 0;
    for (let p = 0; p < 25; p++) {
      for (let o = 0; o < cout; o++) {
        let z = bs![o]!;
        let magnitude = Math.abs(bs![o]!);
        for (let i = 0; i < cin; i++) {
          z += xs![p * cin + i]! * ks![i * cout + o]!;
          magnitude += Math.abs(xs![p * cin + i]! * ks![i * cout + o]!);
        }
        const bound = gamma * magnitude;
        expect(Math.abs(fs![p * cout + o]! - z)).toBeLessThanOrEqual(bound);
        expect(Math.abs(ss![p * cout + o]! - z)).toBeLessThanOrEqual(bound);
        worst = Math.max(worst, Math.abs(fs![p * cout + o]! - ss![p * cout + o]!));
      }
    }
    // both are float32 sums of the same terms in different orders: they differ, by rounding only
    expect(worst).toBeGreaterThan(0);
    tf.dispose([x, kernel, bias, fused, separate]);
  });

  test('a patch embedding with windows (4x4, stride 4) keeps the separate Add, bit for bit', () => {
    const x = random([1, 8, 8, 3]);
    const kernel = random([4, 4, 3, 16], 0.3);
    const bias = random([16], 0.05);
    const same = convNode(kernel, bias, [4, 4]);
    const node: GraphNode = { ...same, params: { ...same.params, padding: 'valid' } as GraphNode['params'] };
    const got = linearMapOf(node, x.shape)!.forward(x, { weight: kernel, bias });
    const want = tf.tidy(() => {
      const patches = tf.reshape(tf.transpose(tf.reshape(x, [2, 4, 2, 12]), [0, 2, 1, 3]), [4, 48]);
      return tf.reshape(tf.add(tf.matMul(patches, tf.reshape(kernel, [48, 16])), bias), [1, 2, 2, 16]);
    });
    expect(bits(got)).toEqual(bits(want));
    tf.dispose([x, kernel, bias, got, want]);
  });
});
