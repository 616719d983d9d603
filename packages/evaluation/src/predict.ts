import { CrpError, type ProgressCallback, progressTracker } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** The model under evaluation: a `tf.LayersModel` whose output is the logits, or a function from an NHWC batch
 * to logits [batch, classes] (the caller keeps ownership of the input; the returned tensor is disposed here). */
export type Classifier = tfl.LayersModel | ((x: tf.Tensor4D) => tf.Tensor);

/** Options of the forward passes every perturbation metric makes. */
export interface PredictOptions {
  /** Perturbed inputs per forward pass (images per forward pass, as everywhere); default 32. */
  batchSize?: number;
  /** Receives `Progress` (`unit: 'inputs'`) after every forward pass. */
  onProgress?: ProgressCallback;
}

/** One input to score: its values (NHWC, one sample) and the class whose output is read. */
export interface ScoredInput {
  input: Float32Array;
  label: number;
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
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new CrpError('invalid-argument', `batchSize is ${batchSize}; give an integer >= 1`);
  }
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
      let y = run(model, x);
      if (y.rank !== 2) {
        throw new CrpError(
          'invalid-shape',
          `the model's output has shape [${y.shape.join(', ')}]; expected [batch, classes]`,
        );
      }
      if (options.softmax) y = tf.softmax(y);
      const classes = y.shape[1]!;
      const bad = labels.findIndex((l) => l >= classes);
      if (bad >= 0) {
        throw new CrpError(
          'invalid-target',
          `class ${labels[bad]} does not exist; the model has classes 0..${classes - 1}`,
        );
      }
      const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
      const target = tf.sum(tf.mul(y, oneHot), 1);
      if (!options.correct) return target;
      // a non-finite output stays non-finite, so that it is refused below
      const hit = tf.cast(tf.equal(tf.argMax(y, 1), tf.tensor1d(labels, 'int32')), 'float32');
      return tf.add(hit, tf.mul(target, 0));
    });
    const values = await picked.data();
    picked.dispose();
    for (let i = 0; i < count; i++) {
      const v = values[i]!;
      if (!Number.isFinite(v)) {
        throw new CrpError(
          'invalid-value',
          `the model's output is ${v} for ${options.describe(done + i)}; the metric needs finite outputs`,
          {
            details: { index: done + i },
          },
        );
      }
      out[done + i] = v;
    }
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
