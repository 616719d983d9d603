/**
 * resetParameters at fan_in 0 (a kernel without elements): PyTorch 1.13's `reset_parameters()` gives nn.Linear a
 * zero bias (`bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0`) and leaves a convolution's bias as it was
 * (`if fan_in != 0`); 1/sqrt(0) made the bias +-Infinity. Hand-computed cases on both backends, and torch's own
 * outcome from vendor/reference/evaluation/reset_parameters_golden.json (scripts/golden/make-reset-parameters-golden.py).
 */
import { readFileSync } from 'node:fs';
import { referencePath } from '@crp/testing/reference';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { resetParameters } from '../src/index.js';
import { mulberry32, useBackend } from './helpers.js';

interface GoldenCase {
  torch: string;
  tfClass: 'Dense' | 'Conv2D' | 'Conv1D';
  kernelShape: number[];
  fanIn: number;
  biasBefore: number[];
  drawsConsumed: number;
  biasAfter?: number[];
  biasAfterSignBits?: boolean[];
  bound?: number;
}

const golden = JSON.parse(
  readFileSync(referencePath('evaluation', 'reset_parameters_golden.json'), 'utf8'),
) as { format: string; seed: number; cases: GoldenCase[] };

/** A one-layer model of the TF.js counterpart of a golden case, its bias set to `biasBefore`. */
function layerOf(c: GoldenCase): { model: tfl.LayersModel; layer: tfl.layers.Layer } {
  const units = c.kernelShape.at(-1)!;
  const layer =
    c.tfClass === 'Dense'
      ? tfl.layers.dense({ inputShape: [c.kernelShape[0]!], units })
      : c.tfClass === 'Conv2D'
        ? tfl.layers.conv2d({
            inputShape: [5, 5, c.kernelShape[2]!],
            filters: units,
            kernelSize: c.kernelShape.slice(0, 2),
          })
        : tfl.layers.conv1d({
            inputShape: [5, c.kernelShape[1]!],
            filters: units,
            kernelSize: c.kernelShape[0]!,
          });
  const model = tfl.sequential({ layers: [layer] });
  const [kernel] = layer.getWeights();
  expect(kernel!.shape).toEqual(c.kernelShape);
  layer.setWeights([kernel!, tf.tensor1d(c.biasBefore)]);
  return { model, layer };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`resetParameters at fan_in 0 (${backend})`, () => {
    useBackend(backend);

    it('gives a Dense layer a zero bias (+0, not -0) and a convolution its bias as it was, never Infinity', () => {
      expect(tf.getBackend()).toBe(backend);
      const dense = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [0], units: 3 })] });
      dense.layers[0]!.setWeights([tf.zeros([0, 3]), tf.tensor1d([0.5, -1.25, 2])]);
      const conv = tfl.sequential({
        layers: [tfl.layers.conv2d({ inputShape: [4, 4, 0], filters: 2, kernelSize: 3 })],
      });
      conv.layers[0]!.setWeights([tf.zeros([3, 3, 0, 2]), tf.tensor1d([-3, 0.25])]);
      const before = tf.memory().numTensors;
      const [dk, db] = resetParameters(dense.layers[0]!, 42);
      expect(dk!.shape).toEqual([0, 3]);
      expect(Array.from(db!.dataSync()).map((v) => Object.is(v, 0))).toEqual([true, true, true]);
      const [ck, cb] = resetParameters(conv.layers[0]!, 42);
      expect(ck!.shape).toEqual([3, 3, 0, 2]);
      expect(Array.from(cb!.dataSync())).toEqual([-3, 0.25]);
      // the metric disposes what resetParameters returns: the layer keeps its own bias
      tf.dispose([dk!, db!, ck!, cb!]);
      expect(Array.from(conv.layers[0]!.getWeights()[1]!.dataSync())).toEqual([-3, 0.25]);
      expect(tf.memory().numTensors).toBe(before);
      dense.dispose();
      conv.dispose();
    });

    it("matches torch 1.13's reset_parameters() case by case (the golden file)", () => {
      expect(golden.format).toBe('crp-golden-reset-parameters/1');
      expect(golden.cases.filter((c) => c.fanIn === 0).length).toBeGreaterThanOrEqual(3);
      for (const c of golden.cases) {
        const { model, layer } = layerOf(c);
        const fresh = resetParameters(layer, golden.seed - 1);
        const bias = Array.from(fresh[1]!.dataSync());
        if (c.fanIn === 0) {
          // torch's bias here does not depend on its generator: equal bit for bit, the sign of zero too
          expect(bias, c.torch).toEqual(c.biasAfter);
          expect(
            bias.map((v) => Object.is(v, -0) || v < 0),
            c.torch,
          ).toEqual(c.biasAfterSignBits);
          // torch drew a value per bias entry for nn.Linear (in +-0), none for a convolution; the draws of a
          // layer end with its bias and the next layer restarts the generator, so nothing else depends on it
          expect(c.drawsConsumed, c.torch).toBe(c.tfClass === 'Dense' ? c.biasBefore.length : 0);
        } else {
          // the control: one draw a value, kernel first, then bias, in +-1/sqrt(fan_in): as torch counts them
          const kernelSize = c.kernelShape.reduce((a, b) => a * b, 1);
          expect(c.drawsConsumed, c.torch).toBe(kernelSize + c.biasBefore.length);
          const next = mulberry32(golden.seed);
          for (let i = 0; i < kernelSize; i++) next();
          const expected = c.biasBefore.map(() => Math.fround((2 * next() - 1) * c.bound!));
          expect(bias, c.torch).toEqual(expected);
        }
        tf.dispose(fresh);
        model.dispose();
      }
    });
  });
}
