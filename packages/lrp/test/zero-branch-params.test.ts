/**
 * A rule branch whose input is zero by construction (the negative part of a ReLU's output) and whose parameters
 * have no bias does not make its parameters: ZPlus's and AlphaBeta's W- after a ReLU is never computed, the
 * relevance is that of the parameters made (compared with the same rule whose branch modifier cannot tell), and
 * no tensor is left.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, test } from 'vitest';
import { Attributor, basicRule, disposeResult, layerMapComposite, paramModifiers } from '../src/index.js';
import { mulberry32, uniform, useBackend } from './helpers.js';

useBackend('cpu');

function model(): tfl.LayersModel {
  const m = tfl.sequential();
  m.add(
    tfl.layers.conv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, padding: 'same', name: 'conv1' }),
  );
  m.add(tfl.layers.reLU({ name: 'relu' }));
  m.add(tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv2', activation: 'relu' }));
  m.add(tfl.layers.flatten({ name: 'flat' }));
  m.add(tfl.layers.dense({ units: 2, name: 'out' }));
  return m;
}

/** zennit's ZPlus; `hidden` wraps W- so that the engine cannot see it has no bias. */
function zPlus(hidden: boolean) {
  const negative = paramModifiers.negative(false);
  return basicRule({
    name: hidden ? 'ZPlusHidden' : 'ZPlusShown',
    branches: [
      { input: 'positive', params: paramModifiers.positive() },
      {
        input: 'negative',
        params: hidden ? paramModifiers.custom((p) => negative.modify(p), 'negative-hidden') : negative,
      },
    ],
    gradientMapper: (r, [a, b]) => {
      const g = tf.div(r, tf.add(tf.add(a!, b!), 1e-6));
      return [g, g];
    },
    reducer: [{ branch: 0 }, { branch: 1 }],
  });
}

test('W- of a branch whose input is zero by construction is not made; the relevance does not change', async () => {
  const m = model();
  const x = tf.tensor4d(Float32Array.from(uniform(mulberry32(8), 72)), [1, 6, 6, 2]);
  const run = async (hidden: boolean) => {
    const lrp = new Attributor(m, {
      canonizers: [],
      composite: layerMapComposite([[(n) => n.kind === 'conv2d', zPlus(hidden)]], 'test'),
    });
    const before = tf.memory().numTensors;
    let relevance: Float32Array = new Float32Array();
    const profile = await tf.profile(() => {
      const result = lrp.attribute(x, { target: 1 });
      relevance = result.relevance.dataSync() as Float32Array;
      disposeResult(result);
    });
    lrp.dispose();
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
    // the kernel's negative part: a Minimum on a [3, 3, in, out] kernel
    const minima = profile.kernels.filter(
      (k) => k.name === 'Minimum' && k.inputShapes[0]![0] === 3 && k.inputShapes[0]![1] === 3,
    );
    return {
      relevance: Array.from(relevance),
      minima: minima.map((k) => k.inputShapes[0]!.join('x')).sort(),
    };
  };
  const shown = await run(false);
  const hidden = await run(true);
  // conv1's input has negative values: its W- is made either way; conv2 follows a ReLU
  expect(shown.minima).toEqual(['3x3x2x3']);
  expect(hidden.minima).toEqual(['3x3x2x3', '3x3x3x4']);
  expect(shown.relevance.some((v) => v !== 0)).toBe(true);
  expect(shown.relevance).toEqual(hidden.relevance);
  x.dispose();
  m.dispose();
});
