import { CrpError, isCrpError, type ProgressCallback } from '@crp/common';
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { checkAttributionShape, checkLabels, checkMaskShape, checkSamplesShape } from './data.js';
import type { Explainer } from './explainer.js';
import { type CompletenessOptions, completeness } from './metrics/axiomatic.js';
import {
  complexity,
  type EffectiveComplexityOptions,
  effectiveComplexity,
  sparseness,
} from './metrics/complexity.js';
import {
  type FaithfulnessCorrelationOptions,
  type FaithfulnessEstimateOptions,
  faithfulnessCorrelation,
  faithfulnessEstimate,
  type IrofOptions,
  irof,
  type MonotonicityCorrelationOptions,
  monotonicityCorrelation,
  type PixelFlippingOptions,
  pixelFlipping,
  type RegionPerturbationOptions,
  regionPerturbation,
  regionPerturbationAbpc,
  type SelectivityOptions,
  selectivity,
} from './metrics/faithfulness.js';
import {
  type AttributionLocalisationOptions,
  attributionLocalisation,
  pointingGame,
  relevanceMassAccuracy,
  relevanceRankAccuracy,
  type TopKIntersectionOptions,
  topKIntersection,
} from './metrics/localisation.js';
import { type MprtOptions, mprt, type RandomLogitOptions, randomLogit } from './metrics/randomisation.js';
import { type RoadOptions, road } from './metrics/road.js';
import { avgSensitivity, maxSensitivity, type SensitivityOptions } from './metrics/robustness.js';
import type { ExplanationProcessing } from './normalise.js';
import type { MetricInput, MetricResult, RunOptions } from './types.js';

/** Every metric by its Quantus class name, grouped as Quantus groups them. */
export const METRIC_NAMES = [
  // faithfulness
  'PixelFlipping',
  'RegionPerturbation',
  'RegionPerturbationABPC',
  'Selectivity',
  'IROF',
  'FaithfulnessCorrelation',
  'FaithfulnessEstimate',
  'MonotonicityCorrelation',
  'ROAD',
  // randomisation
  'MPRT',
  'RandomLogit',
  // localisation
  'PointingGame',
  'RelevanceMassAccuracy',
  'RelevanceRankAccuracy',
  'TopKIntersection',
  'AttributionLocalisation',
  // complexity
  'Sparseness',
  'Complexity',
  'EffectiveComplexity',
  // axiomatic
  'Completeness',
  // robustness
  'MaxSensitivity',
  'AvgSensitivity',
] as const;

/** A metric's name (see {@link METRIC_NAMES}). */
export type MetricName = (typeof METRIC_NAMES)[number];

/** The options of each metric, by name. */
export interface MetricOptionsMap {
  PixelFlipping: PixelFlippingOptions;
  RegionPerturbation: RegionPerturbationOptions;
  RegionPerturbationABPC: Omit<RegionPerturbationOptions, 'order'>;
  Selectivity: SelectivityOptions;
  IROF: Omit<IrofOptions, 'segments'>;
  FaithfulnessCorrelation: FaithfulnessCorrelationOptions;
  FaithfulnessEstimate: FaithfulnessEstimateOptions;
  MonotonicityCorrelation: MonotonicityCorrelationOptions;
  ROAD: RoadOptions;
  MPRT: Omit<MprtOptions, 'randomiseLayer'>;
  RandomLogit: RandomLogitOptions;
  PointingGame: ExplanationProcessing;
  RelevanceMassAccuracy: ExplanationProcessing;
  RelevanceRankAccuracy: ExplanationProcessing;
  TopKIntersection: TopKIntersectionOptions;
  AttributionLocalisation: AttributionLocalisationOptions;
  Sparseness: ExplanationProcessing;
  Complexity: ExplanationProcessing;
  EffectiveComplexity: EffectiveComplexityOptions;
  Completeness: CompletenessOptions;
  MaxSensitivity: SensitivityOptions;
  AvgSensitivity: SensitivityOptions;
}

/** A metric to run: its name, or its name with options. */
export type MetricSpec =
  | MetricName
  | { [K in MetricName]: { name: K; options?: MetricOptionsMap[K] } }[MetricName];

/** The localisation metrics: they score the relevance inside a region, so they need region masks. */
export const LOCALISATION_METRICS: readonly MetricName[] = [
  'PointingGame',
  'RelevanceMassAccuracy',
  'RelevanceRankAccuracy',
  'TopKIntersection',
  'AttributionLocalisation',
];

/** The metrics that call an {@link Explainer} (on a randomised model or on perturbed inputs). */
const NEEDS_EXPLAINER = new Set<MetricName>(['MPRT', 'RandomLogit', 'MaxSensitivity', 'AvgSensitivity']);

/** What {@link evaluate} evaluates. The caller owns the tensors. */
export interface EvaluateInput {
  /** The model (logits out). */
  model: tfl.LayersModel;
  /** Inputs, NHWC. */
  x: tf.Tensor4D;
  /** The class explained for each sample. */
  labels: readonly number[];
  /** Explanations by method name ([N, H, W], [N, H, W, 1] or [N, H, W, C]). */
  explanations?: Record<string, tf.Tensor>;
  /** Explainers by method name: needed by MPRT, RandomLogit and the sensitivities; a method with an explainer
   * but no explanation is explained once here. */
  explainers?: Record<string, Explainer>;
  /** Region masks [N, H, W] (localisation metrics). */
  mask?: tf.Tensor;
  /** Superpixels per sample (IROF); default SLIC of each input. */
  segments?: ArrayLike<number>[];
}

/** The result of {@link evaluate}: per method and metric, a {@link MetricResult}. */
export interface Evaluation {
  methods: string[];
  metrics: MetricName[];
  results: Record<string, Record<string, MetricResult>>;
}

/** Levenshtein distance (case-insensitive), for "did you mean". */
function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[y.length]!;
}

/** Checks a metric name; an unknown one is a {@link CrpError} `unknown-metric` naming the nearest valid names. */
export function metricByName(name: string): MetricName {
  if ((METRIC_NAMES as readonly string[]).includes(name)) return name as MetricName;
  const nearest = [...METRIC_NAMES].sort((a, b) => distance(name, a) - distance(name, b)).slice(0, 3);
  throw new CrpError(
    'unknown-metric',
    `unknown metric '${name}'; did you mean ${nearest.join(', ')}? Valid metrics: ${METRIC_NAMES.join(', ')}`,
    { details: { name, nearest, valid: [...METRIC_NAMES] } },
  );
}

/** Runs one metric on one method's explanation. */
export async function runMetric(
  spec: MetricSpec,
  input: MetricInput & { model: tfl.LayersModel; segments?: ArrayLike<number>[] },
  explainer: Explainer | undefined,
  run: RunOptions = {},
): Promise<MetricResult> {
  const name = metricByName(typeof spec === 'string' ? spec : spec.name);
  const o = (typeof spec === 'string' ? {} : (spec.options ?? {})) as Record<string, unknown>;
  if (NEEDS_EXPLAINER.has(name) && explainer === undefined) {
    throw new CrpError(
      'invalid-argument',
      `${name} needs an explainer for the method (it explains again); none was given`,
    );
  }
  const r = { model: input.model, x: input.x, labels: input.labels, explanation: input.explanation };
  switch (name) {
    case 'PixelFlipping':
      return pixelFlipping(input, o, run);
    case 'RegionPerturbation':
      return regionPerturbation(input, o, run);
    case 'RegionPerturbationABPC':
      return regionPerturbationAbpc(input, o, run);
    case 'Selectivity':
      return selectivity(input, o, run);
    case 'IROF':
      return irof(input, input.segments === undefined ? o : { ...o, segments: input.segments }, run);
    case 'FaithfulnessCorrelation':
      return faithfulnessCorrelation(input, o, run);
    case 'FaithfulnessEstimate':
      return faithfulnessEstimate(input, o, run);
    case 'MonotonicityCorrelation':
      return monotonicityCorrelation(input, o, run);
    case 'ROAD':
      return road(input, o, run);
    case 'MPRT':
      return mprt(r, explainer!, o, run);
    case 'RandomLogit':
      return randomLogit(r, explainer!, o, run);
    case 'PointingGame':
      return pointingGame(input, o);
    case 'RelevanceMassAccuracy':
      return relevanceMassAccuracy(input, o);
    case 'RelevanceRankAccuracy':
      return relevanceRankAccuracy(input, o);
    case 'TopKIntersection':
      return topKIntersection(input, o);
    case 'AttributionLocalisation':
      return attributionLocalisation(input, o);
    case 'Sparseness':
      return sparseness(input, o);
    case 'Complexity':
      return complexity(input, o);
    case 'EffectiveComplexity':
      return effectiveComplexity(input, o);
    case 'Completeness':
      return completeness(input, o, run);
    case 'MaxSensitivity':
      return maxSensitivity(r, explainer!, o, run);
    case 'AvgSensitivity':
      return avgSensitivity(r, explainer!, o, run);
  }
}

/** Checks the batch, labels, masks, given explanations and explainers before any method is explained or metric run,
 * so that a mistake is said at once, not after the metrics of the methods before it. */
function checkEvaluateInput(
  input: EvaluateInput,
  methods: readonly string[],
  metrics: readonly MetricName[],
): void {
  const shape = checkSamplesShape(input.x);
  checkLabels(input.labels, shape[0]);
  if (input.mask !== undefined) checkMaskShape(input.mask, [shape[0], shape[1], shape[2]]);
  const needMask = metrics.filter((m) => LOCALISATION_METRICS.includes(m));
  if (input.mask === undefined && needMask.length > 0) {
    throw new CrpError(
      'invalid-argument',
      `${needMask.join(', ')} needs region masks (mask: [N, H, W]); none were given`,
    );
  }
  const needExplainer = metrics.filter((m) => NEEDS_EXPLAINER.has(m));
  for (const method of methods) {
    const given = input.explanations?.[method];
    if (given !== undefined) checkAttributionShape(given, shape, `explanation '${method}'`);
    if (needExplainer.length > 0 && input.explainers?.[method] === undefined) {
      throw new CrpError(
        'invalid-argument',
        `method '${method}': ${needExplainer.join(', ')} needs an explainer for the method (it explains again); ` +
          'give one in explainers, or leave these metrics out',
      );
    }
  }
}

/**
 * Evaluates several explanation methods with several metrics on one batch (Quantus's `evaluate(metrics,
 * xai_methods)`): each method's explanation is computed at most once (from its explainer, when not given), each
 * metric batches its perturbed inputs through the model. Progress events carry the phase `method: metric`.
 *
 * ```ts
 * const evaluation = await evaluate(
 *   { model, x, labels, explainers: { lrp: lrpExplainer('epsilon_plus_flat'), gxi: gradientXInput() } },
 *   ['PixelFlipping', { name: 'RegionPerturbation', options: { patchSize: 16 } }, 'Sparseness'],
 * );
 * evaluation.results.lrp!.PixelFlipping!.scores; // one AUC per sample
 * ```
 */
export async function evaluate(
  input: EvaluateInput,
  metrics: readonly MetricSpec[],
  run: RunOptions = {},
): Promise<Evaluation> {
  const names = metrics.map((m) => metricByName(typeof m === 'string' ? m : m.name));
  if (names.length === 0)
    throw new CrpError('invalid-argument', `no metrics given; valid: ${METRIC_NAMES.join(', ')}`);
  const methods = [
    ...new Set([...Object.keys(input.explanations ?? {}), ...Object.keys(input.explainers ?? {})]),
  ];
  if (methods.length === 0) {
    throw new CrpError(
      'invalid-argument',
      'no explanation methods: give explanations and/or explainers by method name',
    );
  }
  checkEvaluateInput(input, methods, names);
  const results: Record<string, Record<string, MetricResult>> = {};
  for (const method of methods) {
    const explainer = input.explainers?.[method];
    const given = input.explanations?.[method];
    const explanation = given ?? (await explainer!(input.model, input.x, input.labels));
    try {
      results[method] = {};
      for (const [k, spec] of metrics.entries()) {
        const name = names[k]!;
        const onProgress: ProgressCallback | undefined =
          run.onProgress && ((p) => run.onProgress!({ ...p, phase: `${method}: ${name}` }));
        const metricInput = {
          model: input.model,
          x: input.x,
          labels: input.labels,
          explanation,
          ...(input.mask ? { mask: input.mask } : {}),
          ...(input.segments ? { segments: input.segments } : {}),
        };
        results[method]![name] = await runMetric(spec, metricInput, explainer, {
          ...run,
          ...(onProgress ? { onProgress } : {}),
        }).catch((err: unknown) => {
          // several methods share the inputs: say whose explanation the metric was scoring
          if (!isCrpError(err)) throw err;
          throw new CrpError(err.code, `method '${method}': ${err.message}`, {
            cause: err,
            details: { ...err.details, method, metric: name },
          });
        });
      }
    } finally {
      if (given === undefined) explanation.dispose();
    }
  }
  return { methods, metrics: names, results };
}
