/**
 * A rule branch whose input is zero by construction (the negative part of a ReLU's output) and whose parameters
 * have no bias does not make its parameters: ZPlus's and AlphaBeta's W- after a ReLU is never computed, the
 * relevance is that of the parameters made (compared with the same rule whose branch modifier cannot tell), and
 * no tensor is left. A branch with a term that does not multiply by its input (timesInput false) is still
 * transposed, so its parameters are made.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  Attributor,
  basicRule,
  disposeResult,
  layerMapComposite,
  paramModifiers,
  type ReducerTerm,
} from '../src/index.js';
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

/** zennit's ZPlus; `hidden` wraps W- so that the engine cannot see it has no bias. `reducer` replaces the
 * sum of x+ W+ and x- W- terms. */
function zPlus(hidden: boolean, reducer: ReducerTerm[] = [{ branch: 0 }, { branch: 1 }]) {
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
    reducer,
  });
}

let m: tfl.LayersModel;
let x: tf.Tensor4D;
beforeAll(() => {
  m = model();
  x = tf.tensor4d(Float32Array.from(uniform(mulberry32(8), 72)), [1, 6, 6, 2]);
});

/** The relevance of ZPlus (shown or hidden) on every conv, and the shapes of the kernels whose W- was made. */
async function run(hidden: boolean, reducer?: ReducerTerm[]) {
  const lrp = new Attributor(m, {
    canonizers: [],
    composite: layerMapComposite([[(n) => n.kind === 'conv2d', zPlus(hidden, reducer)]], 'test'),
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
}

test('W- of a branch whose input is zero by construction is not made; the relevance does not change', async () => {
  const shown = await run(false);
  const hidden = await run(true);
  // conv1's input has negative values: its W- is made either way; conv2 follows a ReLU
  expect(shown.minima).toEqual(['3x3x2x3']);
  expect(hidden.minima).toEqual(['3x3x2x3', '3x3x3x4']);
  expect(shown.relevance.some((v) => v !== 0)).toBe(true);
  expect(shown.relevance).toEqual(hidden.relevance);
});

test('a branch with a term that does not multiply by its zero input is transposed, so its W- is made', async () => {
  // x+ back(W+, g) + 0.5 back(W-, g): the second term does not vanish with x-
  const reducer: ReducerTerm[] = [{ branch: 0 }, { branch: 1, timesInput: false, coefficient: 0.5 }];
  const shown = await run(false, reducer);
  const hidden = await run(true, reducer);
  expect(shown.minima).toEqual(['3x3x2x3', '3x3x3x4']);
  expect(shown.relevance).toEqual(hidden.relevance);
  // the term counts: without it the relevance is ZPlus's
  expect(shown.relevance).not.toEqual((await run(false)).relevance);
});

afterAll(() => {
  x.dispose();
  m.dispose();
});
