import { CrpError } from '@crp/common';
/**
 * PyTorch's adaptive average pool as a graph node: windows as torch computes them, forward and transpose against
 * a plain float64 loop, and the Norm rule through a model that has such a layer (known to the engine by its class
 * name `AdaptiveAveragePooling2D` and its `outputSize` config, as @crp/models defines it). The comparison with
 * torch and zennit on a whole VGG lives in @crp/models (test/torch-pth.test.ts), which has the layer class.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { Attributor, defaultRuleFor, type GraphNode, graphFromLayersModel } from '../src/index.js';
import {
  adaptiveAvgPool2d,
  adaptiveAvgPool2dTranspose,
  adaptivePoolWindows,
  linearMapOf,
} from '../src/internal.js';
import { expectClose, mulberry32, uniform, useBackend, values } from './helpers.js';

useBackend('cpu');

/** Windows written out by hand from start = floor(i*n/out), end = ceil((i+1)*n/out). */
test('windows are PyTorch’s: overlapping, repeating, and plain', () => {
  expect(adaptivePoolWindows(8, 7)).toEqual([
    [0, 2],
    [1, 3],
    [2, 4],
    [3, 5],
    [4, 6],
    [5, 7],
    [6, 8],
  ]);
  expect(adaptivePoolWindows(5, 7)).toEqual([
    [0, 1],
    [0, 2],
    [1, 3],
    [2, 3],
    [2, 4],
    [3, 5],
    [4, 5],
  ]);
  expect(adaptivePoolWindows(14, 7)).toEqual(Array.from({ length: 7 }, (_, i) => [2 * i, 2 * i + 2]));
  expect(adaptivePoolWindows(1, 3)).toEqual([
    [0, 1],
    [0, 1],
    [0, 1],
  ]);
  expect(() => adaptivePoolWindows(0, 7)).toThrow(CrpError);
});

/** The pool as a float64 loop over windows: [b, h, w, c] -> [b, oh, ow, c]. */
function naivePool(x: Float64Array, [b, h, w, c]: number[], [oh, ow]: [number, number]): Float64Array {
  const rows = adaptivePoolWindows(h!, oh);
  const cols = adaptivePoolWindows(w!, ow);
  const out = new Float64Array(b! * oh * ow * c!);
  for (let n = 0; n < b!; n++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let k = 0; k < c!; k++) {
          const [r0, r1] = rows[i]!;
          const [c0, c1] = cols[j]!;
          let s = 0;
          for (let r = r0; r < r1; r++)
            for (let q = c0; q < c1; q++) s += x[((n * h! + r) * w! + q) * c! + k]!;
          out[((n * oh + i) * ow + j) * c! + k] = s / ((r1 - r0) * (c1 - c0));
        }
  return out;
}

function node(outputSize: [number, number]): GraphNode {
  return {
    id: 'avgpool',
    layerName: 'avgpool',
    className: 'AdaptiveAveragePooling2D',
    kind: 'adaptiveAvgPool2d',
    inputs: [],
    outputShape: [],
    activation: 'linear',
    params: { kind: 'adaptiveAvgPool2d', outputSize },
    index: 0,
  };
}

describe('forward and transpose', () => {
  const cases: [number[], [number, number]][] = [
    [
      [2, 8, 8, 3],
      [7, 7],
    ],
    [
      [1, 12, 9, 2],
      [7, 7],
    ],
    [
      [2, 5, 3, 2],
      [7, 7],
    ],
    [
      [1, 14, 14, 1],
      [7, 7],
    ],
    [
      [1, 7, 7, 2],
      [7, 7],
    ],
    [
      [2, 9, 13, 2],
      [4, 5],
    ],
    [
      [1, 6, 4, 3],
      [1, 1],
    ],
  ];
  cases.forEach(([shape, out], i) => {
    test(`${shape.slice(1, 3).join('x')} -> ${out.join('x')}`, () => {
      const before = tf.memory().numTensors;
      const rng = mulberry32(300 + i);
      const xs = uniform(
        rng,
        shape.reduce((a, b) => a * b, 1),
      );
      const x = tf.tensor(Array.from(xs), shape);
      const y = adaptiveAvgPool2d(x, out);
      expect(y.shape).toEqual([shape[0], ...out, shape[3]]);
      expectClose(y, naivePool(xs, shape, out), 1e-6);
      // transpose: <A x, g> = <x, A^T g> for a random g, and it is the gradient of the pool
      const g = tf.tensor(Array.from(uniform(rng, y.size)), y.shape);
      const back = adaptiveAvgPool2dTranspose(g, [shape[1]!, shape[2]!]);
      expect(back.shape).toEqual(shape);
      const [lhs, rhs] = tf.tidy(() => [tf.sum(tf.mul(y, g)), tf.sum(tf.mul(x, back))]);
      expect(Math.abs(values(lhs!)[0]! - values(rhs!)[0]!)).toBeLessThan(1e-4);
      const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(adaptiveAvgPool2d(a, out), g)))(x);
      expectClose(back, values(grad), 1e-6);
      // the graph node's linear map is the same pair
      const map = linearMapOf(node(out), shape)!;
      tf.tidy(() => {
        expectClose(map.forward(x, { weight: null, bias: null }), values(y), 0);
        expectClose(map.transpose(g, map.backWeight(null)), values(back), 0);
      });
      tf.dispose([x, y, g, back, lhs!, rhs!, grad]);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});

/** A stand-in for @crp/models' layer: only the class name and the config matter to the engine. */
class AdaptiveAveragePooling2D extends tfl.layers.Layer {
  static className = 'AdaptiveAveragePooling2D';
  constructor(readonly outputSize: [number, number]) {
    super({ name: 'avgpool' });
  }
  override computeOutputShape(s: tfl.Shape): tfl.Shape {
    return [s[0]!, ...this.outputSize, s[3]!];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return adaptiveAvgPool2d(Array.isArray(inputs) ? inputs[0]! : inputs, this.outputSize);
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), outputSize: this.outputSize };
  }
}

test('a model with the layer: node kind, Norm by default, and R_in = x * A^T (R / stab(A x))', () => {
  const model = tfl.sequential({
    layers: [
      tfl.layers.inputLayer({ inputShape: [5, 5, 2], name: 'in' }),
      new AdaptiveAveragePooling2D([3, 3]),
      tfl.layers.flatten({ name: 'flatten' }),
    ],
  });
  const graph = graphFromLayersModel(model);
  const pool = graph.node('avgpool');
  expect(pool.kind).toBe('adaptiveAvgPool2d');
  expect(pool.params).toEqual({ kind: 'adaptiveAvgPool2d', outputSize: [3, 3] });
  expect(defaultRuleFor(pool, graph).name).toBe('Norm');

  const rng = mulberry32(41);
  const xs = uniform(rng, 50, 0.1, 1); // positive: the denominators are far from 0
  const rs = uniform(rng, 18);
  const lrp = new Attributor(model, { composite: 'epsilon_plus' });
  const x = tf.tensor4d(Array.from(xs), [1, 5, 5, 2]);
  const r0 = tf.tensor2d(Array.from(rs), [1, 18]);
  const result = lrp.attribute(x, { initRelevance: r0 });
  // float64 reference: z = A x; s = R / (z + 1e-6); R_in = x * A^T s
  const z = naivePool(xs, [1, 5, 5, 2], [3, 3]);
  const s = z.map((v, i) => rs[i]! / (v + 1e-6));
  const rows = adaptivePoolWindows(5, 3);
  const expected = new Float64Array(50);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      for (let k = 0; k < 2; k++) {
        const [r0_, r1] = rows[i]!;
        const [c0, c1] = rows[j]!;
        const share = s[(i * 3 + j) * 2 + k]! / ((r1 - r0_) * (c1 - c0));
        for (let r = r0_; r < r1; r++)
          for (let q = c0; q < c1; q++) expected[(r * 5 + q) * 2 + k]! += share * xs[(r * 5 + q) * 2 + k]!;
      }
  expectClose(result.relevance, expected, 1e-5);
  tf.dispose([x, r0, result.relevance, result.prediction]);
  lrp.dispose();
  model.dispose();
});
