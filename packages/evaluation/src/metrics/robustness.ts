import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import { checkLabels, readSamples } from '../data.js';
import { type Explainer, explainAs } from '../explainer.js';
import { type ExplanationProcessing, processAttributions } from '../normalise.js';
import { nanMean, norm2 } from '../numeric.js';
import { randomOf } from '../prepare.js';
import { type MetricResult, mean, type RunOptions } from '../types.js';
import { givenOrExplained, type RandomisationInput } from './randomisation.js';

/** Options of {@link maxSensitivity} and {@link avgSensitivity} (Quantus `MaxSensitivity`, `AvgSensitivity`). */
export interface SensitivityOptions extends ExplanationProcessing {
  /** Perturbed copies per sample; default 200. */
  nrSamples?: number;
  /** Noise is uniform in [-lowerBound, lowerBound) (or [lowerBound, upperBound) when that is given); default
   * 0.2. */
  lowerBound?: number;
  upperBound?: number;
  /** A copy whose predicted class changed counts as NaN and makes the sample's score NaN (Quantus
   * `return_nan_when_prediction_changes`); default false: such copies are skipped. */
  returnNanWhenPredictionChanges?: boolean;
}

async function sensitivity(
  metric: 'MaxSensitivity' | 'AvgSensitivity',
  input: RandomisationInput,
  explainer: Explainer,
  options: SensitivityOptions,
  run: RunOptions,
): Promise<MetricResult> {
  const s = await readSamples(input.x);
  checkLabels(input.labels, s.n);
  const nrSamples = options.nrSamples ?? 200;
  if (!Number.isInteger(nrSamples) || nrSamples < 1) {
    throw new CrpError('invalid-argument', `${metric}: nrSamples is ${nrSamples}; give an integer >= 1`);
  }
  const lb = options.lowerBound ?? 0.2;
  const ub = options.upperBound;
  if (ub !== undefined && !(ub > lb)) {
    throw new CrpError(
      'invalid-argument',
      `${metric}: upperBound ${ub} must be larger than lowerBound ${lb}`,
    );
  }
  const defaults = { normalise: false, abs: false };
  const random = randomOf(run);
  const a = await givenOrExplained(input, explainer, s, options, defaults);
  const denominators = a.values.map(norm2);
  const predicted = options.returnNanWhenPredictionChanges ? await argmaxes(input, s.x) : undefined;
  const values: number[][] = a.values.map(() => []);
  const started = performance.now();
  for (let step = 0; step < nrSamples; step++) {
    const noise =
      ub === undefined ? random.uniform(s.n * s.features, -lb, lb) : random.uniform(s.n * s.features, lb, ub);
    const perturbed = s.x.map((x, i) => x.map((v, f) => v + noise[i * s.features + f]!));
    const changed = predicted === undefined ? undefined : await argmaxes(input, perturbed);
    const xt = tf.tensor4d(concat(perturbed), [s.n, s.height, s.width, s.channels]);
    let b: ReturnType<typeof processAttributions>;
    try {
      b = processAttributions(
        await explainAs(
          explainer,
          input.model,
          xt,
          input.labels,
          s,
          `explanation of perturbed copy ${step + 1}`,
        ),
        options,
        defaults,
      );
    } finally {
      xt.dispose();
    }
    a.values.forEach((ai, i) => {
      const bi = b.values[i]!;
      const diff = Float64Array.from(ai, (v, j) => v - bi[j]!);
      values[i]!.push(
        changed !== undefined && changed[i] !== predicted![i] ? Number.NaN : norm2(diff) / denominators[i]!,
      );
    });
    const elapsedMs = performance.now() - started;
    run.onProgress?.({
      done: step + 1,
      total: nrSamples,
      elapsedMs,
      etaMs: (elapsedMs / (step + 1)) * (nrSamples - step - 1),
      unit: 'perturbations',
      phase: metric,
    });
  }
  const strict = options.returnNanWhenPredictionChanges === true;
  const scores = values.map((v) => {
    if (metric === 'AvgSensitivity') return strict ? mean(v) : nanMean(v);
    const kept = strict ? v : v.filter((x) => !Number.isNaN(x));
    return kept.length === 0 || kept.some(Number.isNaN) ? Number.NaN : Math.max(...kept);
  });
  return { metric, scores, aggregate: mean(scores), higherIsBetter: false };
}

function concat(arrays: Float32Array[]): Float32Array {
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

/** The predicted class of each input. */
async function argmaxes(input: RandomisationInput, xs: Float32Array[]): Promise<number[]> {
  const shape = input.x.shape.slice(1) as [number, number, number];
  const t = tf.tensor4d(concat(xs), [xs.length, ...shape]);
  const y = tf.tidy(() => tf.argMax(input.model.predict(t) as tf.Tensor, 1));
  t.dispose();
  const out = Array.from(await y.data());
  y.dispose();
  return out;
}

/**
 * Max-sensitivity (Yeh et al. 2019): the largest relative change ||a - a'|| / ||a|| of the explanation over
 * `nrSamples` copies of the input with uniform noise (Quantus `MaxSensitivity`; defaults: 200 copies, noise
 * +-0.2, no normalise, no abs). Lower is better.
 */
export function maxSensitivity(
  input: RandomisationInput,
  explainer: Explainer,
  options: SensitivityOptions = {},
  run: RunOptions = {},
): Promise<MetricResult> {
  return sensitivity('MaxSensitivity', input, explainer, options, run);
}

/** Avg-sensitivity (Yeh et al. 2019): as {@link maxSensitivity}, the mean instead of the maximum (Quantus
 * `AvgSensitivity`). Lower is better. */
export function avgSensitivity(
  input: RandomisationInput,
  explainer: Explainer,
  options: SensitivityOptions = {},
  run: RunOptions = {},
): Promise<MetricResult> {
  return sensitivity('AvgSensitivity', input, explainer, options, run);
}
