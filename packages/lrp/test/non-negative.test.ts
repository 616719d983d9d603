/**
 * ForwardPass.isNonNegative: which layer outputs are known to be >= 0 without reading them (a ReLU's, and the
 * layers that only move or pad such values: max pooling, zero padding, identities such as Dropout), and that any
 * other output is read.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, test } from 'vitest';
import { Attributor } from '../src/index.js';
import { mulberry32, uniform, useBackend } from './helpers.js';

useBackend('cpu');

function model(): tfl.LayersModel {
  const input = tfl.input({ shape: [6, 6, 2] });
  const conv = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'conv' }).apply(input);
  const relu = tfl.layers.reLU({ name: 'relu' }).apply(conv);
  const pad = tfl.layers.zeroPadding2d({ padding: 1, name: 'pad' }).apply(relu);
  const pool = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(pad);
  const drop = tfl.layers.dropout({ rate: 0.5, name: 'drop' }).apply(pool);
  // the same padding on a linear output, which has negative values
  const padLinear = tfl.layers.zeroPadding2d({ padding: 1, name: 'padLinear' }).apply(conv);
  const poolLinear = tfl.layers.maxPooling2d({ poolSize: 2, name: 'poolLinear' }).apply(padLinear);
  const joined = tfl.layers.add({ name: 'add' }).apply([drop, poolLinear] as tfl.SymbolicTensor[]);
  const flat = tfl.layers.flatten({ name: 'flat' }).apply(joined);
  const out = tfl.layers.dense({ units: 2, name: 'out' }).apply(flat) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

test('ReLU outputs and what pads, pools or passes them on are non-negative by construction; other outputs are read', async () => {
  const m = model();
  const x = tf.tensor4d(Float32Array.from(uniform(mulberry32(3), 72)), [1, 6, 6, 2]);
  const lrp = new Attributor(m, { canonizers: [] });
  const pass = lrp.forward(x);
  const known = ['relu', 'pad', 'pool', 'drop'];
  let answers: boolean[] = [];
  // no kernel runs for them: nothing is reduced or read back
  const quiet = await tf.profile(() => {
    answers = known.map((id) => pass.isNonNegative(id));
  });
  expect(answers).toEqual([true, true, true, true]);
  expect(quiet.kernels.map((k) => k.name)).toEqual([]);
  for (const id of known) expect(Math.min(...pass.output(id).dataSync())).toBeGreaterThanOrEqual(0);
  // the linear conv's output has negative values here, and so its padded and pooled forms: each is read
  expect(
    pass
      .output('conv')
      .dataSync()
      .some((v) => v < 0),
  ).toBe(true);
  const read = await tf.profile(() => {
    answers = ['conv', 'padLinear'].map((id) => pass.isNonNegative(id));
  });
  expect(answers).toEqual([false, false]);
  expect(read.kernels.filter((k) => k.name === 'Min')).toHaveLength(2);
  // a max pool of a map that is not known to be non-negative is read, and answers what its values say
  let pooled = false;
  const readPool = await tf.profile(() => {
    pooled = pass.isNonNegative('poolLinear');
  });
  expect(readPool.kernels.filter((k) => k.name === 'Min')).toHaveLength(1);
  expect(pooled).toBe(Math.min(...pass.output('poolLinear').dataSync()) >= 0);
  pass.dispose();
  lrp.dispose();
  x.dispose();
  m.dispose();
});
