// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/evaluation: can I trust this explanation? Quantus's metrics for TF.js explanations, and concept deletion.

// evaluating several methods with several metrics in one call
export {
  type EvaluateInput,
  type Evaluation,
  evaluate,
  LOCALISATION_METRICS,
  METRIC_NAMES,
  type MetricName,
  type MetricOptionsMap,
  type MetricSpec,
  metricByName,
  runMetric,
} from './evaluate.js';
export type { MetricInput, MetricResult, RunOptions } from './types.js';

// faithfulness: perturb what the explanation calls relevant, watch the output
export {
  type CorrelationName,
  type FaithfulnessCorrelationOptions,
  type FaithfulnessEstimateOptions,
  faithfulnessCorrelation,
  faithfulnessEstimate,
  type IrofOptions,
  irof,
  type MonotonicityCorrelationOptions,
  monotonicityCorrelation,
  type PerturbationOptions,
  type PixelFlippingOptions,
  pixelFlipping,
  type RegionPerturbationOptions,
  regionPerturbation,
  regionPerturbationAbpc,
  type SelectivityOptions,
  selectivity,
} from './metrics/faithfulness.js';
export { noisyLinearImputation, type RoadOptions, road } from './metrics/road.js';
export { type SlicImage, type SlicOptions, slic } from './slic.js';

// randomisation: does the explanation change when the model or the class does?
export {
  type MprtOptions,
  mprt,
  type RandomisationInput,
  type RandomLogitOptions,
  randomLogit,
  resetParameters,
  type SimilarityName,
} from './metrics/randomisation.js';

// localisation: relevance inside a known region
export {
  type AttributionLocalisationOptions,
  attributionLocalisation,
  pointingGame,
  relevanceMassAccuracy,
  relevanceRankAccuracy,
  type TopKIntersectionOptions,
  topKIntersection,
} from './metrics/localisation.js';

// complexity, axiomatic, robustness
export {
  complexity,
  type EffectiveComplexityOptions,
  effectiveComplexity,
  sparseness,
} from './metrics/complexity.js';
export { type CompletenessOptions, completeness } from './metrics/axiomatic.js';
export { avgSensitivity, maxSensitivity, type SensitivityOptions } from './metrics/robustness.js';

// concept level: delete CRP concepts in order of relevance, watch the class logit
export {
  type ConceptDeletionCurve,
  type ConceptDeletionOptions,
  type ConceptDeletionResult,
  type ConceptOrder,
  conceptDeletion,
} from './concepts.js';

// the parts: explainers, baselines, normalisation, randomness, the numerical kernels, batched prediction
export {
  type CascadeSteps,
  type Explainer,
  type ExplainerSession,
  gradientXInput,
  lrpExplainer,
  randomExplainer,
} from './explainer.js';
export { BLUR_KERNEL_SIZE, blurAt, PERTURB_BASELINES, type PerturbBaseline } from './baselines.js';
export type { ExplanationProcessing, NormaliseName } from './normalise.js';
export { type RandomSource, seededRandom } from './random.js';
export { argsort, auc, pearson, ranks, spearman, ssim } from './numeric.js';
export { type Classifier, type PredictOptions, predictTargets, type ScoredInput } from './predict.js';
