import type * as tf from '@tensorflow/tfjs-core';
import { CrpError } from './errors.js';
import type { ModelGraph } from './graph/model-graph.js';
import { CONV_KINDS, type GraphNode, type NodeKind, PARAMETRIC_KINDS } from './graph/types.js';
import {
  add2,
  cpMatmul,
  layerNormEpsilon,
  linearEpsilon,
  softmaxDT,
  uniformMatmul,
} from './rules/attn-lrp.js';
import { alphaBeta, epsilon, flat, gamma, zBox, zPlus } from './rules/lrp-rules.js';
import type { Rule } from './rules/rule.js';
import { gradient, norm, pass, passToFeature } from './rules/structural.js';

/** Maps graph nodes to rules. Returning undefined leaves the node to the default of its kind
 * ({@link defaultRuleFor}). */
export interface Composite {
  readonly name: string;
  ruleFor(node: GraphNode, graph: ModelGraph): Rule | undefined;
}

/** Which nodes an entry of a layer map applies to: a kind, several kinds, or a predicate. */
export type NodeMatcher = NodeKind | readonly NodeKind[] | ((node: GraphNode) => boolean);

function matches(m: NodeMatcher, node: GraphNode): boolean {
  if (typeof m === 'function') return m(node);
  if (typeof m === 'string') return node.kind === m;
  return m.includes(node.kind);
}

/** zennit's base entries, shared by every built-in composite: activations and batch norm pass relevance
 * unchanged, average pooling and Add split it proportionally (Norm), max pooling takes the plain gradient; a
 * gated product (squeeze-excitation) gives its relevance to the feature branch ({@link passToFeature}). */
export function defaultRuleFor(node: GraphNode, graph: ModelGraph): Rule {
  const custom = graph.customRules.get(node.id);
  if (custom !== undefined) return custom;
  switch (node.kind) {
    case 'activation':
    case 'batchNorm':
      return pass();
    case 'avgPool2d':
    case 'adaptiveAvgPool2d':
    case 'globalAvgPool2d':
    case 'add':
      return norm();
    case 'multiply':
      return passToFeature();
    // transformer kinds have no zennit rule: they get AttnLRP's
    case 'layerNorm':
      return layerNormEpsilon();
    case 'matMul':
      return uniformMatmul();
    case 'positionEmbedding':
      return add2();
    default:
      return gradient();
  }
}

/** Layer map by kind (or predicate): the first matching entry wins. */
export function layerMapComposite(
  entries: readonly [NodeMatcher, Rule][],
  name = 'LayerMapComposite',
): Composite {
  return {
    name,
    ruleFor: (node) => entries.find(([m]) => matches(m, node))?.[1],
  };
}

/** Rules by layer name (or node id): `{ block1_conv1: rules.flat() }`. */
export function nameMapComposite(
  byName: Readonly<Record<string, Rule>>,
  name = 'NameMapComposite',
): Composite {
  const checked = new WeakSet<ModelGraph>();
  return {
    name,
    ruleFor: (node, graph) => {
      if (!checked.has(graph)) {
        // unknown names fail loudly, with the valid ones, even if every node that asks has a rule
        for (const key of Object.keys(byName)) graph.node(key);
        checked.add(graph);
      }
      return byName[node.id] ?? byName[node.layerName];
    },
  };
}

/** A layer map plus a special rule for the first node (in topological order) that `first` matches, as
 * zennit's SpecialFirstLayerMapComposite. */
export function specialFirstLayerComposite(
  layerMap: readonly [NodeMatcher, Rule][],
  first: readonly [NodeMatcher, Rule][],
  name = 'SpecialFirstLayerMapComposite',
): Composite {
  const base = layerMapComposite(layerMap);
  const firstIds = new WeakMap<ModelGraph, string | null>();
  return {
    name,
    ruleFor: (node, graph) => {
      if (!firstIds.has(graph)) {
        const found = graph.nodes.find((n) => first.some(([m]) => matches(m, n)));
        firstIds.set(graph, found?.id ?? null);
      }
      if (firstIds.get(graph) === node.id) return first.find(([m]) => matches(m, node))?.[1];
      return base.ruleFor(node, graph);
    },
  };
}

/** Several composites in order: the first that has a rule for a node wins (e.g. a name map over a
 * built-in composite). */
export function mixedComposite(composites: readonly Composite[], name = 'MixedComposite'): Composite {
  return {
    name,
    ruleFor: (node, graph) => {
      for (const c of composites) {
        const r = c.ruleFor(node, graph);
        if (r !== undefined) return r;
      }
      return undefined;
    },
  };
}

const conv = CONV_KINDS;
const dense: readonly NodeKind[] = ['dense'];
const linear = PARAMETRIC_KINDS;

export interface EpsilonOptions {
  /** epsilon of the Epsilon rule on dense layers (default 1e-6) */
  epsilon?: number;
  /** stabiliser of the other rules (default 1e-6) */
  stabilizer?: number;
}

/** EpsilonPlus: conv -> ZPlus, dense -> Epsilon. */
export function epsilonPlus(o: EpsilonOptions = {}): Composite {
  return layerMapComposite(
    [
      [conv, zPlus(o.stabilizer)],
      [dense, epsilon(o.epsilon)],
    ],
    'EpsilonPlus',
  );
}

/** EpsilonPlusFlat: as EpsilonPlus, and the first conv/dense layer -> Flat. */
export function epsilonPlusFlat(o: EpsilonOptions = {}): Composite {
  return specialFirstLayerComposite(
    [
      [conv, zPlus(o.stabilizer)],
      [dense, epsilon(o.epsilon)],
    ],
    [[linear, flat(o.stabilizer)]],
    'EpsilonPlusFlat',
  );
}

/** EpsilonAlpha2Beta1: conv -> AlphaBeta(2, 1), dense -> Epsilon. */
export function epsilonAlpha2Beta1(o: EpsilonOptions = {}): Composite {
  return layerMapComposite(
    [
      [conv, alphaBeta(2, 1, o.stabilizer)],
      [dense, epsilon(o.epsilon)],
    ],
    'EpsilonAlpha2Beta1',
  );
}

/** EpsilonAlpha2Beta1Flat: as EpsilonAlpha2Beta1, and the first conv/dense layer -> Flat. */
export function epsilonAlpha2Beta1Flat(o: EpsilonOptions = {}): Composite {
  return specialFirstLayerComposite(
    [
      [conv, alphaBeta(2, 1, o.stabilizer)],
      [dense, epsilon(o.epsilon)],
    ],
    [[linear, flat(o.stabilizer)]],
    'EpsilonAlpha2Beta1Flat',
  );
}

export interface GammaBoxOptions extends EpsilonOptions {
  /** lowest input value (number or tensor broadcastable to the input); required */
  low: number | tf.Tensor;
  /** highest input value; required */
  high: number | tf.Tensor;
  /** gamma of the Gamma rule on conv layers (default 0.25) */
  gamma?: number;
}

/** EpsilonGammaBox: conv -> Gamma(0.25), dense -> Epsilon, first conv -> ZBox(low, high). */
export function epsilonGammaBox(o: GammaBoxOptions): Composite {
  if (o === undefined || o.low === undefined || o.high === undefined) {
    throw new CrpError(
      'invalid-argument',
      'EpsilonGammaBox needs the input range: epsilonGammaBox({ low, high }), e.g. { low: 0, high: 1 } for images in [0, 1]',
    );
  }
  return specialFirstLayerComposite(
    [
      [conv, gamma(o.gamma ?? 0.25, o.stabilizer)],
      [dense, epsilon(o.epsilon)],
    ],
    [[conv, zBox(o.low, o.high, o.stabilizer)]],
    'EpsilonGammaBox',
  );
}

export interface AttnLrpOptions {
  /** epsilon of LinearEpsilon on Dense and Conv2D layers (default 1e-6, LXT's) */
  epsilon?: number;
}

const isSoftmax = (n: GraphNode) => n.kind === 'activation' && n.activation === 'softmax';

/** The entries AttnLRP and CP-LRP share: LXT's explicit rules outside the attention weights. */
function transformerEntries(o: AttnLrpOptions): [NodeMatcher, Rule][] {
  return [
    [linear, linearEpsilon(o.epsilon ?? 1e-6)],
    ['layerNorm', layerNormEpsilon(1e-6)],
    [isSoftmax, softmaxDT()],
    // GELU and the other element-wise non-linearities: the identity rule
    ['activation', pass()],
    [['add', 'positionEmbedding'], add2(1e-8)],
  ];
}

/**
 * AttnLRP as LXT's explicit rules (`lxt.explicit.functional`): Dense/Conv2D -> LinearEpsilon(1e-6),
 * LayerNormalization -> LayerNormEpsilon, softmax -> SoftmaxDT, products of two activations -> UniformMatmul(1e-8),
 * Add and position embeddings -> Add2(1e-8), GELU and other activations -> Pass (the identity rule).
 */
export function attnLrp(o: AttnLrpOptions = {}): Composite {
  return layerMapComposite([['matMul', uniformMatmul(1e-8)], ...transformerEntries(o)], 'AttnLRP');
}

/** CP-LRP (AttnLRP outside attention; no relevance through the attention weights): as {@link attnLrp}, but the
 * attention-weighted values get CPMatmul (values only) and queries and keys receive none. */
export function cpLrp(o: AttnLrpOptions = {}): Composite {
  return layerMapComposite([['matMul', cpMatmul(1e-6)], ...transformerEntries(o)], 'CP-LRP');
}

/** Names of the built-in composites, for configs and the CLI. */
export const COMPOSITE_NAMES = [
  'epsilon_plus',
  'epsilon_plus_flat',
  'epsilon_alpha2_beta1',
  'epsilon_alpha2_beta1_flat',
  'epsilon_gamma_box',
  'attn_lrp',
  'cp_lrp',
] as const;
export type CompositeName = (typeof COMPOSITE_NAMES)[number];

/** The built-in composites written for transformers (LXT's rules for LayerNorm, softmax and products of two
 * activations); the others are zennit's composites for CNNs. */
export const TRANSFORMER_COMPOSITES = ['attn_lrp', 'cp_lrp'] as const satisfies readonly CompositeName[];

/** A model with products of two activations (attention), such as a ViT of @crp/models. */
export function isTransformer(graph: ModelGraph): boolean {
  return graph.nodes.some((n) => n.kind === 'matMul');
}

/**
 * The built-in composite a model is explained with: `name` if given and it fits, else the model's default
 * (`attn_lrp` for a transformer, `epsilon_plus_flat`, zennit-crp's README composite, otherwise). The one place
 * that decides it: the Attributor, the study and every `crp` command ask here. A CNN composite on a transformer
 * is refused (`unsupported-composite`, listing the composites that fit): its rules leave softmax and LayerNorm
 * to defaults that LXT does not use.
 */
export function compositeNameFor(graph: ModelGraph, name?: string): CompositeName {
  const transformer = isTransformer(graph);
  if (name === undefined) return transformer ? 'attn_lrp' : 'epsilon_plus_flat';
  if (!(COMPOSITE_NAMES as readonly string[]).includes(name)) compositeByName(name); // throws unknown-composite
  const known = name as CompositeName;
  if (transformer && !(TRANSFORMER_COMPOSITES as readonly string[]).includes(known)) {
    const products = graph.nodes.filter((n) => n.kind === 'matMul').map((n) => n.id);
    throw new CrpError(
      'unsupported-composite',
      `composite '${known}' is for CNNs; this model is a transformer (products of two activations: ` +
        `${products.slice(0, 2).join(', ')}${products.length > 2 ? ', ...' : ''}), explained with ` +
        `${TRANSFORMER_COMPOSITES.join(' or ')}`,
      { details: { composite: known, valid: [...TRANSFORMER_COMPOSITES] } },
    );
  }
  return known;
}

/** A built-in composite by name. `epsilon_gamma_box` needs `{ low, high }`. */
export function compositeByName(name: string, options: Partial<GammaBoxOptions> = {}): Composite {
  switch (name as CompositeName) {
    case 'epsilon_plus':
      return epsilonPlus(options);
    case 'epsilon_plus_flat':
      return epsilonPlusFlat(options);
    case 'epsilon_alpha2_beta1':
      return epsilonAlpha2Beta1(options);
    case 'epsilon_alpha2_beta1_flat':
      return epsilonAlpha2Beta1Flat(options);
    case 'epsilon_gamma_box':
      return epsilonGammaBox(options as GammaBoxOptions);
    case 'attn_lrp':
      return attnLrp(options);
    case 'cp_lrp':
      return cpLrp(options);
    default:
      throw new CrpError(
        'unknown-composite',
        `unknown composite '${name}'; valid names: ${COMPOSITE_NAMES.join(', ')}`,
      );
  }
}
