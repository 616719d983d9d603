/**
 * The tiny ViT that the head tests of @crp/attribution, @crp/pruning, @crp/evaluation and @crp/models share, so
 * that a number summed by hand in one suite is the same model's in the others: 8x8 RGB images in 2x2 patches of 4
 * pixels (5 tokens with the class token), 1 block, 2 heads of 4 features (width 8), MLP 12, 3 classes, seeded
 * weights. No vitest import.
 *
 * @crp/models' own tests use this package, so it cannot import @crp/models: the caller passes `vit` and
 * `setVitWeights` ({@link TinyVitBuilders}) and the config is typed structurally, as `VitConfig` has it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mulberry32, uniform } from './seeded.js';

/** The fields of @crp/models' `VitConfig` the fixture sets. */
export interface TinyVitConfig {
  imageSize: number;
  patchSize: number;
  numLayers: number;
  numHeads: number;
  hiddenDim: number;
  mlpDim: number;
  numClasses: number;
}

/** 8x8 images in 2x2 patches of 4 pixels, 1 block, 2 heads of 4 features, width 8, MLP 12, 3 classes. */
export const TINY_VIT: Readonly<TinyVitConfig> = Object.freeze({
  imageSize: 8,
  patchSize: 4,
  numLayers: 1,
  numHeads: 2,
  hiddenDim: 8,
  mlpDim: 12,
  numClasses: 3,
});

/** What the fixture needs of @crp/models: `vit` (root) and `setVitWeights` (`@crp/models/internal`). */
export interface TinyVitBuilders<M> {
  vit(config: TinyVitConfig): M;
  setVitWeights(
    model: M,
    config: TinyVitConfig,
    get: (name: string, shape: readonly number[]) => Float32Array,
  ): void;
}

/** Changes to {@link TINY_VIT} and the weights' seed. */
export interface TinyVitOptions {
  /** Heads of the block (the weights do not depend on it: the projections stay [8, 8]); default 2. */
  numHeads?: number;
  /** Blocks; default 1. */
  numLayers?: number;
  /** Seed of the weights; default 5. */
  seed?: number;
}

/**
 * The seeded weights in `setVitWeights`' order from one mulberry32 stream: LayerNorm scales uniform in [0.8, 1.2),
 * every other parameter (kernels, biases, class token, position embedding) small and signed, in [-0.6, 0.6).
 * A new function per model: it draws as it is called.
 */
export function tinyVitWeights(seed = 5): (name: string, shape: readonly number[]) => Float32Array {
  const rng = mulberry32(seed);
  return (name, shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const [lo, hi] = /ln(_\d)?\.weight$/.test(name) ? [0.8, 1.2] : [-0.6, 0.6];
    return Float32Array.from(uniform(rng, n, lo, hi));
  };
}

/** The config of a {@link tinyVit} with `options`. */
export function tinyVitConfig(options: TinyVitOptions = {}): TinyVitConfig {
  return {
    ...TINY_VIT,
    numHeads: options.numHeads ?? TINY_VIT.numHeads,
    numLayers: options.numLayers ?? TINY_VIT.numLayers,
  };
}

/** A new {@link TINY_VIT} model with {@link tinyVitWeights}; the caller owns (and disposes) it. */
export function tinyVit<M>(builders: TinyVitBuilders<M>, options: TinyVitOptions = {}): M {
  const config = tinyVitConfig(options);
  const model = builders.vit(config);
  builders.setVitWeights(model, config, tinyVitWeights(options.seed));
  return model;
}

/** `count` images [count, 8, 8, 3] uniform in [0, 1) from mulberry32(`seed`); the caller owns the tensor. */
export function tinyVitImages(count: number, seed = 9): tf.Tensor4D {
  const side = TINY_VIT.imageSize;
  return tf.tensor4d(uniform(mulberry32(seed), count * side * side * 3, 0, 1), [count, side, side, 3]);
}
