// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/pruning: concept-level pruning of TF.js models, in Node and in browsers. Writing curves and saving models
// as files is in '@crp/pruning/node'.

// which channels: masks by hand or from a ranking, and the layers that can be pruned
export { ChannelMask, type ChannelMaskJSON } from './channel-mask.js';

// how important each channel is: LRP/CRP relevance and the classic criteria
export {
  activationScores,
  type ChannelScores,
  CRITERIA,
  type CriterionName,
  type CriterionOptions,
  defaultScoredLayers,
  randomScores,
  relevanceScores,
  scoreChannels,
  taylorScores,
  weightScores,
} from './criteria.js';

// pruning a model: the masked copy, fine-tuning it, and the physically smaller export
export { cloneModel, MaskedModel } from './masked-model.js';
export { type PrunePlan, planPruning } from './plan.js';
export {
  type RankedChannel,
  type RankingScope,
  rankChannels,
  type SelectOptions,
  selectLowest,
  topChannels,
} from './ranking.js';

// what pruning costs and gains: sparsity, parameters and multiply-adds
export {
  type CostComparison,
  type CostReport,
  compareCost,
  type LayerCost,
  type LayerSparsity,
  modelCost,
  type SparsityReport,
  sparsity,
} from './sparsity.js';

// experiments: accuracy against the fraction pruned, per criterion; concept pruning per class and layer
export {
  type CriterionJobOptions,
  criterionStrategy,
  type ResolvedCriterionOptions,
} from './criterion-strategy.js';
export {
  type CriterionPartial,
  SUMMED_CRITERIA,
  type SummedCriterion,
} from './criterion-sums.js';
export {
  type ClassEvaluation,
  type ConceptPruningOptions,
  type ConceptPruningResult,
  type ConceptPruningRow,
  type ConceptPruningSummary,
  type CurvePoint,
  type CurveProgress,
  classConceptScores,
  conceptPruning,
  conceptPruningTable,
  curvesChart,
  curvesTable,
  evaluateClasses,
  type PruningCurveOptions,
  type PruningCurvesResult,
  pruningCurves,
  type SampleStats,
} from './experiments.js';
export { exportPruned } from './export.js';
export { type FineTuneOptions, type FineTuneProgress, type FineTuneResult, fineTune } from './fine-tune.js';
export {
  type CheckMaskOptions,
  checkMask,
  type PrunableLayer,
  prunableLayers,
  removableLayers,
  residualSums,
  streamSums,
  sumSources,
} from './layers.js';
export { type HeadLayer, headLayers } from './heads.js';
