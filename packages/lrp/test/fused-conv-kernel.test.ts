/**
 * A conv with a bias runs TF.js's FusedConv2D kernel (through tf.fused.conv2d, whose custom gradient tf.grad needs:
 * TF.js registers none for the kernel): the same values, bit for bit, as the op with the same arguments, for every
 * attribute the engine gives it (strides, dilations, 'same'/'valid' and explicit asymmetric pads from a merged
 * ZeroPadding2D), on cpu and wasm; the values of a plain conv plus bias up to rounding; and tf.grad through it.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { graphFromLayersModel, mergeZeroPadding } from '../src/index.js';
import { linearMapOf } from '../src/internal.js';
import { convPad } from '../src/ops/strided.js';
import { mulberry32, randomizeWeights, uniform, useBackend, values } from './helpers.js';

interface Case {
  name: string;
  pad?: [[number, number], [number, number]];
  padding: 'same' | 'valid';
  strides: number;
  dilation: number;
}

const cases: Case[] = [
  { name: 'same, stride 1', padding: 'same', strides: 1, dilation: 1 },
  { name: 'valid, stride 2', padding: 'valid', strides: 2, dilation: 1 },
  { name: 'same, stride 2', padding: 'same', strides: 2, dilation: 1 },
  { name: 'dilation 2', padding: 'same', strides: 1, dilation: 2 },
  {
    name: 'explicit asymmetric pads',
    pad: [
      [1, 0],
      [0, 2],
    ],
    padding: 'valid',
    strides: 1,
    dilation: 1,
  },
  {
    name: 'explicit pads, stride 2',
    pad: [
      [2, 1],
      [1, 0],
    ],
    padding: 'valid',
    strides: 2,
    dilation: 1,
  },
];

function convModel(c: Case): tfl.LayersModel {
  const x = tfl.input({ shape: [7, 8, 3], name: 'x' });
  let h = x;
  if (c.pad) h = tfl.layers.zeroPadding2d({ padding: c.pad, name: 'pad' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers
    .conv2d({
      filters: 4,
      kernelSize: 3,
      strides: c.strides,
      dilationRate: c.dilation,
      padding: c.padding,
      name: 'conv',
    })
    .apply(h) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: x, outputs: h });
  randomizeWeights(m, 3, 0.7);
  return m;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`fused-bias conv (${backend})`, () => {
    useBackend(backend);
    for (const c of cases) {
      test(c.name, async () => {
        expect(tf.getBackend()).toBe(backend);
        const m = convModel(c);
        const graph = c.pad ? mergeZeroPadding().apply(graphFromLayersModel(m)) : graphFromLayersModel(m);
        const node = graph.node('conv');
        const p = node.params;
        if (p.kind !== 'conv2d' || p.bias === null) throw new Error('expected a conv with a bias');
        if (c.pad) expect(typeof p.padding).not.toBe('string');
        const x = tf.tensor4d(Array.from(uniform(mulberry32(7), 7 * 8 * 3)), [1, 7, 8, 3]);
        const map = linearMapOf(node, x.shape)!;
        const before = tf.memory().numTensors;
        let ours = map.forward(x, { weight: p.kernel, bias: p.bias });
        expect(tf.memory().numTensors).toBe(before + 1);
        ours.dispose();
        // the kernel itself ran (no fallback to a conv and an add)
        const profile = await tf.profile(() => {
          ours = map.forward(x, { weight: p.kernel, bias: p.bias });
          return ours;
        });
        expect(profile.kernelNames).toContain('FusedConv2D');
        expect(profile.kernelNames).not.toContain('Add');
        const pad = convPad(p.padding);
        const dilations: [number, number] = [c.dilation, c.dilation];
        const op = tf.fused.conv2d({
          x,
          filter: p.kernel as tf.Tensor4D,
          strides: p.strides,
          pad,
          dilations,
          bias: p.bias,
        });
        const plain = tf.add(
          tf.conv2d(x, p.kernel as tf.Tensor4D, p.strides, pad, 'NHWC', dilations),
          p.bias,
        );
        const keras = m.predict(x) as tf.Tensor;
        expect(ours.shape).toEqual(keras.shape);
        expect(Array.from(ours.dataSync())).toEqual(Array.from(op.dataSync()));
        const [a, b, k] = [values(ours), values(plain), values(keras)];
        for (let i = 0; i < b.length; i++) {
          expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5);
          expect(Math.abs(a[i]! - k[i]!)).toBeLessThan(1e-5);
        }
        // tf.grad through the forward map (pruning's Taylor criterion differentiates the engine's forward pass), where
        // tf.fused.conv2d has a gradient: not for dilations, not on wasm (no Conv2DBackpropFilter kernel)
        if (backend === 'wasm' || c.dilation > 1) {
          tf.dispose([ours, op, plain, keras, x]);
          m.dispose();
          return;
        }
        const grad = tf.grad((input: tf.Tensor) =>
          tf.sum(map.forward(input, { weight: p.kernel, bias: p.bias })),
        );
        const plainGrad = tf.grad((input: tf.Tensor) =>
          tf.sum(tf.conv2d(input as tf.Tensor4D, p.kernel as tf.Tensor4D, p.strides, pad, 'NHWC', dilations)),
        );
        const [g, pg] = [grad(x), plainGrad(x)];
        const [gv, pgv] = [values(g), values(pg)];
        expect(gv.length).toBe(pgv.length);
        for (let i = 0; i < gv.length; i++) expect(Math.abs(gv[i]! - pgv[i]!)).toBeLessThan(1e-5);
        tf.dispose([ours, op, plain, keras, x, g, pg]);
        m.dispose();
      });
    }
  });
}
