/**
 * Test setup shared by the @crp/lrp suite: backend selection, a seeded PRNG, weight setters for tiny
 * tf.LayersModels and a tolerance assertion. Every expected value in the suite is computed independently of
 * the engine (see reference.ts); nothing here calls into src/.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { mulberry32, uniform as sharedUniform } from '@crp/testing';
import type * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'vitest';
import { type AttributorOptions, attribute, type Composite } from '../src/index.js';

export { mulberry32, switchBackend, uniformTensor, useBackend } from '@crp/testing';

/** n uniform values in [lo, hi), rounded to float32 (so a tensor made from them holds exactly these). */
export function uniform(rng: () => number, n: number, lo = -1, hi = 1): Float64Array {
  return Float64Array.from(sharedUniform(rng, n, lo, hi));
}

/** n values on a grid of `step` in [-max, max] (exactly representable in float32, so sums are exact). */
export function gridValues(rng: () => number, n: number, max = 2, step = 0.5): Float64Array {
  const out = new Float64Array(n);
  const steps = Math.round(max / step);
  for (let i = 0; i < n; i++) out[i] = (Math.floor(rng() * (2 * steps + 1)) - steps) * step;
  return out;
}

/** The values of a tensor as float64. */
export function values(t: tf.Tensor): Float64Array {
  return Float64Array.from(t.dataSync());
}

export function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s;
}

/** Replaces a layer's weights (in getWeights order) with the given values, keeping their shapes. */
export function setWeights(model: tfl.LayersModel, layerName: string, ...weights: ArrayLike<number>[]): void {
  const layer = model.getLayer(layerName);
  const current = layer.getWeights();
  if (current.length !== weights.length) {
    throw new Error(`layer ${layerName} has ${current.length} weights, got ${weights.length}`);
  }
  const made = weights.map((w, i) => tf.tensor(Array.from(w), current[i]!.shape));
  layer.setWeights(made);
  for (const t of made) t.dispose();
}

/** A layer's weights as float64 arrays, in getWeights order. */
export function weightsOf(model: tfl.LayersModel, layerName: string): Float64Array[] {
  return model
    .getLayer(layerName)
    .getWeights()
    .map((w) => values(w));
}

/**
 * Gives every weight of the model seeded values: kernels and biases uniform in [-scale, scale]; batch norm
 * gamma in [0.5, 1.5], beta and moving mean in [-0.5, 0.5], moving variance in [0.5, 2].
 */
export function randomizeWeights(model: tfl.LayersModel, seed: number, scale = 0.5): void {
  const rng = mulberry32(seed);
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    const isBn = layer.getClassName() === 'BatchNormalization';
    const names = layer.weights.map((w) => w.originalName);
    const made = ws.map((w, i) => {
      const n = w.size;
      const name = names[i] ?? '';
      let v: Float64Array;
      if (isBn && name.endsWith('gamma')) v = uniform(rng, n, 0.5, 1.5);
      else if (isBn && name.endsWith('moving_variance')) v = uniform(rng, n, 0.5, 2);
      else if (isBn) v = uniform(rng, n, -0.5, 0.5);
      else v = uniform(rng, n, -scale, scale);
      return tf.tensor(Array.from(v), w.shape);
    });
    layer.setWeights(made);
    for (const t of made) t.dispose();
  }
}

/** All weights of a model as float64 arrays (for before/after comparisons). */
export function snapshotWeights(model: tfl.LayersModel): Float64Array[] {
  return model.getWeights().map((w) => values(w));
}

/**
 * Asserts max |actual - expected| <= max(tol * max |expected|, floor): a per-tensor relative tolerance, as
 * the reference README uses, with its absolute floor of 1e-7 so that all-zero expectations still compare.
 */
export function expectClose(
  actual: tf.Tensor | ArrayLike<number>,
  expected: ArrayLike<number>,
  tol = 1e-5,
  floor = 1e-7,
): void {
  const a = actual instanceof tf.Tensor ? values(actual) : actual;
  expect(a.length).toBe(expected.length);
  let worst = 0;
  let worstAt = -1;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    expect(Number.isFinite(a[i]!)).toBe(true);
    scale = Math.max(scale, Math.abs(e));
    const d = Math.abs(a[i]! - e);
    if (d > worst) {
      worst = d;
      worstAt = i;
    }
  }
  const bound = Math.max(tol * scale, floor);
  if (worst > bound) {
    const show = (x: ArrayLike<number>) => Array.from(x, (v) => Number(v.toPrecision(6))).join(', ');
    throw new Error(
      `max deviation ${worst} at ${worstAt} exceeds ${bound}\n  actual:   [${show(a)}]\n  expected: [${show(expected)}]`,
    );
  }
}

/** Relative difference |a - b| / max(|a|, |b|, tiny). */
export function relDiff(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30);
}

/** The model's input shape without the batch dimension. */
export function inputShapeOf(model: tfl.LayersModel): number[] {
  return model.inputs[0]!.shape.slice(1).map((d) => d as number);
}

/**
 * Runs `attribute` on one sample with the relevance `r` at the model output (any shape the output has) and
 * returns the input relevance as float64. Canonizers are off unless given, so rules see the layers as built.
 */
export function lrpInput(
  model: tfl.LayersModel,
  input: ArrayLike<number>,
  composite: Composite | string,
  r: ArrayLike<number>,
  options: AttributorOptions = {},
): Float64Array {
  const x = tf.tensor(Array.from(input), [1, ...inputShapeOf(model)]);
  try {
    const result = attribute(model, x, {
      canonizers: [],
      ...options,
      composite,
      initRelevance: (prediction) => tf.tensor(Array.from(r), prediction.shape),
    });
    const out = values(result.relevance);
    result.relevance.dispose();
    result.prediction.dispose();
    return out;
  } finally {
    x.dispose();
  }
}
