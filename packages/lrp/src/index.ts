export { CrpError, type CrpErrorCode, listNames } from './errors.js';
export type {
  ActivationName,
  GraphNode,
  NodeKind,
  NodeParams,
  Padding,
} from './graph/types.js';
export { PARAMETRIC_KINDS, CONV_KINDS } from './graph/types.js';
export { ModelGraph } from './graph/model-graph.js';
export { graphFromLayersModel, type GraphOptions, type CustomLayerSpec } from './graph/from-layers-model.js';
export { ForwardPass, forwardNode } from './forward.js';
export type { LinearMap, LinearParams } from './ops/linear.js';
export { linearMapOf } from './ops/linear.js';
export type { Rule, PreparedRule, RuleContext, CachedParams } from './rules/rule.js';
export { basicRule, type BasicRuleSpec, type RuleBranch, type ReducerTerm } from './rules/basic-rule.js';
export { paramModifiers, type InputModifier, type ParamModifier } from './rules/modifiers.js';
export { stabilize } from './rules/stabilizer.js';
export { epsilon, zPlus, alphaBeta, gamma, flat, wSquare, zBox, DEFAULT_STABILIZER } from './rules/lrp-rules.js';
export { pass, norm, gradient } from './rules/structural.js';
export { rules } from './rules/index.js';
export {
  type Composite,
  type NodeMatcher,
  type EpsilonOptions,
  type GammaBoxOptions,
  type CompositeName,
  COMPOSITE_NAMES,
  compositeByName,
  defaultRuleFor,
  layerMapComposite,
  nameMapComposite,
  specialFirstLayerComposite,
  mixedComposite,
  epsilonPlus,
  epsilonPlusFlat,
  epsilonAlpha2Beta1,
  epsilonAlpha2Beta1Flat,
  epsilonGammaBox,
} from './composites.js';
export { type Canonizer, type MergeBatchNormOptions, mergeBatchNorm } from './canonizers.js';
export {
  Attributor,
  attribute,
  disposeResult,
  type AttributorOptions,
  type AttributeOptions,
  type AttributionResult,
  type BackwardOptions,
} from './attributor.js';
