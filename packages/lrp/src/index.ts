// biome-ignore-all assist/source/organizeImports: the exports are grouped by topic, as a table of contents
// @crp/lrp: Layer-wise Relevance Propagation for TensorFlow.js models, matching zennit; in Node and in browsers.
// The engine's ops and layer-kind tables that other packages of the toolkit reuse are in '@crp/lrp/internal'.

// attributing: relevance of the input (and of recorded layers) for target classes
export {
  type AdjointOptions,
  type AttributeOptions,
  type AttributionResult,
  Attributor,
  type AttributorOptions,
  attribute,
  type BackwardOptions,
  disposeResult,
} from './attributor.js';

// composites: which rule each layer gets (zennit's built-ins, by layer type, by name, special first layer)
export {
  COMPOSITE_NAMES,
  type Composite,
  type CompositeName,
  compositeByName,
  compositeNameFor,
  defaultRuleFor,
  isTransformer,
  TRANSFORMER_COMPOSITES,
  type AttnLrpOptions,
  attnLrp,
  cpLrp,
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

// rules: zennit's rules, and the parts to build new ones (modifiers, stabiliser, reducer terms)
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
export { gradient, norm, pass, passToFeature } from './rules/structural.js';
export {
  add2,
  cpMatmul,
  layerNormEpsilon,
  linearEpsilon,
  softmaxDT,
  uniformMatmul,
} from './rules/attn-lrp.js';
export { type BasicRuleSpec, basicRule, type ReducerTerm, type RuleBranch } from './rules/basic-rule.js';
export { type InputModifier, type ParamModifier, paramModifiers } from './rules/modifiers.js';
export type { BackwardHint, CachedParams, PreparedRule, Rule, RuleContext } from './rules/rule.js';
export { stabilize } from './rules/stabilizer.js';

// canonizers: graph rewrites before attribution (batch-norm merge, PyTorch's padding, zennit's ResNet canonizer)
export {
  type Canonizer,
  compositeCanonizer,
  type MergeBatchNormOptions,
  mergeBatchNorm,
  mergeZeroPadding,
  resnetCanonizer,
} from './canonizers.js';

// the model graph: one node per layer call, with the layer's parameters; the forward pass that keeps them
export { type CustomLayerSpec, type GraphOptions, graphFromLayersModel } from './graph/from-layers-model.js';
export { ModelGraph } from './graph/model-graph.js';
export type {
  ActivationName,
  BatchNormParams,
  ConvParams,
  CustomLayerParams,
  DenseParams,
  ExplicitPadding,
  GraphNode,
  LayerNormParams,
  NodeKind,
  NodeParams,
  Padding,
  PoolParams,
  TransformerNodeParams,
} from './graph/types.js';

// transformer layers for TF.js models that the engine explains (ViT: class token, position embedding, products
// of two activations, the class-token head)
export {
  ClassToken,
  MatMul,
  type MatMulArgs,
  PositionEmbedding,
  type PositionEmbeddingArgs,
  SelectToken,
  type SelectTokenArgs,
  transformerLayers,
} from './layers/transformer.js';
// PyTorch's Conv2d(groups=g) as a serialisable TF.js layer (ResNeXt)
export { GroupedConv2D, type GroupedConv2DArgs } from './layers/grouped-conv.js';
export { ForwardPass } from './forward.js';
export type { LinearMap, LinearParams } from './ops/linear.js';
