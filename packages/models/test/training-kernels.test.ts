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
  let largest = 1e-6;
  for (const v of expected) largest = Math.max(largest, Math.abs(v));
  const bound = tol * largest;
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

/** The same computation on cpu (TF.js' reference kernels) and on wasm after registerTrainingKernels. */
async function onBoth(f: () => tf.Tensor): Promise<[Float32Array, Float32Array]> {
  await tf.setBackend('cpu');
  const expected = tf.tidy(f);
  const e = (await expected.data()) as Float32Array;
  expected.dispose();
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  try {
    const actual = tf.tidy(f);
    const a = (await actual.data()) as Float32Array;
    actual.dispose();
    return [a, e];
  } finally {
    await tf.setBackend('cpu');
  }
}

function random(shape: number[], seed: number): tf.Tensor {
  const rng = mulberry32(seed);
  return tf.tensor(
    uniform(
      rng,
      shape.reduce((a, b) => a * b, 1),
    ),
    shape,
  );
}

describe('registerTrainingKernels with replaceCpu', () => {
  it("matches tfjs-core's cpu kernel on cpu and on wasm (strides, asymmetric strides, same/valid, 1x1)", async () => {
    const reference = await Promise.all(CASES.map((c, i) => filterGradient(c, i + 1)));
    const cpuKernel = tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc;
    registerTrainingKernels({ replaceCpu: true });
    const replaced = tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc;
    const wasm = tf.getKernel('Conv2DBackpropFilter', 'wasm')!.kernelFunc;
    expect(replaced).not.toBe(cpuKernel);
    // idempotent: calling again keeps the same kernels
    registerTrainingKernels({ replaceCpu: true });
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc).toBe(replaced);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')!.kernelFunc).toBe(wasm);
    for (const [i, c] of CASES.entries()) expectClose(await filterGradient(c, i + 1), reference[i]!, 1e-5);
    if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
    try {
      for (const [i, c] of CASES.entries()) expectClose(await filterGradient(c, i + 1), reference[i]!, 1e-5);
    } finally {
      await tf.setBackend('cpu');
    }
  });
});

describe('the wasm kernels of registerTrainingKernels', () => {
  it('give the input gradient of convolutions as the cpu backend does (stride 1 rewritten, strided ones kept)', async () => {
    registerTrainingKernels();
    const inputCases: Case[] = [...CASES, { x: [2, 9, 8, 5], w: [5, 3, 5, 4], strides: 1, pad: 'valid' }];
    for (const [i, c] of inputCases.entries()) {
      const [actual, expected] = await onBoth(() => {
        const w = random(c.w, 10 + i);
        const dy = random(
          tf.conv2d(random(c.x, 1) as tf.Tensor4D, w as tf.Tensor4D, c.strides, c.pad).shape,
          20 + i,
        );
        return tf.grad((x) =>
          tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.strides, c.pad), dy)),
        )(random(c.x, 30 + i));
      });
      expectClose(actual, expected, 1e-5);
    }
  });

  it('multiply transposed matrices as the cpu backend does (both formulations, with batch axes of size 1)', async () => {
    registerTrainingKernels();
    // [m, k, n]: a thin left, a thin inner and a thin right product, each big enough to be rewritten
    const sizes = [
      [8, 300, 700],
      [700, 8, 300],
      [300, 700, 8],
    ] as const;
    for (const [ta, tb] of [
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      for (const [s, [m, k, n]] of sizes.entries()) {
        for (const batched of [false, true]) {
          const [actual, expected] = await onBoth(() => {
            const a = random(ta ? [k, m] : [m, k], s + 1);
            const b = random(tb ? [n, k] : [k, n], s + 2);
            const lift = (t: tf.Tensor) => (batched ? tf.reshape(t, [1, ...t.shape]) : t);
            const c = tf.matMul(lift(a) as tf.Tensor3D, lift(b) as tf.Tensor3D, ta, tb);
            expect(c.shape).toEqual(batched ? [1, m, n] : [m, n]);
            return c;
          });
          expectClose(actual, expected, 1e-5);
        }
      }
    }
  });

  it('tile as the cpu backend does, and share data in Identity instead of copying it', async () => {
    registerTrainingKernels();
    const cases: [number[], number[]][] = [
      [
        [1, 1, 1, 5],
        [2, 3, 4, 1],
      ],
      [
        [1, 5],
        [7, 1],
      ],
      [
        [2, 3],
        [2, 2],
      ],
      [
        [1, 3, 2],
        [4, 1, 1],
      ],
      [[3], [5]],
    ];
    for (const [i, [shape, reps]] of cases.entries()) {
      const [actual, expected] = await onBoth(() => tf.tile(random(shape, 40 + i), reps));
      expect(Array.from(actual)).toEqual(Array.from(expected));
    }
    await tf.setBackend('wasm');
    try {
      const x = random([64, 64], 50);
      const buffers = tf.memory().numDataBuffers;
      const y = tf.clone(x);
      expect(tf.memory().numDataBuffers).toBe(buffers);
      x.dispose();
      expect(Array.from(await y.data()).slice(0, 3)).toEqual(uniform(mulberry32(50), 3));
      y.dispose();
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
