import { CrpError, type ProgressCallback, progressTracker } from '@crp/common';
import { ChannelMask, MaskedModel } from '@crp/pruning';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { deletableLayers } from './concept-layers.js';
import { argsort, auc } from './numeric.js';
import { seededRandom } from './random.js';

/** One deletion order: which concepts go first. */
export type ConceptOrder = 'most-relevant-first' | 'least-relevant-first' | `random-${number}`;

/** Options of {@link conceptDeletion}. */
export interface ConceptDeletionOptions {
  /** The layer whose concepts are deleted: output channels, or heads at a ViT's attention product
   * (`encoder.layers.encoder_layer_N.self_attention.context`, masked as `MaskedModel` of @crp/pruning does). */
  layer: string;
  /** The class whose logit is followed. */
  target: number;
  /** CRP relevance of each channel (head) of `layer` for `target` (e.g. `classConceptScores` of @crp/pruning, or an
   * atlas's summed relevance); the deletion orders follow it. */
  relevance: ArrayLike<number>;
  /** The concepts to delete (e.g. the ones the region atlas picked); default every concept of the layer. */
  concepts?: readonly number[];
  /** Random orders beside the two relevance orders; default 3. */
  randomOrders?: number;
  /** Seed of the random orders; default 0. */
  seed?: number;
  /** Images per forward pass; default 32. The numbers do not depend on it. */
  batchSize?: number;
  /** Progress in forward passes of the whole batch (`unit: 'masks'`). */
  onProgress?: ProgressCallback;
}

/** One concept deletion curve: after removing the first k concepts of `order` (k = 0..K), the mean logit of the
 * target class over the images and the accuracy. */
export interface ConceptDeletionCurve {
  order: ConceptOrder;
  /** The concepts in deletion order. */
  concepts: number[];
  /** Mean target logit after deleting 0, 1, ..., K concepts. */
  logit: number[];
  /** Share of images predicted as their label after deleting 0, 1, ..., K concepts. */
  accuracy: number[];
  /** Area under `logit` by the trapezoidal rule, divided by K (the mean height of the curve). */
  auc: number;
}

/** The result of {@link conceptDeletion}. */
export interface ConceptDeletionResult {
  layer: string;
  target: number;
  curves: ConceptDeletionCurve[];
  /** Area between the curves: AUC(least relevant first) - AUC(most relevant first); positive when the model
   * depends more on the concepts CRP calls relevant. */
  abpc: number;
  /** The same against the mean of the random orders: AUC(random, mean) - AUC(most relevant first). */
  abpcRandom: number | undefined;
}

/**
 * Concept-level faithfulness (not in Quantus): delete the concepts (output channels, or a ViT's heads) of `layer`
 * one after another in the order of their CRP relevance for `target` (most relevant first, least relevant first,
 * and random orders), using the pruning package's masks on a copy of the model, and record the mean target logit and the
 * accuracy on `x` after each deletion. If CRP's relevance means something, the logit falls faster when the most
 * relevant concepts go first. The curves do not depend on `batchSize` (image by image or in batches).
 */
export async function conceptDeletion(
  model: tfl.LayersModel,
  data: { x: tf.Tensor4D; labels: readonly number[] },
  options: ConceptDeletionOptions,
): Promise<ConceptDeletionResult> {
  const layers = deletableLayers(model);
  const layer = layers.find((l) => l.name === options.layer);
  if (layer === undefined) {
    throw new CrpError(
      'unknown-layer',
      `unknown layer '${options.layer}'; layers with concepts: ${layers.map((l) => l.name).join(', ')}`,
    );
  }
  const channels = layer.concepts;
  if (options.relevance.length !== channels) {
    throw new CrpError(
      'invalid-shape',
      `relevance has ${options.relevance.length} values; layer '${layer.name}' has ${channels} ${layer.unit}s`,
    );
  }
  const n = data.x.shape[0];
  if (n === 0) throw new CrpError('empty-data', 'no images to delete concepts on; give at least one');
  if (data.labels.length !== n) {
    throw new CrpError(
      'invalid-argument',
      `${data.labels.length} labels for ${n} images; give one per image`,
    );
  }
  const concepts = options.concepts ?? Array.from({ length: channels }, (_, c) => c);
  const badConcept = concepts.find((c) => !Number.isInteger(c) || c < 0 || c >= channels);
  if (badConcept !== undefined) {
    throw new CrpError(
      'invalid-argument',
      `concept ${badConcept} is not a ${layer.unit} of '${layer.name}' (0..${channels - 1})`,
    );
  }
  if (concepts.length === 0) throw new CrpError('empty-data', 'no concepts to delete');
  const batchSize = options.batchSize ?? 32;
  const randomOrders = options.randomOrders ?? 3;
  const rel = Float64Array.from(concepts, (c) => options.relevance[c]!);
  const orders: { order: ConceptOrder; concepts: number[] }[] = [
    { order: 'most-relevant-first', concepts: Array.from(argsort(rel, true), (i) => concepts[i]!) },
    { order: 'least-relevant-first', concepts: Array.from(argsort(rel, false), (i) => concepts[i]!) },
  ];
  const random = seededRandom(options.seed ?? 0);
  for (let r = 0; r < randomOrders; r++) {
    orders.push({
      order: `random-${r + 1}`,
      concepts: Array.from(random.permutation(concepts.length), (i) => concepts[i]!),
    });
  }
  const k = concepts.length;
  const tick = progressTracker(orders.length * (k + 1), options.onProgress, {
    unit: 'masks',
    phase: 'concept deletion',
  });
  const masked = await MaskedModel.create(model, ChannelMask.empty());
  try {
    const curves: ConceptDeletionCurve[] = [];
    for (const { order, concepts: sequence } of orders) {
      const logit: number[] = [];
      const accuracy: number[] = [];
      for (let step = 0; step <= k; step++) {
        // deleting every concept empties the layer: allowed here, it is the curve's end point
        masked.setMask(ChannelMask.of({ [layer.name]: sequence.slice(0, step) }), { force: true });
        const { meanLogit, correct } = await score(
          masked.model,
          data.x,
          data.labels,
          options.target,
          batchSize,
        );
        logit.push(meanLogit);
        accuracy.push(correct);
        tick(1);
      }
      curves.push({ order, concepts: sequence, logit, accuracy, auc: auc(logit) / Math.max(k, 1) });
    }
    const [most, least, ...randoms] = curves;
    const randomAuc =
      randoms.length === 0 ? undefined : randoms.reduce((s, c) => s + c.auc, 0) / randoms.length;
    return {
      layer: layer.name,
      target: options.target,
      curves,
      abpc: least!.auc - most!.auc,
      abpcRandom: randomAuc === undefined ? undefined : randomAuc - most!.auc,
    };
  } finally {
    masked.dispose();
  }
}

/** Mean target logit and accuracy of a model on x, in batches; each image's logit is read on its own, so the
 * batching does not change the sums' order. */
async function score(
  model: tfl.LayersModel,
  x: tf.Tensor4D,
  labels: readonly number[],
  target: number,
  batchSize: number,
) {
  const n = x.shape[0];
  const logits: number[] = [];
  let correct = 0;
  for (let from = 0; from < n; from += batchSize) {
    const size = Math.min(batchSize, n - from);
    const [t, p] = tf.tidy(() => {
      const y = model.predict(tf.slice(x, [from, 0, 0, 0], [size, -1, -1, -1])) as tf.Tensor2D;
      if (target >= y.shape[1]) {
        throw new CrpError(
          'invalid-target',
          `class ${target} does not exist; the model has classes 0..${y.shape[1] - 1}`,
        );
      }
      return [tf.squeeze(tf.slice(y, [0, target], [size, 1]), [1]), tf.argMax(y, 1)];
    });
    const tv = await t.data();
    const pv = await p.data();
    t.dispose();
    p.dispose();
    for (let i = 0; i < size; i++) {
      if (!Number.isFinite(tv[i]!)) {
        throw new CrpError(
          'invalid-value',
          `the model's logit for image ${from + i} is ${tv[i]} after deleting concepts`,
        );
      }
      logits.push(tv[i]!);
      if (pv[i] === labels[from + i]) correct++;
    }
  }
  return { meanLogit: logits.reduce((s, v) => s + v, 0) / n, correct: correct / n };
}
