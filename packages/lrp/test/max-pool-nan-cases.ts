/**
 * The max-pool gradient's NaN and infinity cases, one definition for every backend: run on cpu and wasm by
 * max-pool-fuzz.test.ts and on webgl and webgpu in headless Chromium by @crp/conformance's
 * max-pool-nan-gpu.test.ts (this file bundled into its page). PyTorch's rule: a window (or a channel of global max
 * pooling) holding a NaN sends its gradient to its **last** NaN in row-major order, any other to its first
 * maximum, ±inf and values below -1e20 included. Expected values by hand, each equal to torch 1.13's
 * `max_pool2d` / `adaptive_max_pool2d` backward for these inputs (run once). Results are read with `await
 * data()`, as WebGPU's synchronous read-back is unreliable in headless Chromium.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { PoolParams } from '../src/graph/types.js';
import {
  globalMaxPoolGradient,
  globalMaxPoolGradientAdjoint,
  prepareMaxPoolGradient,
} from '../src/ops/max-pool-gradient.js';

const [nan, inf] = [Number.NaN, Number.POSITIVE_INFINITY];

/** What one case gave: the gradient's form, the backward pass of `r` and the adjoint's read of v = 1, 2, ...,
 * and the tensors it left behind. */
export interface MaxPoolNaNOutcome {
  method: string;
  back: number[];
  read: number[];
  leaked: number;
}

export interface MaxPoolNaNCase {
  name: string;
  /** The gradient's form on a host backend (cpu, wasm) and on the others. */
  method: { host: string; other: string };
  back: number[];
  read: number[];
  run(): Promise<MaxPoolNaNOutcome>;
}

const counting = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

async function values(t: tf.Tensor): Promise<number[]> {
  const data = Array.from(await t.data());
  t.dispose();
  return data;
}

/** A max-pool case: `x` [1, h, w, c] through the prepared gradient, with or without the pool's output. */
function poolCase(
  name: string,
  x: { values: number[]; shape: [number, number, number, number] },
  p: PoolParams,
  r: { values: number[]; shape: [number, number, number, number] },
  expected: { method: { host: string; other: string }; back: number[]; read: number[] },
  options: { method: 'auto' | 'masks'; withPooled: boolean },
): MaxPoolNaNCase {
  return {
    name: `${name} (${options.method}, ${options.withPooled ? 'with' : 'without'} the pool output)`,
    ...expected,
    run: async () => {
      const before = tf.memory().numTensors;
      const input = tf.tensor4d(x.values, x.shape);
      const pad: 'valid' | tf.backend_util.ExplicitPadding =
        p.padding === 'valid'
          ? 'valid'
          : [[0, 0], ...(p.padding as [[number, number], [number, number]]), [0, 0]];
      const pooled = options.withPooled ? tf.maxPool(input, p.poolSize, p.strides, pad) : undefined;
      const g = prepareMaxPoolGradient(input, p, pooled, options.method);
      const relevance = tf.tensor4d(r.values, r.shape);
      const v = tf.tensor4d(counting(input.size), x.shape);
      const back = await values(g.backward(relevance));
      const read = await values(g.adjoint(v));
      g.dispose();
      tf.dispose([input, relevance, v]);
      pooled?.dispose();
      return { method: g.method, back, read, leaked: tf.memory().numTensors - before };
    },
  };
}

/** A global max pooling case: `channels` (NCHW order, each [h * w]) laid out as [1, h, w, c]. */
function globalCase(
  name: string,
  channels: number[][],
  [h, w]: [number, number],
  expected: { back: number[]; read: number[] },
): MaxPoolNaNCase {
  return {
    name,
    method: { host: 'global', other: 'global' },
    ...expected,
    run: async () => {
      const before = tf.memory().numTensors;
      const c = channels.length;
      const x = tf.tensor4d(
        counting(h * w).flatMap((q) => channels.map((ch) => ch[q - 1]!)),
        [1, h, w, c],
      );
      const r = tf.tensor2d(
        channels.map((_, i) => 10 * (i + 1)),
        [1, c],
      );
      const v = tf.tensor4d(counting(h * w * c), [1, h, w, c]);
      const back = await values(globalMaxPoolGradient(x, r));
      const read = await values(globalMaxPoolGradientAdjoint(x, v));
      tf.dispose([x, r, v]);
      return { method: 'global', back, read, leaked: tf.memory().numTensors - before };
    },
  };
}

/** NHWC relevance of global max pooling: channel i's 10 (i + 1) at its tap `taps[i]`, and v read there. */
function globalExpected(taps: number[], hw: number): { back: number[]; read: number[] } {
  const c = taps.length;
  const back = new Array<number>(hw * c).fill(0);
  taps.forEach((t, i) => {
    back[t * c + i] = 10 * (i + 1);
  });
  return { back, read: taps.map((t, i) => t * c + i + 1) };
}

const TILES: PoolParams = { poolSize: [2, 2], strides: [2, 2], padding: 'valid' };
const PADDED: PoolParams = {
  poolSize: [3, 3],
  strides: [2, 2],
  padding: [
    [1, 1],
    [1, 1],
  ],
};

/** The forms: 'auto' (the host walker on cpu and wasm, the tensor ops elsewhere) and 'masks' (the tensor ops on
 * every backend), each with and without the pool's output. */
const FORMS = (['auto', 'masks'] as const).flatMap((method) =>
  [true, false].map((withPooled) => ({ method, withPooled })),
);

export const MAX_POOL_NAN_CASES: readonly MaxPoolNaNCase[] = [
  ...FORMS.map((form) =>
    poolCase(
      'tiles 2x2 / 2: [1, NaN; 3, NaN] -> the NaN at (1, 1), [NaN, 2; NaN, 5] -> (1, 0), [inf, NaN; inf, 1] -> (0, 1), [2, inf; inf, 1] -> the first inf, all -inf -> the first',
      {
        // five windows side by side, one row each of [1, 2, 10, 1]
        values: [1, nan, nan, 2, inf, nan, 2, inf, -inf, -inf, 3, nan, nan, 5, inf, 1, inf, 1, -inf, -inf],
        shape: [1, 2, 10, 1],
      },
      TILES,
      { values: [10, 20, 30, 40, 50], shape: [1, 1, 5, 1] },
      {
        method: { host: 'tiles', other: 'tiles' },
        back: [0, 0, 0, 0, 0, 30, 0, 40, 50, 0, 0, 10, 20, 0, 0, 0, 0, 0, 0, 0],
        read: [12, 13, 6, 8, 9],
      },
      form,
    ),
  ),
  ...FORMS.map((form) =>
    poolCase(
      'tiles 2x2 / 2 below -1e20: [-3e30, -1e25; -2e25, -1e38] -> (0, 1), [-inf, -inf; -1e21, -inf] -> (1, 0)',
      { values: [-3e30, -1e25, -inf, -inf, -2e25, -1e38, -1e21, -inf], shape: [1, 2, 4, 1] },
      TILES,
      { values: [10, 20], shape: [1, 1, 2, 1] },
      { method: { host: 'tiles', other: 'tiles' }, back: [0, 10, 0, 0, 0, 0, 20, 0], read: [2, 7] },
      form,
    ),
  ),
  ...FORMS.map((form) =>
    poolCase(
      'overlapping, padded windows 3x3 / 2, padding 1: each NaN window to its last NaN, the others (channel 1: ties) to their first maximum',
      {
        // channel 0 [3, 5] with NaN and infinities; channel 1 all 7 (ties: each window's first tap)
        values: [1, nan, 2, -inf, 4, inf, 0, nan, 3, -inf, 2, inf, 1, nan, nan].flatMap((a) => [a, 7]),
        shape: [1, 3, 5, 2],
      },
      PADDED,
      { values: [1, 10, 2, 20, 3, 30, 4, 40, 5, 50, 6, 60], shape: [1, 2, 3, 2] },
      {
        method: { host: form.method === 'auto' ? 'index' : 'masks', other: 'masks' },
        // torch: channel 0 [[0, 1, 0, 0, 3], [4, 0, 2, 0, 0], [0, 0, 0, 5, 6]], channel 1
        // [[10, 20, 0, 30, 0], [40, 50, 0, 60, 0], [0, 0, 0, 0, 0]], interleaved
        back: [0, 1, 0, 0, 3, 4, 0, 2, 0, 0, 0, 0, 0, 5, 6].flatMap((a, i) => [
          a,
          [10, 20, 0, 30, 0, 40, 50, 0, 60, 0, 0, 0, 0, 0, 0][i]!,
        ]),
        // each window reads v (i + 1 at flat index i) at the same taps: channel 0 at 1, 7, 4, 5, 13, 14,
        // channel 1 at 0, 1, 3, 5, 6, 8
        read: [1, 7, 4, 5, 13, 14].flatMap((t, k) => [2 * t + 1, 2 * [0, 1, 3, 5, 6, 8][k]! + 2]),
      },
      form,
    ),
  ),
  ...FORMS.map((form) =>
    poolCase(
      'overlapping, padded windows 3x3 / 2, padding 1, below -1e20: each window to its first maximum',
      { values: [-5e21, -1e22, -3e21, -2e22, -4e21, -6e21, -inf, -7e21, -1e30], shape: [1, 3, 3, 1] },
      PADDED,
      { values: [1, 2, 3, 4], shape: [1, 2, 2, 1] },
      {
        method: { host: form.method === 'auto' ? 'index' : 'masks', other: 'masks' },
        back: [0, 0, 2, 0, 8, 0, 0, 0, 0],
        read: [5, 3, 5, 5],
      },
      form,
    ),
  ),
  globalCase(
    'global max pooling: [1, NaN; 3, NaN], [5, 2; 5, 1], [NaN, 9; 1, 2], all -inf, [2, inf; inf, NaN] -> taps 3, 0, 0, 0, 3',
    [
      [1, nan, 3, nan],
      [5, 2, 5, 1],
      [nan, 9, 1, 2],
      [-inf, -inf, -inf, -inf],
      [2, inf, inf, nan],
    ],
    [2, 2],
    globalExpected([3, 0, 0, 0, 3], 4),
  ),
  globalCase(
    'global max pooling below -1e20: [-5e30, -2e30; -2e30, -inf], [-inf, -inf; -inf, -1e21] -> taps 1, 3',
    [
      [-5e30, -2e30, -2e30, -inf],
      [-inf, -inf, -inf, -1e21],
    ],
    [2, 2],
    globalExpected([1, 3], 4),
  ),
];
