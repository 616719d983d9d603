import { CrpError, mulberry32, permutation } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Labelled images in memory: what the data-set loaders return and what {@link train} takes. The caller owns the
 * tensors: end them with {@link disposeDataset}.
 */
export interface Dataset {
  /** Images [N, height, width, channels], float32 (NHWC). */
  readonly xs: tf.Tensor4D;
  /** Class index of each image [N], int32. */
  readonly ys: tf.Tensor1D;
  /** Class names; `ys` indexes into them. */
  readonly classes: readonly string[];
  /** Where each image came from (file paths for image folders), if known. */
  readonly sources?: readonly string[];
}

/** Ends the tensors of a data set. */
export function disposeDataset(data: Dataset | undefined): void {
  if (data === undefined) return;
  tf.dispose([data.xs, data.ys]);
}

/** How pixel values are mapped to model input, shared by the loaders. */
export interface PixelOptions {
  /**
   * Per-channel mean and standard deviation applied after scaling to [0, 1]: `(x - mean) / std` (for instance
   * ImageNet's `[0.485, 0.456, 0.406]` / `[0.229, 0.224, 0.225]` for a torchvision model). Default: none.
   */
  normalize?: { mean: readonly number[]; std: readonly number[] };
}

/** Applies {@link PixelOptions.normalize} to images in [0, 1]; returns a new tensor (the input is not disposed). */
export function normalizePixels(xs: tf.Tensor4D, options: PixelOptions): tf.Tensor4D {
  const { normalize } = options;
  if (normalize === undefined) return xs.clone();
  const channels = xs.shape[3];
  const { mean, std } = normalize;
  const ok = (v: readonly number[]) => v.length === 1 || v.length === channels;
  if (!ok(mean) || !ok(std) || std.some((s) => !(s > 0)) || mean.some((m) => !Number.isFinite(m))) {
    throw new CrpError(
      'invalid-argument',
      `normalize needs ${channels === 1 ? '1' : `1 or ${channels}`} finite means and positive standard deviations, got mean [${mean.join(', ')}] std [${std.join(', ')}]`,
    );
  }
  return tf.tidy(() => tf.div(tf.sub(xs, tf.tensor1d([...mean])), tf.tensor1d([...std])));
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
  const n = data.xs.shape[0];
  const v = options.validation;
  const count = v > 0 && v < 1 ? Math.round(n * v) : v;
  if (!Number.isInteger(count) || count < 1 || count >= n) {
    throw new CrpError(
      'invalid-argument',
      `validation must be a share in (0, 1) or a whole number in [1, ${n - 1}] for ${n} images, got ${v}`,
    );
  }
  const { train, validation } = splitIndices(
    data.ys.dataSync(),
    count,
    options.seed ?? 0,
    options.stratify ?? true,
  );
  return { train: subset(data, train), validation: subset(data, validation) };
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

/** The images at `indices` (in that order) as a new data set that the caller owns. */
export function subset(data: Dataset, indices: ArrayLike<number>): Dataset {
  const n = data.xs.shape[0];
  const idx = Int32Array.from(indices as ArrayLike<number>);
  for (const i of idx) {
    if (i < 0 || i >= n) throw new CrpError('invalid-argument', `image index ${i} is outside [0, ${n - 1}]`);
  }
  const [xs, ys] = tf.tidy(() => {
    const at = tf.tensor1d(idx, 'int32');
    return [tf.gather(data.xs, at) as tf.Tensor4D, tf.gather(data.ys, at) as tf.Tensor1D] as const;
  });
  const result: Dataset = { xs, ys, classes: data.classes };
  return data.sources === undefined
    ? result
    : { ...result, sources: Array.from(idx, (i) => data.sources![i]!) };
}
