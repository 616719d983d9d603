/** Shared set-up of the @crp/evaluation tests: backends and two small models whose outputs are known by hand. */
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll } from 'vitest';
import { lrpExplainer } from '../src/index.js';

export { expectCrpErrorAsync, mulberry32, useBackend } from '@crp/testing';

/**
 * A linear classifier on [h, w, c] images without bias: logit 0 = sum of w0 * x, logit 1 = sum of w1 * x, so
 * every perturbation's effect can be computed by hand.
 */
export function linearModel(h: number, w: number, c: number, w0: number[], w1: number[]): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [h, w, c], name: 'flat' }),
      tfl.layers.dense({ units: 2, useBias: false, name: 'logits' }),
    ],
  });
  const kernel = new Float32Array(h * w * c * 2);
  for (let i = 0; i < h * w * c; i++) {
    kernel[i * 2] = w0[i]!;
    kernel[i * 2 + 1] = w1[i]!;
  }
  model.layers[1]!.setWeights([tf.tensor2d(kernel, [h * w * c, 2])]);
  return model;
}

/** A small seeded CNN: conv (3 -> 4 channels) + ReLU, conv (4 -> 6) + ReLU, max pool, dense to 3 logits. */
export function smallCnn(seed = 3): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, padding: 'same', name: 'conv1' }),
      tfl.layers.reLU({ name: 'relu1' }),
      tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', name: 'conv2' }),
      tfl.layers.reLU({ name: 'relu2' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 3, name: 'logits' }),
    ],
  });
  let state = seed >>> 0;
  const next = () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 4294967296 - 0.5;
  };
  model.setWeights(
    model.getWeights().map((w) => tf.tensor(Float32Array.from({ length: w.size }, next), w.shape)),
  );
  return model;
}

/** Seeded images in [-1, 1). */
export function images(n: number, h: number, w: number, c: number, seed = 1): tf.Tensor4D {
  let state = seed >>> 0;
  const data = Float32Array.from({ length: n * h * w * c }, () => {
    state = (state * 1103515245 + 12345) >>> 0;
    return (state / 4294967296) * 2 - 1;
  });
  return tf.tensor4d(data, [n, h, w, c]);
}

/** The case that a test file shares across its tests: {@link smallCnn}, five seeded 8 x 8 x 3 images, their labels
 * and the images' epsilon_plus_flat heatmap. */
export interface SmallCnnCase {
  model: tfl.LayersModel;
  x: tf.Tensor4D;
  labels: number[];
  heatmap: tf.Tensor;
  /** A new `{ model, x, labels, explanation: heatmap }` at each read. */
  readonly input: { model: tfl.LayersModel; x: tf.Tensor4D; labels: number[]; explanation: tf.Tensor };
}

/** A {@link SmallCnnCase}, made before the calling file's tests and disposed after them (read its fields in tests). */
export function useSmallCnnCase(): SmallCnnCase {
  const c = {
    labels: [0, 1, 2, 1, 0],
    get input() {
      return { model: c.model, x: c.x, labels: c.labels, explanation: c.heatmap };
    },
  } as unknown as SmallCnnCase;
  beforeAll(async () => {
    c.model = smallCnn();
    c.x = images(5, 8, 8, 3);
    c.heatmap = await lrpExplainer('epsilon_plus_flat')(c.model, c.x, c.labels);
  });
  afterAll(() => {
    tf.dispose([c.x, c.heatmap]);
    c.model.dispose();
  });
  return c;
}
