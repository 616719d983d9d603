/**
 * The patch embedding (a conv with kernel = strides, no padding: a ViT's `conv_proj`) runs as one matrix
 * product (ops/patch-conv.ts). Held here: the same numbers as the general conv path for every weight a rule
 * gives it, every rule through the engine against the float64 loops of reference.ts, the un-patchify as the
 * exact transpose of the patchify (dot-product test), which convs take the path, and no leaked tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExplicitPadding, GraphNode, Padding, Rule } from '../src/index.js';
import { nameMapComposite, rules } from '../src/index.js';
import { convMap, linearMapOf } from '../src/ops/linear.js';
import { patchConvMap, patchify, unpatchify } from '../src/ops/patch-conv.js';
import {
  expectClose,
  lrpInput,
  mulberry32,
  setWeights,
  uniform,
  uniformTensor,
  useBackend,
  values,
} from './helpers.js';
import {
  alphaBetaRef,
  type ConvGeom,
  convLin,
  epsilonRef,
  type F,
  flatRef,
  gammaRef,
  mul,
  wSquareRef,
  zPlusRef,
} from './reference.js';

useBackend('wasm');

interface Geom {
  shape: [number, number, number, number];
  kernel: [number, number, number, number];
  padding: Padding | ExplicitPadding;
}

// kernel = strides; the second leaves a row and a column that no window covers ('valid' drops them)
const GEOMS: Record<string, Geom> = {
  'vit-like 4x4 patches': { shape: [2, 8, 12, 3], kernel: [4, 4, 3, 6], padding: 'valid' },
  'rectangular 3x2 patches, leftovers': { shape: [2, 10, 7, 2], kernel: [3, 2, 2, 5], padding: 'valid' },
  "'same' on a multiple of the stride": { shape: [1, 8, 8, 3], kernel: [2, 2, 3, 4], padding: 'same' },
  // one row per window: patches without a transpose
  "1x1 (a ResNet bottleneck's conv1 and conv3)": {
    shape: [2, 5, 6, 3],
    kernel: [1, 1, 3, 4],
    padding: 'valid',
  },
  '1x2 windows, a column left over': { shape: [1, 4, 7, 2], kernel: [1, 2, 2, 3], padding: 'valid' },
  'explicit zero padding': {
    shape: [1, 6, 6, 2],
    kernel: [3, 3, 2, 3],
    padding: [
      [0, 0],
      [0, 0],
    ],
  },
};

function convNode(g: Geom, extra: Partial<{ dilations: [number, number]; groups: number }> = {}): GraphNode {
  const [kh, kw] = g.kernel;
  return {
    id: 'conv_proj',
    layerName: 'conv_proj',
    className: 'Conv2D',
    kind: 'conv2d',
    inputs: [],
    outputShape: [],
    activation: 'linear',
    params: {
      kind: 'conv2d',
      kernel: tf.zeros(g.kernel),
      bias: null,
      strides: [kh, kw],
      padding: g.padding,
      ...extra,
    },
    index: 0,
  };
}

/** The weights a rule hands the linear map on the patch embedding: LinearEpsilon's and the gradient's W,
 * ZPlus/AlphaBeta's W+ and W-, Gamma's W + 0.25 W+, WSquare's W^2, Flat's ones. */
const WEIGHTS: Record<string, (w: tf.Tensor) => tf.Tensor> = {
  identity: (w) => w,
  positive: (w) => tf.relu(w),
  negative: (w) => tf.minimum(w, 0),
  gamma: (w) => tf.add(w, tf.mul(0.25, tf.relu(w))),
  square: (w) => tf.square(w),
  ones: (w) => tf.onesLike(w),
};

describe('the matrix-product path equals the conv path', () => {
  for (const [name, g] of Object.entries(GEOMS)) {
    test(`${name}: forward and transpose for every rule's weight`, () => {
      const node = convNode(g);
      const patch = patchConvMap(node, g.shape);
      expect(patch).toBeDefined();
      const conv = convMap(node, g.shape);
      tf.tidy(() => {
        const x = uniformTensor(g.shape, 1);
        const bias = uniformTensor([g.kernel[3]], 2);
        for (const [k, modify] of Object.entries(WEIGHTS)) {
          const w = modify(uniformTensor(g.kernel, 3));
          const y = conv.forward(x, { weight: w, bias });
          expect(patch!.forward(x, { weight: w, bias }).shape, k).toEqual(y.shape);
          expectClose(patch!.forward(x, { weight: w, bias }), values(y), 1e-5);
          const r = uniformTensor(y.shape, 4);
          const back = conv.transpose(r, conv.backWeight(w));
          expectClose(patch!.transpose(r, patch!.backWeight(w)), values(back), 1e-5);
          // CRP's masked relevance: the transpose on two channels alone
          const channels = tf.tensor1d([1, g.kernel[3] - 1], 'int32');
          const sparse = tf.mul(r, tf.sum(tf.oneHot(channels, g.kernel[3]), 0));
          expectClose(
            patch!.transposeChannels!(sparse, patch!.backWeight(w), channels),
            values(conv.transpose(sparse, conv.backWeight(w))),
            1e-5,
          );
        }
      });
      if (node.params.kind === 'conv2d') node.params.kernel.dispose();
    });
  }
});

describe('un-patchify is the transpose of patchify', () => {
  for (const [name, g] of Object.entries(GEOMS)) {
    test(`${name}: <unpatchify(P), X> = <P, patchify(X)>`, () => {
      const [kh, kw] = g.kernel;
      tf.tidy(() => {
        const x = uniformTensor(g.shape, 5);
        const px = patchify(x as tf.Tensor4D, [kh, kw]);
        const p = uniformTensor(px.shape, 6);
        const up = unpatchify(p as tf.Tensor2D, g.shape, [kh, kw]);
        expect(up.shape).toEqual(g.shape);
        const dot = (a: F, b: F) => a.reduce((s, v, i) => s + v * b[i]!, 0);
        const lhs = dot(values(up), values(x));
        const rhs = dot(values(p), values(px));
        // the same products summed in another order (float64 sums of float32 values)
        expect(Math.abs(lhs - rhs)).toBeLessThan(1e-12 * Math.max(1, Math.abs(lhs)));
        // a permutation (plus zeros): every value of P lands once, the rest of X's places are 0
        expect(values(up).filter((v) => v !== 0).length).toBe(values(p).filter((v) => v !== 0).length);
      });
    });
  }
});

describe('which convs take the path', () => {
  const base = GEOMS['vit-like 4x4 patches']!;
  test('kernel = strides without padding: yes, and linearMapOf takes it', () => {
    const node = convNode(base);
    const x = uniformTensor(base.shape, 9);
    const w = uniformTensor(base.kernel, 10);
    // the general path's transpose kernel is 4D [kh, kw, out, in]; the patch path's is 2D [out, kh kw in]
    const back = linearMapOf(node, base.shape)!.backWeight(w)!;
    expect(back.shape).toEqual([6, 4 * 4 * 3]);
    for (const t of [x, w, back]) t.dispose();
    if (node.params.kind === 'conv2d') node.params.kernel.dispose();
  });
  test('overlapping windows, dilation, groups, padding that reaches a window: no', () => {
    const overlapping = convNode(base);
    const cases: [GraphNode, number[]][] = [
      [
        { ...overlapping, params: { ...overlapping.params, strides: [2, 2] } as GraphNode['params'] },
        base.shape,
      ],
      [convNode(base, { dilations: [2, 2] }), base.shape],
      [convNode({ ...base, kernel: [4, 4, 1, 6] }, { groups: 3 }), base.shape],
      // 'same' on 9 rows pads 3 rows into the last window
      [convNode({ ...base, padding: 'same' }), [1, 9, 12, 3]],
      [
        convNode({
          ...base,
          padding: [
            [1, 1],
            [0, 0],
          ],
        }),
        base.shape,
      ],
    ];
    for (const [node, shape] of cases) {
      expect(patchConvMap(node, shape)).toBe(undefined);
      if (node.params.kind === 'conv2d') node.params.kernel.dispose();
    }
    if (overlapping.params.kind === 'conv2d') overlapping.params.kernel.dispose();
  });
});

describe('every rule on a patch embedding through the engine, against float64 loops', () => {
  // 8x12x3 image, 4x4 patches, 5 features: 6 tokens
  const g: ConvGeom = { h: 8, w: 12, cin: 3, kh: 4, kw: 4, cout: 5, sh: 4, sw: 4, padding: 'valid' };
  const L = convLin(g);
  const rng = mulberry32(22);
  const x = uniform(rng, L.nIn);
  const w = uniform(rng, g.kh * g.kw * g.cin * g.cout);
  const b = uniform(rng, g.cout, -0.2, 0.2);
  const r = uniform(rng, L.nOut);
  let model: tfl.Sequential;
  beforeAll(() => {
    model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({
          filters: g.cout,
          kernelSize: 4,
          strides: 4,
          padding: 'valid',
          inputShape: [g.h, g.w, g.cin],
          name: 'conv_proj',
        }),
      ],
    });
    setWeights(model, 'conv_proj', w, b);
  });
  afterAll(() => model.dispose());
  const run = (rule: Rule) => lrpInput(model, x, nameMapComposite({ conv_proj: rule }), r);
  // LXT's linear_epsilon: R / (z + eps), eps unsigned
  const linearEpsilonRef = (eps: number): F => {
    const z = L.forward(x, w, b);
    return mul(
      x,
      L.back(
        w,
        r.map((v, j) => v / (z[j]! + eps)),
      ),
    );
  };
  const cases: [string, Rule, () => F][] = [
    ['LinearEpsilon (attn_lrp, cp_lrp)', rules.linearEpsilon(1e-6), () => linearEpsilonRef(1e-6)],
    // the gradient rule passes the vector-Jacobian product (gradient x input multiplies by x at the input)
    ['Gradient (gradient x input)', rules.gradient(), () => L.back(w, r)],
    ['Epsilon(0.1)', rules.epsilon(0.1), () => epsilonRef(L, x, w, b, r, 0.1)],
    ['ZPlus', rules.zPlus(), () => zPlusRef(L, x, w, b, r)],
    ['AlphaBeta(2, 1)', rules.alphaBeta(2, 1), () => alphaBetaRef(L, x, w, b, r, 2, 1)],
    ['Gamma(0.25)', rules.gamma(0.25), () => gammaRef(L, x, w, b, r, 0.25)],
    ['Flat', rules.flat(), () => flatRef(L, w.length, r)],
    ['WSquare', rules.wSquare(), () => wSquareRef(L, w, b, r)],
  ];
  for (const [name, rule, expected] of cases) {
    test(name, () => {
      expectClose(run(rule), expected(), 1e-5);
    });
  }
});

describe('memory', () => {
  test('forward, transpose and transposeChannels leave no tensor behind', () => {
    const g = GEOMS['rectangular 3x2 patches, leftovers']!;
    const node = convNode(g);
    const map = patchConvMap(node, g.shape)!;
    const x = uniformTensor(g.shape, 7);
    const w = uniformTensor(g.kernel, 8);
    const channels = tf.tensor1d([0, 2], 'int32');
    const before = tf.memory().numTensors;
    const y = map.forward(x, { weight: w, bias: null });
    const back = map.backWeight(w)!;
    const t = map.transpose(y, back);
    const s = map.transposeChannels!(y, back, channels);
    const p = patchify(x as tf.Tensor4D, [3, 2]);
    const u = unpatchify(p, g.shape, [3, 2]);
    expect(tf.memory().numTensors).toBe(before + 6);
    for (const z of [y, back, t, s, p, u, x, w, channels]) z.dispose();
    if (node.params.kind === 'conv2d') node.params.kernel.dispose();
  });
});
