export {
  type AttributeOptions,
  type AttributionResult,
  Attributor,
  type AttributorOptions,
  attribute,
  type BackwardOptions,
  disposeResult,
} from './attributor.js';
export { type Canonizer, type MergeBatchNormOptions, mergeBatchNorm } from './canonizers.js';
export {
  COMPOSITE_NAMES,
  type Composite,
  type CompositeName,
  compositeByName,
  defaultRuleFor,
  type EpsilonOptions,
  epsilonAlpha2Beta1,
  epsilonAlpha2Beta1Flat,
  epsilonGammaBox,
  epsilonPlus,
  epsilonPlusFlat,
  type GammaBoxOptions,
  layerMapComposite,
  mixedComposite,
  type NodeMatcher,
  nameMapComposite,
  specialFirstLayerComposite,
} from './composites.js';
export { CrpError, type CrpErrorCode, isCrpError, listNames } from './errors.js';
export { ForwardPass, forwardNode } from './forward.js';
export { type CustomLayerSpec, type GraphOptions, graphFromLayersModel } from './graph/from-layers-model.js';
export { ModelGraph } from './graph/model-graph.js';
export type {
  ActivationName,
  BatchNormParams,
  ConvParams,
  CustomLayerParams,
  DenseParams,
  GraphNode,
  NodeKind,
  NodeParams,
  Padding,
  PoolParams,
} from './graph/types.js';
export { CONV_KINDS, PARAMETRIC_KINDS } from './graph/types.js';
export {
  adaptiveAvgPool2d,
  adaptiveAvgPool2dTranspose,
  adaptivePoolWindows,
} from './ops/adaptive-avg-pool.js';
export type { LinearMap, LinearParams } from './ops/linear.js';
export { linearMapOf } from './ops/linear.js';
export { type BasicRuleSpec, basicRule, type ReducerTerm, type RuleBranch } from './rules/basic-rule.js';
export { rules } from './rules/index.js';
export {
  alphaBeta,
  DEFAULT_STABILIZER,
  epsilon,
  flat,
  gamma,
  wSquare,
  zBox,
  zPlus,
} from './rules/lrp-rules.js';
export { type InputModifier, type ParamModifier, paramModifiers } from './rules/modifiers.js';
export type { BackwardHint, CachedParams, PreparedRule, Rule, RuleContext } from './rules/rule.js';
export { stabilize } from './rules/stabilizer.js';
export { gradient, norm, pass } from './rules/structural.js';
