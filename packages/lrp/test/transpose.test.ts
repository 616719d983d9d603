/**
 * The transpose maps every rule is built from: `linearMapOf(node, shape).transpose(g, backWeight(W))` must be
 * the vector-Jacobian product of the layer's forward map, here computed by TF.js autodiff (tf.grad) on the
 * cpu backend, and `forward` must be the layer itself.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, test } from 'vitest';
import type { GraphNode, NodeParams } from '../src/index.js';
import { linearMapOf } from '../src/internal.js';
import { DENSE_LEFT_ROWS, releaseTransposedWeight } from '../src/ops/linear.js';
import { expectClose, uniformTensor, useBackend, values } from './helpers.js';

useBackend('cpu');

function node(kind: GraphNode['kind'], params: NodeParams): GraphNode {
  return {
    id: 'n',
    layerName: 'n',
    className: kind,
    kind,
    inputs: [],
    outputShape: [],
    activation: 'linear',
    params,
    index: 0,
  };
}

/**
 * Checks forward against `f` and transpose against tf.grad of x -> sum(f(x) * g), with a random g, for a
 * batch-2 input.
 */
function checkTranspose(
  n: GraphNode,
  inputShape: number[],
  f: (x: tf.Tensor) => tf.Tensor,
  weight: tf.Tensor | null,
  seed: number,
) {
  tf.tidy(() => {
    const x = uniformTensor(inputShape, seed);
    const map = linearMapOf(n, inputShape);
    expect(map).toBeDefined();
    const y = f(x);
    const params = { weight, bias: null };
    expectClose(map!.forward(x, params), values(y), 1e-5);
    const g = uniformTensor(y.shape, seed + 1);
    const vjp = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), g)))(x);
    const back = map!.transpose(g, map!.backWeight(weight));
    expect(back.shape).toEqual(inputShape);
    expectClose(back, values(vjp), 1e-5);
  });
}

type Pad = 'same' | 'valid';

describe('conv2d', () => {
  const cases: [number[], number[], [number, number], Pad][] = [
    // input [h, w, cin], kernel [kh, kw, cin, cout], strides, padding
    [[6, 6, 2], [3, 3, 2, 3], [1, 1], 'same'],
    [[6, 6, 2], [3, 3, 2, 3], [1, 1], 'valid'],
    [[7, 6, 2], [3, 2, 2, 3], [1, 1], 'same'],
    [[7, 6, 1], [2, 3, 1, 2], [1, 1], 'valid'],
    [[7, 7, 2], [3, 3, 2, 2], [2, 2], 'same'],
    [[8, 8, 2], [3, 3, 2, 2], [2, 2], 'same'],
    [[7, 7, 2], [3, 3, 2, 2], [2, 2], 'valid'],
    [[8, 7, 1], [2, 3, 1, 2], [2, 2], 'valid'],
    [[8, 7, 2], [3, 2, 2, 2], [2, 2], 'same'],
    [[6, 7, 2], [4, 4, 2, 1], [2, 2], 'same'],
    [[7, 8, 2], [3, 1, 2, 2], [2, 1], 'same'],
    [[5, 5, 3], [1, 1, 3, 4], [1, 1], 'valid'],
    [[9, 9, 1], [5, 5, 1, 2], [3, 3], 'same'],
    // strided transposes run per output phase: kernels smaller than, equal to and larger than the stride
    [[9, 9, 2], [1, 1, 2, 3], [2, 2], 'valid'],
    [[8, 8, 2], [1, 1, 2, 2], [2, 2], 'same'],
    [[10, 11, 2], [2, 2, 2, 2], [3, 3], 'same'],
    [[11, 9, 2], [7, 7, 2, 2], [2, 2], 'same'],
    [[10, 13, 2], [3, 5, 2, 2], [3, 2], 'valid'],
  ];
  cases.forEach(([inShape, kShape, strides, padding], i) => {
    test(`in ${inShape} kernel ${kShape} strides ${strides} ${padding}`, () => {
      const kernel = uniformTensor(kShape, 1000 + i);
      const n = node('conv2d', { kind: 'conv2d', kernel, bias: null, strides, padding });
      checkTranspose(
        n,
        [2, ...inShape],
        (x) => tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, strides, padding),
        kernel,
        2000 + i,
      );
      kernel.dispose();
    });
  });
});

describe("conv2d with PyTorch's explicit padding", () => {
  // [top, bottom], [left, right]: asymmetric, larger than the stride (the phases' common grid starts past row 0)
  const cases: [number[], number[], [number, number], [[number, number], [number, number]]][] = [
    [
      [9, 8, 2],
      [3, 3, 2, 3],
      [2, 2],
      [
        [1, 1],
        [1, 1],
      ],
    ],
    [
      [11, 10, 2],
      [7, 7, 2, 2],
      [2, 2],
      [
        [3, 3],
        [3, 3],
      ],
    ],
    [
      [9, 9, 2],
      [3, 2, 2, 2],
      [2, 3],
      [
        [2, 0],
        [0, 3],
      ],
    ],
    [
      [10, 7, 1],
      [1, 1, 1, 2],
      [3, 2],
      [
        [4, 1],
        [2, 2],
      ],
    ],
  ];
  cases.forEach(([inShape, kShape, strides, padding], i) => {
    test(`in ${inShape} kernel ${kShape} strides ${strides} pads ${JSON.stringify(padding)}`, () => {
      const kernel = uniformTensor(kShape, 5000 + i);
      const n = node('conv2d', { kind: 'conv2d', kernel, bias: null, strides, padding });
      const pad: [[0, 0], [number, number], [number, number], [0, 0]] = [
        [0, 0],
        padding[0],
        padding[1],
        [0, 0],
      ];
      checkTranspose(
        n,
        [2, ...inShape],
        (x) => tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, strides, pad),
        kernel,
        6000 + i,
      );
      kernel.dispose();
    });
  });
});

describe('depthwiseConv2d', () => {
  const cases: [number[], number[], [number, number], Pad][] = [
    [[6, 6, 2], [3, 3, 2, 2], [1, 1], 'same'],
    [[6, 6, 2], [3, 3, 2, 2], [1, 1], 'valid'],
    [[7, 7, 2], [3, 3, 2, 2], [2, 2], 'same'],
    [[8, 8, 3], [3, 3, 3, 2], [2, 2], 'same'],
    [[7, 6, 2], [2, 3, 2, 2], [2, 2], 'valid'],
    [[6, 7, 1], [3, 2, 1, 1], [1, 1], 'same'],
  ];
  cases.forEach(([inShape, kShape, strides, padding], i) => {
    test(`in ${inShape} kernel ${kShape} strides ${strides} ${padding}`, () => {
      const kernel = uniformTensor(kShape, 3000 + i);
      const n = node('depthwiseConv2d', { kind: 'depthwiseConv2d', kernel, bias: null, strides, padding });
      checkTranspose(
        n,
        [2, ...inShape],
        (x) => tf.depthwiseConv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, strides, padding),
        kernel,
        4000 + i,
      );
      kernel.dispose();
    });
  });
});

/**
 * TF average pooling as a differentiable composition: window sums (a depthwise conv with a ones kernel and
 * the same padding) divided by the number of in-bounds elements of each window. TF.js's own AvgPoolGrad
 * divides by the full window size also at padded borders, i.e. it is not the transpose of its forward for
 * 'same' padding, so it cannot serve as the reference there.
 */
function avgPoolComposed(
  x: tf.Tensor4D,
  pool: [number, number],
  strides: [number, number],
  padding: Pad,
): tf.Tensor {
  const c = x.shape[3];
  const k = tf.ones([pool[0], pool[1], c, 1]) as tf.Tensor4D;
  const sums = tf.depthwiseConv2d(x, k, strides, padding);
  const counts = tf.depthwiseConv2d(tf.ones(x.shape) as tf.Tensor4D, k, strides, padding); // a constant
  return tf.div(sums, counts);
}

describe('avgPool', () => {
  const cases: [number[], [number, number], [number, number], Pad][] = [
    [[4, 4, 2], [2, 2], [2, 2], 'valid'],
    [[5, 5, 2], [2, 2], [2, 2], 'valid'],
    [[5, 6, 1], [3, 3], [1, 1], 'valid'],
    [[6, 5, 2], [2, 3], [2, 1], 'valid'],
    [[5, 5, 2], [2, 2], [2, 2], 'same'],
    [[5, 5, 1], [3, 3], [2, 2], 'same'],
    [[6, 6, 2], [3, 3], [1, 1], 'same'],
    [[7, 6, 1], [3, 2], [2, 2], 'same'],
  ];
  cases.forEach(([inShape, pool, strides, padding], i) => {
    test(`in ${inShape} pool ${pool} strides ${strides} ${padding}`, () => {
      const n = node('avgPool2d', { kind: 'avgPool2d', poolSize: pool, strides, padding });
      // the composition is TF's average pooling
      tf.tidy(() => {
        const x = uniformTensor([2, ...inShape], 5000 + i) as tf.Tensor4D;
        expectClose(
          avgPoolComposed(x, pool, strides, padding),
          values(tf.avgPool(x, pool, strides, padding)),
          1e-5,
        );
      });
      checkTranspose(
        n,
        [2, ...inShape],
        (x) => avgPoolComposed(x as tf.Tensor4D, pool, strides, padding),
        null,
        6000 + i,
      );
      if (padding === 'valid') {
        // where TF.js's gradient is right, it agrees too
        checkTranspose(
          n,
          [2, ...inShape],
          (x) => tf.avgPool(x as tf.Tensor4D, pool, strides, padding),
          null,
          7000 + i,
        );
      }
    });
  });
});

test('globalAvgPool', () => {
  const n = node('globalAvgPool2d', { kind: 'globalAvgPool2d' });
  checkTranspose(n, [2, 3, 5, 4], (x) => tf.mean(x, [1, 2]), null, 8000);
});

describe('dense', () => {
  test('rank-2 input', () => {
    const kernel = uniformTensor([6, 4], 9000);
    const n = node('dense', { kind: 'dense', kernel, bias: null });
    checkTranspose(n, [3, 6], (x) => tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D), kernel, 9001);
    kernel.dispose();
  });
  test('rank-3 input (dense on the last axis)', () => {
    const kernel = uniformTensor([5, 3], 9100);
    const n = node('dense', { kind: 'dense', kernel, bias: null });
    checkTranspose(
      n,
      [2, 4, 5],
      (x) => tf.reshape(tf.matMul(tf.reshape(x, [8, 5]), kernel as tf.Tensor2D), [2, 4, 3]),
      kernel,
      9101,
    );
    kernel.dispose();
  });
});

describe('dense transpose: (W g^T)^T for few rows, g W^T (made once, released with its weight) for many', () => {
  for (const rows of [1, DENSE_LEFT_ROWS, DENSE_LEFT_ROWS + 1, 50]) {
    test(`${rows} rows: the same values as g W^T, bit for bit; W^T kept only for many rows, until released`, () => {
      const kernel = uniformTensor([40, 24], 9200);
      const n = node('dense', { kind: 'dense', kernel, bias: null });
      const map = linearMapOf(n, [rows, 40])!;
      const back = map.backWeight(kernel)!;
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const g = uniformTensor([rows, 24], 9201 + rows) as tf.Tensor2D;
        const want = tf.matMul(g, tf.transpose(kernel) as tf.Tensor2D);
        expect(Array.from(map.transpose(g, back).dataSync())).toEqual(Array.from(want.dataSync()));
        const channels = tf.tensor1d([3, 0, 17, 23], 'int32');
        const wantChannels = tf.matMul(
          tf.gather(g, channels, 1) as tf.Tensor2D,
          tf.gather(tf.transpose(kernel), channels, 0) as tf.Tensor2D,
        );
        expect(Array.from(map.transposeChannels!(g, back, channels).dataSync())).toEqual(
          Array.from(wantChannels.dataSync()),
        );
      });
      // W^T outlives the products' tidy (made once per weight), and only for more than DENSE_LEFT_ROWS rows
      expect(tf.memory().numTensors - before).toBe(rows > DENSE_LEFT_ROWS ? 1 : 0);
      releaseTransposedWeight(back);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([back, kernel]);
    });
  }
});

test('non-linear kinds have no linear map', () => {
  expect(
    linearMapOf(
      node('maxPool2d', { kind: 'maxPool2d', poolSize: [2, 2], strides: [2, 2], padding: 'valid' }),
      [1, 4, 4, 1],
    ),
  ).toBeUndefined();
  expect(linearMapOf(node('activation', { kind: 'activation' }), [1, 4])).toBeUndefined();
});

type AnyPad = Pad | [[number, number], [number, number]];

/**
 * A conv built from plain primitives, independent of the engine's paths (and of TF.js's dilated conv, which has no
 * gradient): the input zero-padded explicitly (TF's 'same': total (out - 1) * s + (k - 1) * d + 1 - in, the
 * smaller half on top); per group, the sum over taps (i, j) of the input shifted by (i * d, j * d) times the tap's
 * [cin, cout] matrix (a 1x1 conv), which is the stride-1 conv; every s-th output kept (a strided conv's outputs
 * are the stride-1 outputs it lands on); the groups concatenated.
 */
function referenceConv(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  strides: [number, number],
  dilations: [number, number],
  padding: AnyPad,
  groups: number,
): tf.Tensor {
  const [, h, w, c] = x.shape;
  const [kh, kw, , out] = kernel.shape;
  const same = (size: number, k: number, s: number, d: number): [number, number] => {
    const total = Math.max((Math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  };
  const pads: [[number, number], [number, number]] =
    padding === 'valid'
      ? [
          [0, 0],
          [0, 0],
        ]
      : padding === 'same'
        ? [same(h, kh, strides[0], dilations[0]), same(w, kw, strides[1], dilations[1])]
        : padding;
  const xp = tf.pad(x, [[0, 0], pads[0], pads[1], [0, 0]]);
  const [cin, cout] = [c / groups, out / groups];
  // the stride-1 output's size; each tap (i, j) reads the padded input shifted by (i * d, j * d)
  const [h1, w1] = [xp.shape[1]! - (kh - 1) * dilations[0], xp.shape[2]! - (kw - 1) * dilations[1]];
  const every = (size: number, step: number) =>
    tf.tensor1d(
      Array.from({ length: Math.ceil(size / step) }, (_, j) => j * step),
      'int32',
    );
  const parts: tf.Tensor[] = [];
  for (let k = 0; k < groups; k++) {
    let y: tf.Tensor | undefined;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const xs = tf.slice(xp, [0, i * dilations[0], j * dilations[1], k * cin], [-1, h1, w1, cin]);
        const tap = tf.slice(kernel, [i, j, 0, k * cout], [1, 1, cin, cout]) as tf.Tensor4D;
        const term = tf.conv2d(xs as tf.Tensor4D, tap, 1, 'valid');
        y = y === undefined ? term : tf.add(y, term);
      }
    }
    // every s-th row and column (a gather: stridedSlice has no gradient in TF.js)
    parts.push(tf.gather(tf.gather(y!, every(h1, strides[0]), 1), every(w1, strides[1]), 2));
  }
  return parts.length === 1 ? parts[0]! : tf.concat(parts, 3);
}

/** The dot-product test of a transpose: <T g, x> = <g, F x> for random x and g (in float64 sums). */
function dotProductTest(n: GraphNode, inputShape: number[], weight: tf.Tensor, seed: number): void {
  tf.tidy(() => {
    const map = linearMapOf(n, inputShape)!;
    const x = uniformTensor(inputShape, seed);
    const params = { weight, bias: null };
    const y = map.forward(x, params);
    const g = uniformTensor(y.shape, seed + 1);
    const back = map.transpose(g, map.backWeight(weight));
    const dot = (a: tf.Tensor, b: tf.Tensor) => {
      const [u, v] = [values(a), values(b)];
      return u.reduce((s, ui, i) => s + ui * v[i]!, 0);
    };
    const [lhs, rhs] = [dot(back, x), dot(g, y)];
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-5 * Math.max(1, Math.abs(rhs)));
  });
}

describe('grouped conv2d (PyTorch groups)', () => {
  // input [h, w, cin], kernel [kh, kw, cin / groups, cout], groups, strides, dilations, padding
  const cases: [number[], number[], number, [number, number], [number, number], AnyPad][] = [
    [[6, 6, 4], [3, 3, 2, 4], 2, [1, 1], [1, 1], 'same'],
    [[7, 6, 6], [3, 2, 2, 6], 3, [1, 1], [1, 1], 'valid'],
    [[9, 8, 4], [3, 3, 1, 8], 4, [2, 2], [1, 1], 'same'],
    [
      [9, 9, 4],
      [3, 3, 2, 4],
      2,
      [2, 2],
      [1, 1],
      [
        [1, 1],
        [1, 1],
      ],
    ],
    [[10, 11, 6], [1, 1, 3, 4], 2, [3, 2], [1, 1], 'valid'],
    [[9, 9, 4], [3, 3, 2, 6], 2, [1, 1], [2, 2], 'same'],
    [
      [11, 10, 4],
      [3, 3, 2, 4],
      2,
      [2, 2],
      [2, 1],
      [
        [2, 2],
        [1, 0],
      ],
    ],
  ];
  cases.forEach(([inShape, kShape, groups, strides, dilations, padding], i) => {
    test(`in ${inShape} kernel ${kShape} groups ${groups} strides ${strides} dilations ${dilations} ${JSON.stringify(padding)}`, () => {
      const kernel = uniformTensor(kShape, 11000 + i) as tf.Tensor4D;
      const n = node('conv2d', { kind: 'conv2d', kernel, bias: null, strides, padding, groups, dilations });
      const f = (x: tf.Tensor) =>
        referenceConv(x as tf.Tensor4D, kernel, strides, dilations, padding, groups);
      checkTranspose(n, [2, ...inShape], f, kernel, 12000 + i);
      dotProductTest(n, [2, ...inShape], kernel, 13000 + i);
      kernel.dispose();
    });
  });
});

describe('strided dilated conv2d (TF.js refuses both at once: the kernel spread by zeros)', () => {
  const cases: [number[], number[], [number, number], [number, number], AnyPad][] = [
    [[9, 9, 2], [3, 3, 2, 3], [2, 2], [2, 2], 'valid'],
    [[10, 10, 2], [3, 3, 2, 2], [2, 2], [2, 2], 'same'],
    [[11, 9, 1], [3, 2, 1, 2], [2, 3], [3, 2], 'same'],
    [
      [12, 12, 2],
      [3, 3, 2, 2],
      [3, 3],
      [2, 2],
      [
        [2, 2],
        [2, 2],
      ],
    ],
    [
      [13, 10, 2],
      [2, 3, 2, 2],
      [2, 2],
      [3, 1],
      [
        [3, 1],
        [0, 2],
      ],
    ],
  ];
  cases.forEach(([inShape, kShape, strides, dilations, padding], i) => {
    test(`in ${inShape} kernel ${kShape} strides ${strides} dilations ${dilations} ${JSON.stringify(padding)}`, () => {
      const kernel = uniformTensor(kShape, 14000 + i) as tf.Tensor4D;
      const n = node('conv2d', { kind: 'conv2d', kernel, bias: null, strides, padding, dilations });
      const f = (x: tf.Tensor) => referenceConv(x as tf.Tensor4D, kernel, strides, dilations, padding, 1);
      checkTranspose(n, [2, ...inShape], f, kernel, 15000 + i);
      dotProductTest(n, [2, ...inShape], kernel, 16000 + i);
      kernel.dispose();
    });
  });
});
