import { CrpError, mulberry32, permutation } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Labelled images in memory, the one data-set interface of the toolkit: what the loaders of `@crp/models`
 * return (`imageFolder`, `mnist` of `@crp/models/node`) and what {@link train}, {@link evaluate}, the pruning criteria and
 * the attribution strategies take (a `Dataset` is also a source of `@crp/attribution`). The caller owns
 * `images`: end it with {@link disposeDataset}.
 */
export interface Dataset {
  /** Images [N, height, width, channels], float32 (NHWC). */
  readonly images: tf.Tensor4D;
  /** Class index of each image (N integers >= 0). */
  readonly labels: readonly number[];
  /** Class names; `labels` index into them. */
  readonly classes?: readonly string[];
  /** Where each image came from (file paths for image folders), if known. */
  readonly sources?: readonly string[];
}

/** Ends the tensors of a data set (undefined is ignored). */
export function disposeDataset(data: Dataset | undefined): void {
  data?.images.dispose();
}

/** Options of {@link splitDataset}. */
export interface SplitOptions {
  /** Share (0 < v < 1) or number (>= 1) of the images that go to the validation set. */
  validation: number;
  /** Seed of the shuffle; default 0. */
  seed?: number;
  /** Keep the class proportions in both parts (default true). */
  stratify?: boolean;
}

/**
 * Splits a data set into disjoint, shuffled training and validation sets (seeded, so the same seed gives the same
 * split). The input is not disposed; the two results are new tensors that the caller owns.
 */
export function splitDataset(data: Dataset, options: SplitOptions): { train: Dataset; validation: Dataset } {
  const n = data.images.shape[0];
  const v = options.validation;
  const count = v > 0 && v < 1 ? Math.round(n * v) : v;
  if (!Number.isInteger(count) || count < 1 || count >= n) {
    throw new CrpError(
      'invalid-argument',
      `validation must be a share in (0, 1) or a whole number in [1, ${n - 1}] for ${n} images, got ${v}`,
    );
  }
  const { train, validation } = splitIndices(data.labels, count, options.seed ?? 0, options.stratify ?? true);
  return { train: gatherDataset(data, train), validation: gatherDataset(data, validation) };
}

/**
 * The index half of {@link splitDataset}: `count` shuffled indices for validation, the rest (shuffled) for training.
 * @internal
 */
export function splitIndices(
  labels: ArrayLike<number>,
  count: number,
  seed: number,
  stratify: boolean,
): { train: number[]; validation: number[] } {
  const n = labels.length;
  const random = mulberry32(seed);
  const trainIdx: number[] = [];
  const valIdx: number[] = [];
  if (!stratify) {
    const order = permutation(n, random);
    valIdx.push(...order.subarray(0, count));
    trainIdx.push(...order.subarray(count));
  } else {
    // per class, shuffled; validation takes each class's share (largest remainders fill the rest)
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const label = labels[i]!;
      if (!byClass.has(label)) byClass.set(label, []);
      byClass.get(label)!.push(i);
    }
    const groups = [...byClass.entries()].sort((a, b) => a[0] - b[0]).map(([, idx]) => idx);
    const exact = groups.map((g) => (g.length * count) / n);
    const take = exact.map(Math.floor);
    let left = count - take.reduce((a, b) => a + b, 0);
    const byRemainder = exact
      .map((e, i) => [e - Math.floor(e), i] as const)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    for (const [, i] of byRemainder) {
      if (left === 0) break;
      take[i]!++;
      left--;
    }
    groups.forEach((g, gi) => {
      const order = permutation(g.length, random);
      order.forEach((o, k) => {
        (k < take[gi]! ? valIdx : trainIdx).push(g[o]!);
      });
    });
    const shuffle = (idx: number[]) => Array.from(permutation(idx.length, random), (o) => idx[o]!);
    return { train: shuffle(trainIdx), validation: shuffle(valIdx) };
  }
  return { train: trainIdx, validation: valIdx };
}

/**
 * The images at `indices` (in that order, repeats allowed, as `tf.gather`) as a new data set that the caller
 * owns; `classes` and `sources` follow.
 */
export function gatherDataset(data: Dataset, indices: ArrayLike<number>): Dataset {
  const n = data.images.shape[0];
  const idx = Int32Array.from(indices as ArrayLike<number>);
  for (const i of idx) {
    if (!(i >= 0 && i < n))
      throw new CrpError('invalid-argument', `image index ${i} is outside [0, ${n - 1}]`);
  }
  const images = tf.tidy(() => tf.gather(data.images, tf.tensor1d(idx, 'int32')) as tf.Tensor4D);
  const result: { -readonly [K in keyof Dataset]: Dataset[K] } = {
    images,
    labels: Array.from(idx, (i) => data.labels[i]!),
  };
  if (data.classes !== undefined) result.classes = data.classes;
  if (data.sources !== undefined) result.sources = Array.from(idx, (i) => data.sources![i]!);
  return result;
}

/**
 * Checks that a data set is well formed: images [N, H, W, C], N integer labels >= 0 (below `classes.length`
 * when there are class names) and N sources when given. `what` names it in the message.
 */
export function checkDataset(data: Dataset, what = 'the data set'): void {
  const images = data.images as tf.Tensor | undefined;
  if (images === undefined || images.rank !== 4) {
    throw new CrpError(
      'invalid-shape',
      `${what} needs images [N, height, width, channels], got ${images === undefined ? 'none' : `[${images.shape.join(', ')}]`}`,
    );
  }
  const n = images.shape[0]!;
  if (data.labels.length !== n) {
    throw new CrpError('invalid-argument', `${what} has ${n} images but ${data.labels.length} labels`);
  }
  const classes = data.classes?.length;
  data.labels.forEach((y, i) => {
    if (!Number.isInteger(y) || y < 0 || (classes !== undefined && y >= classes)) {
      throw new CrpError(
        'invalid-argument',
        `label ${i} of ${what} is ${y}; labels must be integers in 0..${classes === undefined ? 'classes - 1' : classes - 1}`,
      );
    }
  });
  if (data.sources !== undefined && data.sources.length !== n) {
    throw new CrpError('invalid-argument', `${what} has ${n} images but ${data.sources.length} sources`);
  }
}
