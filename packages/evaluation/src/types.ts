import type * as tf from '@tensorflow/tfjs-core';
import type { Classifier, PredictOptions } from './predict.js';
import type { RandomSource } from './random.js';

/** What a metric evaluates: the model, a batch of inputs with the class to explain for each, and an explanation
 * of each input (Quantus's `model`, `x_batch`, `y_batch`, `a_batch`). The caller owns the tensors. */
export interface MetricInput {
  model: Classifier;
  /** Inputs, NHWC [N, H, W, C], as the model takes them. */
  x: tf.Tensor4D;
  /** The class explained for each sample (the target). */
  labels: readonly number[];
  /** Explanations: [N, H, W] (a heatmap, i.e. relevance summed over the colour channels), [N, H, W, 1] or
   * [N, H, W, C]. */
  explanation: tf.Tensor;
  /** Region masks [N, H, W] (localisation metrics: Quantus's `s_batch`). */
  mask?: tf.Tensor;
}

/** Options every metric run takes beside its own: forward passes, progress and randomness. */
export interface RunOptions extends PredictOptions {
  /** Where random draws come from; default `seededRandom(seed)`. */
  random?: RandomSource;
  /** Seed of the default random source; default 0. */
  seed?: number;
}

/** The result of one metric on one batch: per-sample scores, and curves where the metric has them. */
export interface MetricResult {
  /** The metric's name (as in {@link METRIC_NAMES}). */
  metric: string;
  /** One score per sample (NaN where the metric is undefined, as Quantus returns NaN); for a curve metric the
   * area under the sample's curve. */
  scores: number[];
  /** One curve per sample (PixelFlipping, RegionPerturbation, Selectivity, IROF): the model's output (or its
   * drop) after each perturbation step. */
  curves?: number[][];
  /** Per-layer similarity of each sample's explanation after randomisation (MPRT): `original` first, then the
   * layers in the order they were randomised. */
  layers?: Record<string, number[]>;
  /** Further per-sample values that explain the scores (e.g. Completeness: `relevanceSum` and
   * `outputDifference`; RandomLogit: `offTargets`). */
  details?: Record<string, number[]>;
  /** Mean of `scores` (Quantus's default `aggregate_func`, np.mean: NaN if any score is NaN). */
  aggregate: number;
  /** Whether a higher score means a better explanation (Quantus's `score_direction`). */
  higherIsBetter: boolean;
}

/** The mean of the scores as numpy computes it (NaN propagates). */
export function mean(scores: readonly number[]): number {
  return scores.length === 0 ? Number.NaN : scores.reduce((s, v) => s + v, 0) / scores.length;
}
