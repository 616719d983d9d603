/**
 * The incremental (dirty-window) forward: its outputs equal a full forward pass of the same input (model.predict)
 * for every patch position and size, on a seeded VGG-like model with every stage kind it handles; the perturbation
 * metrics give the same curves with it and without it; it keeps no tensor.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it, vi } from 'vitest';
import { changedBox, IncrementalForward } from '../src/incremental.js';
import { pixelFlipping, regionPerturbation, selectivity } from '../src/index.js';
import { images, smallCnn, useBackend } from './helpers.js';

useBackend('cpu');

const H = 20;
const W = 18;

/** 'same' convs (one strided, one dilated, one depthwise), zero padding before a 'valid' conv, batch norm, max pools with and
 * without the stride grid matching the map ('same' 3x3 stride 2), a 'valid' average pool, then a dense head. */

function vggLike(seed = 5): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [H, W, 3],
        filters: 5,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
      }),
      tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same' }),
      tfl.layers.batchNormalization({}),
      tfl.layers.reLU({}),
      tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
      tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthMultiplier: 2 }),
      tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', dilationRate: 2, activation: 'relu' }),
      tfl.layers.zeroPadding2d({
        padding: [
          [1, 0],
          [2, 1],
        ],
      }),
      tfl.layers.conv2d({ filters: 7, kernelSize: [3, 2], padding: 'valid', activation: 'relu' }),
      tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
      tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
      tfl.layers.averagePooling2d({ poolSize: 1, strides: 1 }),
      tfl.layers.flatten({}),
      tfl.layers.dense({ units: 9, activation: 'relu' }),
      tfl.layers.dense({ units: 4 }),
    ],
  });
  let state = seed >>> 0;
  const next = () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 4294967296;
  };
  // batch norm's moving variance must stay positive: every weight in (0.1, 1.1) there, (-0.5, 0.5) elsewhere
  const names = model.weights.map((v) => v.originalName);
  expect(names.filter((n) => n.includes('moving_variance'))).toHaveLength(1);
  model.setWeights(
    model.getWeights().map((w, k) => {
      const positive = /moving_variance|gamma/.test(names[k]!);
      return tf.tensor(
        Float32Array.from({ length: w.size }, () => (positive ? 0.1 + next() : next() - 0.5)),
        w.shape,
      );
    }),
  );
  return model;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const tol = 1e-5 * Math.max(1, Math.abs(expected[i]!));
    if (!(Math.abs(actual[i]! - expected[i]!) <= tol)) {
      throw new Error(`${what}: output ${i} is ${actual[i]}, a full forward pass gives ${expected[i]}`);
    }
  }
}

/** A copy of `x` with the `p` x `p` patch at (y, x) (clipped to the image) set to `value`. */
function withPatch(base: Float32Array, y: number, x: number, p: number, value: number): Float32Array {
  const out = Float32Array.from(base);
  for (let r = y; r < Math.min(y + p, H); r++) {
    for (let c = x; c < Math.min(x + p, W); c++) out.fill(value, (r * W + c) * 3, (r * W + c + 1) * 3);
  }
  return out;
}

/** The incremental outputs of a sequence of inputs, and model.predict's of the same inputs in one batch. */
function both(
  model: tfl.LayersModel,
  inputs: Float32Array[],
): { incremental: Float32Array[]; full: Float32Array[] } {
  const forward = IncrementalForward.of(model, [H, W, 3])!;
  expect(forward).toBeDefined();
  const incremental = inputs.map((x) => {
    const y = forward.run(x);
    const v = y.dataSync() as Float32Array;
    y.dispose();
    return Float32Array.from(v);
  });
  const flat = new Float32Array(inputs.length * H * W * 3);
  inputs.forEach((x, i) => {
    flat.set(x, i * x.length);
  });
  const y = tf.tidy(() => model.predict(tf.tensor4d(flat, [inputs.length, H, W, 3])) as tf.Tensor);
  const all = y.dataSync() as Float32Array;
  const classes = y.shape[1]!;
  y.dispose();
  forward.dispose();
  return { incremental, full: inputs.map((_, i) => all.slice(i * classes, (i + 1) * classes)) };
}

describe('IncrementalForward equals a full forward pass', () => {
  it('for every position of patches of 1, 4 and 7 pixels (corners, edges, off the pool grid)', () => {
    const model = vggLike();
    const x = images(1, H, W, 3, 3);
    const base = Float32Array.from(x.dataSync());
    for (const p of [1, 4, 7]) {
      // the base, then the patch at (0, 0), at (0, 1), ...: each step moves the patch by one pixel (row by row)
      const inputs: Float32Array[] = [base];
      for (let y = 0; y <= H - p; y++) {
        for (let c = 0; c <= W - p; c++) inputs.push(withPatch(base, y, c, p, -1));
      }
      const { incremental, full } = both(model, inputs);
      incremental.forEach((v, i) => {
        expectClose(v, full[i]!, `patch ${p}, input ${i}`);
      });
    }
    x.dispose();
    model.dispose();
  });

  it('for cumulative perturbations in a seeded random order, and for an unchanged input', () => {
    const model = vggLike(9);
    const x = images(1, H, W, 3, 4);
    let cur: Float32Array = Float32Array.from(x.dataSync());
    const inputs: Float32Array[] = [cur];
    let state = 7;
    for (let t = 0; t < 40; t++) {
      state = (state * 1103515245 + 12345) >>> 0;
      const y = state % H;
      const c = (state >>> 8) % W;
      cur = withPatch(cur, y, c, 1 + (t % 5), t % 3 === 0 ? 0 : 0.5);
      inputs.push(cur);
    }
    inputs.push(cur);
    const { incremental, full } = both(model, inputs);
    incremental.forEach((v, i) => {
      expectClose(v, full[i]!, `step ${i}`);
    });
    x.dispose();
    model.dispose();
  });

  it("runs a conv's ReLU inside the conv op and pads only windows at the map's border", async () => {
    const model = vggLike();
    const forward = IncrementalForward.of(model, [H, W, 3])!;
    const x = images(1, H, W, 3, 3);
    const base = Float32Array.from(x.dataSync());
    forward.features(base);
    const kernels = async (input: Float32Array) => {
      const info = await tf.profile(() => {
        forward.features(input);
      });
      return info.kernels.map((k) => k.name);
    };
    // a pixel in the middle: its windows stay inside the maps up to the first pool
    const inner = await kernels(withPatch(base, 8, 8, 1, -1));
    // of the five convs followed by a ReLU, two run it as a kernel of their own: the one with batch norm in
    // between and the dilated one
    expect(inner.filter((k) => k === 'Relu')).toHaveLength(2);
    expect(inner.filter((k) => k === 'FusedConv2D').length).toBeGreaterThanOrEqual(3);
    const pads = inner.filter((k) => k === 'PadV2').length;
    // the corner pixel's windows meet the border in every layer: one pad per conv
    const corner = await kernels(withPatch(base, 0, 0, 1, -1));
    expect(corner.filter((k) => k === 'PadV2').length).toBeGreaterThan(pads);
    forward.dispose();
    x.dispose();
    model.dispose();
  });

  it('recomputes only the window a change reaches: a 1-pixel change dirties 3x3 after a 3x3 conv', () => {
    const model = vggLike();
    const forward = IncrementalForward.of(model, [H, W, 3])!;
    const boxes = forward.boxes({ y0: 10, y1: 11, x0: 0, x1: 1 });
    // input, conv1 (3x3 same), conv2 + bn + relu (3x3 same), pool 2/2
    expect(boxes.slice(0, 4)).toEqual([
      { y0: 10, y1: 11, x0: 0, x1: 1 },
      { y0: 9, y1: 12, x0: 0, x1: 2 },
      { y0: 8, y1: 13, x0: 0, x1: 3 },
      { y0: 4, y1: 7, x0: 0, x1: 2 },
    ]);
    expect(forward.cost({ y0: 10, y1: 11, x0: 0, x1: 1 })).toBeLessThan(forward.fullCost / 4);
    forward.dispose();
    model.dispose();
  });

  it('refuses what it cannot reproduce: a function, a model of another input size, a layer on the input itself', () => {
    const model = vggLike();
    expect(IncrementalForward.of((t) => model.predict(t) as tf.Tensor, [H, W, 3])).toBeUndefined();
    expect(IncrementalForward.of(model, [H, W + 1, 3])).toBeUndefined();
    const normalised = tfl.sequential({
      layers: [
        tfl.layers.batchNormalization({ inputShape: [H, W, 3] }),
        tfl.layers.conv2d({ filters: 2, kernelSize: 3 }),
        tfl.layers.flatten({}),
      ],
    });
    expect(IncrementalForward.of(normalised, [H, W, 3])).toBeUndefined();
    normalised.dispose();
    model.dispose();
  });

  it('keeps no tensor', () => {
    const model = vggLike();
    const x = images(1, H, W, 3, 3);
    const base = Float32Array.from(x.dataSync());
    const before = tf.memory().numTensors;
    const forward = IncrementalForward.of(model, [H, W, 3])!;
    for (const [y, c] of [
      [0, 0],
      [5, 7],
      [19, 17],
    ] as const) {
      forward.run(withPatch(base, y, c, 3, 0)).dispose();
    }
    forward.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  });
});

describe('changedBox', () => {
  it('is the bounding box of the pixels that differ in any channel', () => {
    const a = new Float32Array(4 * 5 * 2);
    const b = Float32Array.from(a);
    expect(changedBox(a, b, 4, 5)).toBeUndefined();
    b[(1 * 5 + 3) * 2 + 1] = 1;
    b[(2 * 5 + 1) * 2] = -1;
    expect(changedBox(a, b, 4, 5)).toEqual({ y0: 1, y1: 3, x0: 1, x1: 4 });
  });
});

describe('the perturbation metrics with and without the incremental forward', () => {
  const cases = [
    [
      'PixelFlipping',
      (m: tfl.LayersModel, x: tf.Tensor4D, a: tf.Tensor, inc: boolean) =>
        pixelFlipping(
          { model: m, x, labels: [1, 3], explanation: a },
          { featuresInStep: 24 },
          { incremental: inc },
        ),
    ],
    [
      'RegionPerturbation',
      (m: tfl.LayersModel, x: tf.Tensor4D, a: tf.Tensor, inc: boolean) =>
        regionPerturbation(
          { model: m, x, labels: [1, 3], explanation: a },
          { patchSize: 3, regionsEvaluation: 30, perturbBaseline: 'uniform' },
          { incremental: inc, seed: 4 },
        ),
    ],
    [
      'Selectivity',
      (m: tfl.LayersModel, x: tf.Tensor4D, a: tf.Tensor, inc: boolean) =>
        selectivity(
          { model: m, x, labels: [1, 3], explanation: a },
          { patchSize: 4, perturbBaseline: 'blur', blurKernelSize: 3 },
          { incremental: inc },
        ),
    ],
  ] as const;
  for (const [name, metric] of cases) {
    it(`${name}: the same curves and AUCs, no tensor kept`, async () => {
      const model = vggLike();
      const x = images(2, H, W, 3, 6);
      const a = tf.randomUniform([2, H, W], -1, 1, 'float32', 2);
      const full = await metric(model, x, a, false);
      const before = tf.memory().numTensors;
      const inc = await metric(model, x, a, true);
      expect(tf.memory().numTensors).toBe(before);
      expect(inc.curves!.length).toBe(2);
      inc.curves!.forEach((c, i) => {
        expectClose(c, full.curves![i]!, `${name} sample ${i}`);
      });
      expectClose(inc.scores, full.scores, `${name} scores`);
      tf.dispose([x, a]);
      model.dispose();
    });
  }

  it('RegionPerturbation scores the unperturbed input as the first, full pass of the steps, not in a pass of its own', async () => {
    const model = vggLike();
    const x = images(2, H, W, 3, 6);
    const a = tf.randomUniform([2, H, W], -1, 1, 'float32', 2);
    const input = { model, x, labels: [1, 3], explanation: a };
    const options = { patchSize: 3, regionsEvaluation: 5 };
    const full = await regionPerturbation(input, options, { incremental: false });
    const predict = vi.spyOn(model, 'predict');
    const features = vi.spyOn(IncrementalForward.prototype, 'features');
    const before = tf.memory().numTensors;
    const inc = await regionPerturbation(input, options, { incremental: true });
    expect(tf.memory().numTensors).toBe(before);
    // no forward pass of the model itself: per sample, the unperturbed input, then the 5 steps
    expect(predict).not.toHaveBeenCalled();
    expect(features).toHaveBeenCalledTimes(2 * (1 + 5));
    predict.mockRestore();
    features.mockRestore();
    // the curves are output drops from the unperturbed output: equal to the plain path's, and not constant
    inc.curves!.forEach((c, i) => {
      expectClose(c, full.curves![i]!, `sample ${i}`);
      expect(new Set(c).size).toBeGreaterThan(1);
    });
    expectClose(inc.scores, full.scores, 'scores');
    tf.dispose([x, a]);
    model.dispose();
  });

  it('by default only where it saves work: patches yes, scattered pixels no (both give the same numbers)', async () => {
    const model = smallCnn();
    const x = images(1, 8, 8, 3, 2);
    const a = tf.randomUniform([1, 8, 8], -1, 1, 'float32', 3);
    const forward = IncrementalForward.of(model, [8, 8, 3])!;
    // a 1-pixel change in a corner reaches a 3x3 box then a 5x5 box of the 8x8 maps: less than half the work
    expect(forward.cost({ y0: 0, y1: 1, x0: 0, x1: 1 })).toBeLessThan(forward.fullCost / 2);
    // a change at both ends of the image reaches everything
    expect(forward.cost({ y0: 0, y1: 8, x0: 0, x1: 8 })).toBe(forward.fullCost);
    forward.dispose();
    const auto = await pixelFlipping({ model, x, labels: [0], explanation: a }, { featuresInStep: 4 });
    const off = await pixelFlipping(
      { model, x, labels: [0], explanation: a },
      { featuresInStep: 4 },
      { incremental: false },
    );
    expectClose(auto.curves![0]!, off.curves![0]!, 'pixel flipping');
    tf.dispose([x, a]);
    model.dispose();
  });
});
