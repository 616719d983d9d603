/**
 * Dilated convolutions (ConvParams.dilations, PyTorch's and ONNX's dilation, TF's dilationRate): the engine runs
 * them as a conv with the kernel spread out by zeros. Checked: the forward values equal TF.js's own dilated conv,
 * the transpose passes the dot-product test, and nothing leaks. (zennit's relevances on a dilated model:
 * vendor/reference/onnx `dilated_net`, in @crp/models' ONNX tests and `pnpm conformance --kind onnx-lrp`.)
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { dilateKernel, linearMapOf } from '../src/ops/linear.js';
import { mulberry32, uniform, useBackend } from './helpers.js';

useBackend('cpu');

const u = (seed: number, n: number) => Float32Array.from(uniform(mulberry32(seed), n));

function convNode(kernel: tf.Tensor4D, padding: 'same' | 'valid' | [[number, number], [number, number]]) {
  return {
    id: 'c',
    layerName: 'c',
    className: 'Conv2D',
    kind: 'conv2d' as const,
    inputs: ['x'],
    outputShape: [],
    activation: 'linear' as const,
    index: 1,
    params: {
      kind: 'conv2d' as const,
      kernel,
      bias: null,
      strides: [1, 1] as [number, number],
      dilations: [2, 3] as [number, number],
      padding,
    },
  };
}

describe('dilated convolution', () => {
  test('dilateKernel puts the taps d apart with zeros between them', () => {
    const w = tf.tensor4d([1, 2, 3, 4], [2, 2, 1, 1]);
    const d = dilateKernel(w, [2, 3]);
    expect(d.shape).toEqual([3, 4, 1, 1]);
    expect(Array.from(d.dataSync())).toEqual([1, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 4]);
    tf.dispose([w, d]);
  });

  for (const padding of [
    'same',
    'valid',
    [
      [2, 1],
      [3, 0],
    ],
  ] as const) {
    test(`padding ${JSON.stringify(padding)}: forward equals tf.conv2d with dilations, transpose passes the dot-product test`, () => {
      const before = tf.memory().numTensors;
      const kernel = tf.tensor4d(u(3, 3 * 2 * 2 * 4), [3, 2, 2, 4]);
      const x = tf.tensor4d(u(4, 9 * 8 * 2), [1, 9, 8, 2]);
      const map = linearMapOf(convNode(kernel, padding as never), x.shape)!;
      const y = map.forward(x, { weight: kernel, bias: null });
      const pads = Array.isArray(padding) ? [[0, 0], ...padding, [0, 0]] : padding;
      const native = tf.conv2d(x, kernel, 1, pads as never, 'NHWC', [2, 3]);
      expect(y.shape).toEqual(native.shape);
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(y, native))).dataSync()[0]!);
      expect(diff).toBeLessThan(1e-6);
      const g = tf.tensor4d(u(5, y.size), y.shape as [number, number, number, number]);
      const back = map.backWeight(kernel);
      const t = map.transpose(g, back);
      expect(t.shape).toEqual(x.shape);
      const dot = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.sum(tf.mul(a, b)).dataSync()[0]!);
      const lhs = dot(y, g);
      const rhs = dot(x, t);
      expect(Math.abs(lhs - rhs)).toBeLessThan(1e-4 * Math.max(1, Math.abs(lhs)));
      tf.dispose([kernel, x, y, native, g, back!, t]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});
