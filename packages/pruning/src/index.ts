export { ChannelMask, type ChannelMaskJSON } from './channel-mask.js';
export {
  activationScores,
  type ChannelScores,
  CRITERIA,
  type CriterionName,
  type CriterionOptions,
  defaultScoredLayers,
  type ReferenceData,
  randomScores,
  relevanceScores,
  scoreChannels,
  taylorScores,
  weightScores,
} from './criteria.js';
export {
  type CriterionJobOptions,
  criterionStrategy,
  type ResolvedCriterionOptions,
} from './criterion-strategy.js';
export {
  type CriterionPartial,
  criterionBatch,
  criterionValues,
  emptyCriterionPartial,
  mergeCriterionPartials,
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
  predictAll,
  pruningCurves,
  type SampleStats,
  statsOf,
  writeCurves,
} from './experiments.js';
export { exportPruned } from './export.js';
export { type FineTuneOptions, type FineTuneProgress, type FineTuneResult, fineTune } from './fine-tune.js';
export { loadModel, type SavedModelInfo, saveModel } from './io.js';
export {
  type ChannelFlow,
  type CheckMaskOptions,
  channelFlow,
  checkMask,
  type PrunableLayer,
  prunableLayers,
} from './layers.js';
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
