import { mulberry32 } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerTrainingKernels } from '../src/index.js';

beforeAll(async () => {
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
});

function uniform(rng: () => number, n: number): number[] {
  return Array.from({ length: n }, () => Math.fround(-1 + 2 * rng()));
}

/** Every |actual - expected| is at most `tol` times the largest |expected| (at least 1e-6). */
function expectClose(actual: Float32Array, expected: Float32Array, tol: number): void {
  expect(actual.length).toBe(expected.length);
  const bound = tol * Math.max(...Array.from(expected, Math.abs), 1e-6);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst).toBeLessThanOrEqual(bound);
}

interface Case {
  x: [number, number, number, number];
  w: [number, number, number, number];
  strides: number | [number, number];
  pad: 'same' | 'valid';
}

// moved from @crp/pruning: a non-square input with stride 2 and 'same' (uneven padding), asymmetric strides with
// a non-square filter and 'valid', and a 1x1 'valid' convolution
const CASES: Case[] = [
  { x: [2, 7, 7, 3], w: [3, 3, 3, 5], strides: 1, pad: 'same' },
  { x: [2, 7, 6, 3], w: [3, 3, 3, 4], strides: 2, pad: 'same' },
  { x: [3, 8, 8, 2], w: [2, 3, 2, 3], strides: [2, 1], pad: 'valid' },
  { x: [1, 5, 5, 4], w: [1, 1, 4, 6], strides: 1, pad: 'valid' },
];

/** The kernel gradient of sum(conv2d(x, w) * dy) on the current backend. */
async function filterGradient(c: Case, seed: number): Promise<Float32Array> {
  const rng = mulberry32(seed);
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const g = tf.tidy(() => {
    const x = tf.tensor4d(uniform(rng, size(c.x)), c.x);
    const w = tf.tensor4d(uniform(rng, size(c.w)), c.w);
    const y = tf.conv2d(x, w, c.strides, c.pad);
    const dy = tf.tensor(uniform(rng, y.size), y.shape);
    const objective = (ww: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(x, ww as tf.Tensor4D, c.strides, c.pad), dy));
    return tf.grad(objective)(w);
  });
  const v = (await g.data()) as Float32Array;
  g.dispose();
  return v;
}

describe('registerTrainingKernels with replaceCpu', () => {
  it("matches tfjs-core's cpu kernel on cpu and on wasm (strides, asymmetric strides, same/valid, 1x1)", async () => {
    const reference = await Promise.all(CASES.map((c, i) => filterGradient(c, i + 1)));
    const cpuKernel = tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc;
    registerTrainingKernels({ replaceCpu: true });
    const replaced = tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc;
    expect(replaced).not.toBe(cpuKernel);
    // idempotent: calling again keeps the same kernels
    registerTrainingKernels({ replaceCpu: true });
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc).toBe(replaced);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')!.kernelFunc).toBe(replaced);
    for (const [i, c] of CASES.entries()) expectClose(await filterGradient(c, i + 1), reference[i]!, 1e-5);
    if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
    try {
      for (const [i, c] of CASES.entries()) expectClose(await filterGradient(c, i + 1), reference[i]!, 1e-5);
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
