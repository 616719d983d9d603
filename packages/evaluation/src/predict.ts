import { CrpError, type ProgressCallback, progressTracker } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { IncrementalForward } from './incremental.js';

/** The model under evaluation: a `tf.LayersModel` whose output is the logits, or a function from an NHWC batch
 * to logits [batch, classes] (the caller keeps ownership of the input; the returned tensor is disposed here). */
export type Classifier = tfl.LayersModel | ((x: tf.Tensor4D) => tf.Tensor);

/** Options of the forward passes every perturbation metric makes. */
export interface PredictOptions {
  /** Perturbed inputs per forward pass (images per forward pass, as everywhere); default 32. */
  batchSize?: number;
  /** Receives `Progress` (`unit: 'inputs'`) after every forward pass. */
  onProgress?: ProgressCallback;
  /**
   * Whether PixelFlipping, RegionPerturbation, Selectivity and IROF run the model incrementally, image by image,
   * recomputing after each step only the window of each layer that the step changed (exact; see
   * `IncrementalForward`): `false` never, `true` whenever the model is a sequential CNN it understands; default
   * (undefined) when in addition the estimated work is at most half of the full forward passes'.
   */
  incremental?: boolean;
}

/** One input to score: its values (NHWC, one sample) and the class whose output is read. */
export interface ScoredInput {
  input: Float32Array;
  label: number;
}

function batchSizeOf(options: PredictOptions): number {
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new CrpError('invalid-argument', `batchSize is ${batchSize}; give an integer >= 1`);
  }
  return batchSize;
}

function run(model: Classifier, x: tf.Tensor4D): tf.Tensor {
  return typeof model === 'function' ? model(x) : (model.predict(x) as tf.Tensor);
}

/**
 * The output for `label` of each input, in order, computed in forward passes of `batchSize` inputs taken from
 * `inputs` as it yields them (so at most one batch of perturbed inputs is in memory). `softmax` applies the
 * softmax first (Quantus's `softmax=True`); `correct` reads instead whether `label` is the predicted class (1 or
 * 0; the first largest output, as numpy's argmax). A NaN or infinite output is refused with a {@link CrpError}
 * (`invalid-value`) whose message comes from `describe(index)`.
 */
export async function predictTargets(
  model: Classifier,
  shape: readonly [number, number, number],
  inputs: Iterable<ScoredInput>,
  total: number,
  options: PredictOptions & {
    softmax: boolean;
    correct?: boolean;
    phase: string;
    describe: (index: number) => string;
  },
): Promise<Float64Array> {
  const batchSize = batchSizeOf(options);
  const features = shape[0] * shape[1] * shape[2];
  const out = new Float64Array(total);
  const tick = progressTracker(total, options.onProgress, { unit: 'inputs', phase: options.phase });
  let done = 0;
  let buffer = new Float32Array(batchSize * features);
  let labels: number[] = [];
  const flush = async (): Promise<void> => {
    const count = labels.length;
    if (count === 0) return;
    const picked = tf.tidy(() => {
      const x = tf.tensor4d(buffer.subarray(0, count * features), [count, ...shape]);
      const y = run(model, x);
      if (y.rank !== 2) {
        throw new CrpError(
          'invalid-shape',
          `the model's output has shape [${y.shape.join(', ')}]; expected [batch, classes]`,
        );
      }
      return pickTargets(y, labels, options.softmax, options.correct ?? false);
    });
    // disposed also when the read fails (a lost GPU context), not only after it
    const values = await picked.data().finally(() => picked.dispose());
    for (let i = 0; i < count; i++) out[done + i] = finite(values[i]!, done + i, options.describe);
    done += count;
    labels = [];
    tick(count);
  };
  for (const item of inputs) {
    buffer.set(item.input, labels.length * features);
    labels.push(item.label);
    if (labels.length === batchSize) {
      await flush();
      buffer = new Float32Array(batchSize * features);
    }
  }
  await flush();
  if (done !== total) throw new Error(`internal: ${done} inputs scored, ${total} planned`);
  return out;
}

/** The output for each label of the rows of `y` [batch, classes] (after the softmax if asked), or whether the
 * label is the predicted class (a non-finite output stays non-finite, so that it is refused). */
function pickTargets(y: tf.Tensor, labels: number[], softmax: boolean, correct: boolean): tf.Tensor {
  const out = softmax ? tf.softmax(y) : y;
  const classes = out.shape[1]!;
  const bad = labels.findIndex((l) => l >= classes);
  if (bad >= 0) {
    throw new CrpError(
      'invalid-target',
      `class ${labels[bad]} does not exist; the model has classes 0..${classes - 1}`,
    );
  }
  const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
  const target = tf.sum(tf.mul(out, oneHot), 1);
  if (!correct) return target;
  const hit = tf.cast(tf.equal(tf.argMax(out, 1), tf.tensor1d(labels, 'int32')), 'float32');
  return tf.add(hit, tf.mul(target, 0));
}

function finite(v: number, index: number, describe: (index: number) => string): number {
  if (!Number.isFinite(v)) {
    throw new CrpError(
      'invalid-value',
      `the model's output is ${v} for ${describe(index)}; the metric needs finite outputs`,
      { details: { index } },
    );
  }
  return v;
}

/**
 * The output for `labels[i]` of each input of `n` sequences of `steps` inputs, run through `forward` image by
 * image (sequence i's inputs in order, each differing from the one before in a few places), in the layout of
 * {@link predictTargets}: the output of input t of sequence i at t * n + i. The head runs on `batchSize` steps
 * at a time. Progress counts inputs.
 */
export async function predictIncremental(
  forward: IncrementalForward,
  sequence: (i: number) => Iterable<Float32Array>,
  n: number,
  steps: number,
  labels: readonly number[],
  options: PredictOptions & { softmax: boolean; phase: string; describe: (index: number) => string },
): Promise<Float64Array> {
  const out = new Float64Array(n * steps);
  const tick = progressTracker(n * steps, options.onProgress, { unit: 'inputs', phase: options.phase });
  const batchSize = batchSizeOf(options);
  for (let i = 0; i < n; i++) {
    forward.reset();
    let t = 0;
    let pending: Float32Array[] = [];
    const flush = async (): Promise<void> => {
      const targets = pending.map(() => labels[i]!);
      const picked = tf.tidy(() => pickTargets(forward.head(pending), targets, options.softmax, false));
      const values = await picked.data().finally(() => picked.dispose());
      const from = t - pending.length;
      for (let j = 0; j < pending.length; j++) {
        out[(from + j) * n + i] = finite(values[j]!, (from + j) * n + i, options.describe);
      }
      pending = [];
    };
    for (const input of sequence(i)) {
      pending.push(forward.features(input));
      t++;
      if (pending.length === batchSize) await flush();
      tick(1);
    }
    if (pending.length > 0) await flush();
    if (t !== steps) throw new Error(`internal: ${t} inputs of sequence ${i} scored, ${steps} planned`);
  }
  forward.reset();
  return out;
}
