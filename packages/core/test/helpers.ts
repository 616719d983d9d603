/**
 * Shared setup for the @crp/core suite: the wasm backend, a seeded PRNG, a tiny seeded model and
 * independent hand computations built directly on `Attributor.forward/backward` of @crp/lrp.
 */
import '@tensorflow/tfjs-backend-wasm';
import type { Attributor } from '@crp/lrp';
import { mulberry32, seedWeights, uniform, useBackend } from '@crp/testing';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, expect } from 'vitest';
import { CondAttribution, type CondAttributionResult } from '../src/index.js';

export { mulberry32, uniform } from '@crp/testing';

/** Selects the wasm backend for the test file. */
export function useWasm(): void {
  useBackend('wasm');
}

export const H = 6;
export const W = 6;
export const C_IN = 3;
export const CLASSES = 3;
/** Channels of conv1 and conv2, units of dense1. */
export const CONV_CHANNELS = 4;
export const DENSE1_UNITS = 5;
export const INPUT_NAME = 'image';
/** Layer names from the input towards the output. */
export const LAYERS = ['image', 'conv1', 'conv2', 'pool', 'flat', 'dense1', 'dense2'] as const;

/**
 * image [6, 6, 3] -> conv1 (3->4, 3x3 same, relu) -> conv2 (4->4, 3x3 same, relu) -> maxpool 2 -> flatten
 * -> dense1 (->5, relu) -> dense2 (->3 logits). Every weight is set explicitly from a seeded PRNG.
 */
export function buildModel(seed = 7): tfl.LayersModel {
  const input = tfl.input({ shape: [H, W, C_IN], name: INPUT_NAME });
  let x = tfl.layers
    .conv2d({ filters: CONV_CHANNELS, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv1' })
    .apply(input) as tfl.SymbolicTensor;
  x = tfl.layers
    .conv2d({ filters: CONV_CHANNELS, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv2' })
    .apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.flatten({ name: 'flat' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers
    .dense({ units: DENSE1_UNITS, activation: 'relu', name: 'dense1' })
    .apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: CLASSES, name: 'dense2' }).apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  // kernels in [-0.6, 0.6], biases in [-0.1, 0.3] so that most ReLUs are alive
  seedWeights(model, seed, [-0.6, 0.6], [-0.1, 0.3]);
  return model;
}

/** n seeded images [n, H, W, C_IN] with values in [-1, 1]. */
export function images(n: number, seed = 11): tf.Tensor4D {
  return tf.tensor4d(uniform(mulberry32(seed), n * H * W * C_IN), [n, H, W, C_IN]);
}

/** One image of a batch, as a new [1, ...] tensor. */
export function imageAt(batch: tf.Tensor, i: number): tf.Tensor {
  return tf.slice(batch, [i], [1]);
}

/** What a test file shares across its tests: {@link buildModel}, a CondAttribution over it with the default
 * composite, two seeded {@link images} `x` and each of them as a batch of 1 (`x0`, `x1`). */
export interface CondSetup {
  model: tfl.LayersModel;
  crp: CondAttribution;
  x: tf.Tensor;
  x0: tf.Tensor;
  x1: tf.Tensor;
}

/** A {@link CondSetup} with images of `imageSeed`, made before the calling file's tests and disposed after them
 * (read its fields in tests). */
export function useCondSetup(imageSeed?: number): CondSetup {
  const setup = {} as CondSetup;
  beforeAll(() => {
    setup.model = buildModel();
    setup.crp = new CondAttribution(setup.model);
    setup.x = images(2, imageSeed);
    setup.x0 = imageAt(setup.x, 0);
    setup.x1 = imageAt(setup.x, 1);
  });
  afterAll(() => {
    setup.crp.dispose();
    for (const t of [setup.x, setup.x0, setup.x1]) t.dispose();
    setup.model.dispose();
  });
  return setup;
}

export function values(t: tf.Tensor): Float64Array {
  return Float64Array.from(t.dataSync());
}

/** Row r of a [rows, ...] tensor's data. */
export function row(t: tf.Tensor, r: number): Float64Array {
  const v = values(t);
  const n = v.length / t.shape[0]!;
  return v.slice(r * n, (r + 1) * n);
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/**
 * Asserts max |actual - expected| <= tol * max(max |expected|, floor) (a per-tensor relative tolerance as in
 * the reference README; the floor makes all-zero expectations absolute).
 */
export function expectClose(
  actual: tf.Tensor | ArrayLike<number>,
  expected: tf.Tensor | ArrayLike<number>,
  tol = 1e-5,
  floor = 1e-6,
): void {
  const a = actual instanceof tf.Tensor ? values(actual) : actual;
  const e = expected instanceof tf.Tensor ? values(expected) : expected;
  expect(a.length).toBe(e.length);
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < e.length; i++) {
    expect(Number.isFinite(a[i]!), `element ${i} is not finite`).toBe(true);
    const d = Math.abs(a[i]! - e[i]!);
    if (d > worst) {
      worst = d;
      worstAt = i;
    }
  }
  const bound = tol * Math.max(maxAbs(e), floor);
  if (worst > bound) {
    throw new Error(
      `max deviation ${worst} at ${worstAt} exceeds ${bound} (actual ${a[worstAt]}, expected ${e[worstAt]})`,
    );
  }
}

/** Exact equality of the data of two tensors (or arrays). */
export function expectIdentical(
  actual: tf.Tensor | ArrayLike<number>,
  expected: tf.Tensor | ArrayLike<number>,
): void {
  const a = Array.from(actual instanceof tf.Tensor ? actual.dataSync() : actual);
  const e = Array.from(expected instanceof tf.Tensor ? expected.dataSync() : expected);
  expect(a).toEqual(e);
}

/** The data of a tensor is not all zero (so a comparison is not vacuous). */
export function expectNonZero(t: tf.Tensor | ArrayLike<number>, what = 'tensor'): void {
  const v = t instanceof tf.Tensor ? values(t) : t;
  expect(maxAbs(v), `${what} is all zero: the test would be vacuous`).toBeGreaterThan(1e-6);
}

/** Sums an NHWC relevance over the channel axis: [N, H, W, C] -> [N, H, W] values. */
export function channelSum(t: tf.Tensor): Float64Array {
  const v = values(t);
  const c = t.shape[t.rank - 1]!;
  const out = new Float64Array(v.length / c);
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += v[i * c + k]!;
    out[i] = s;
  }
  return out;
}

/** A 0/1 channel mask over the last axis of a per-sample shape: [1, ..., 1, C] with ones at `keep`. */
export function channelMask(shape: readonly number[], keep: readonly number[]): tf.Tensor {
  const c = shape[shape.length - 1]!;
  const data = new Float32Array(c);
  for (const k of keep) data[k] = 1;
  return tf.tensor(data, [1, ...shape.slice(0, -1).map(() => 1), c]);
}

export interface HandStep {
  /** The layer whose output relevance is masked. */
  layer: string;
  /** The mask, broadcasting against the layer's output ([1, ...]). */
  mask: (shape: readonly number[]) => tf.Tensor;
}

/**
 * The conditional backward pass computed by hand for one image: relevance `init(prediction)` at `from`
 * (default the output), sent down step by step with `Attributor.backward` to each masked layer (top-most
 * first), multiplied by its mask there, and on to the input. Returns the input relevance summed over the
 * colour channels ([H * W] values) and the relevance arriving at each step's layer (before its mask).
 */
export function handChain(
  attributor: Attributor,
  image: tf.Tensor,
  init: (prediction: tf.Tensor) => tf.Tensor,
  steps: readonly HandStep[],
  from?: string,
): { heatmap: Float64Array; arriving: Record<string, Float64Array> } {
  const pass = attributor.forward(image, from === undefined ? {} : { upTo: from });
  const arriving: Record<string, Float64Array> = {};
  try {
    let at = from ?? attributor.graph.outputId;
    let r = init(pass.output(at));
    for (const step of steps) {
      const out = attributor.backward(pass, { from: at, relevance: r, stopAt: [step.layer] });
      r.dispose();
      const reached = out.get(step.layer)!;
      arriving[step.layer] = values(reached);
      const m = step.mask(reached.shape.slice(1));
      r = tf.mul(reached, m);
      m.dispose();
      reached.dispose();
      at = step.layer;
    }
    const out = attributor.backward(pass, { from: at, relevance: r, stopAt: [INPUT_NAME] });
    r.dispose();
    const inputRelevance = out.get(INPUT_NAME)!;
    const heatmap = channelSum(inputRelevance);
    inputRelevance.dispose();
    return { heatmap, arriving };
  } finally {
    pass.dispose();
  }
}

/** Initial relevance keeping the logits at `ys` (zennit-crp's default for a condition `{ y: ys }`). */
export function keepLogits(ys: readonly number[]): (prediction: tf.Tensor) => tf.Tensor {
  return (prediction) =>
    tf.tidy(() => {
      const c = prediction.shape[prediction.rank - 1]!;
      const mask = new Float32Array(c);
      for (const y of ys) mask[y] = 1;
      return tf.mul(prediction, tf.tensor(mask, [1, c]));
    });
}

/** The model's logits for a batch, as values. */
export function logitsOf(model: tfl.LayersModel, x: tf.Tensor): Float64Array {
  const out = model.predict(x) as tf.Tensor;
  const v = values(out);
  out.dispose();
  return v;
}

export { expectCrpError } from '@crp/testing';

/** Heatmap rows of a result as values, one entry per row. */
export function heatmapRows(result: CondAttributionResult): Float64Array[] {
  const hm = result.heatmap;
  if (hm === null) throw new Error('no heatmap');
  return Array.from({ length: hm.shape[0] }, (_, r) => row(hm, r));
}

const subModels = new WeakMap<tfl.LayersModel, Map<string, tfl.LayersModel>>();

/** The output of `layer` for a batch (via a sub-model sharing the layers), as values. */
export function activationOf(model: tfl.LayersModel, layer: string, x: tf.Tensor): Float64Array {
  let byLayer = subModels.get(model);
  if (byLayer === undefined) {
    byLayer = new Map();
    subModels.set(model, byLayer);
  }
  let sub = byLayer.get(layer);
  if (sub === undefined) {
    sub = tfl.model({ inputs: model.inputs, outputs: model.getLayer(layer).output as tfl.SymbolicTensor });
    byLayer.set(layer, sub);
  }
  const out = sub.predict(x) as tf.Tensor;
  const v = values(out);
  out.dispose();
  return v;
}
