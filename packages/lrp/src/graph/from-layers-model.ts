import type { Tensor } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { CrpError } from '../errors.js';
import type { Rule } from '../rules/rule.js';
import { ModelGraph } from './model-graph.js';
import { describeTransformerLayer, TRANSFORMER_CLASSES } from './transformer-layers.js';
import type { ActivationName, GraphNode, NodeKind, NodeParams, Padding } from './types.js';

/** How to run a layer class that @crp/lrp does not know: its forward computation and the rule that sends
 * relevance through it (e.g. `rules.pass()` for an element-wise layer). */
export interface CustomLayerSpec {
  forward: (inputs: Tensor[]) => Tensor;
  rule: Rule;
}

export interface GraphOptions {
  /** Keep a final softmax in the prediction and attribute through it (Pass). Default false: the prediction
   * and the initial relevance are the logits, as users of LRP expect. */
  keepSoftmax?: boolean;
  /** Handlers for layer classes the engine does not support, keyed by TF.js class name. */
  customLayers?: Record<string, CustomLayerSpec>;
}

// Minimal structural views of tfjs-layers internals that the graph walk uses (stable since tfjs 1.x).
interface SymbolicTensorLike {
  sourceLayer: LayerLike;
  nodeIndex: number;
  tensorIndex: number;
  shape: (number | null)[];
}
interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): Tensor[];
  inboundNodes: { inputTensors: SymbolicTensorLike[] }[];
}

const SUPPORTED_CLASSES = [
  'InputLayer',
  'Conv2D',
  'DepthwiseConv2D',
  'GroupedConv2D',
  'Dense',
  'ReLU',
  'LeakyReLU',
  'ELU',
  'Softmax',
  'Activation',
  'MaxPooling2D',
  'AveragePooling2D',
  'AdaptiveAveragePooling2D',
  'PaddedMaxPooling2D',
  'HardSigmoid',
  'HardSwish',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'Flatten',
  'Reshape',
  'Dropout',
  'SpatialDropout1D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'BatchNormalization',
  'ZeroPadding2D',
  'Add',
  'Concatenate',
  'Multiply',
  ...TRANSFORMER_CLASSES,
];

const ACTIVATIONS: Record<string, ActivationName> = {
  linear: 'linear',
  relu: 'relu',
  relu6: 'relu6',
  softmax: 'softmax',
  sigmoid: 'sigmoid',
  tanh: 'tanh',
  elu: 'elu',
  selu: 'selu',
  softplus: 'softplus',
  softsign: 'softsign',
  swish: 'swish',
  gelu: 'gelu',
};

function activationOf(layer: LayerLike, value: unknown): ActivationName {
  const name = value === undefined || value === null ? 'linear' : String(value);
  const act = ACTIVATIONS[name];
  if (act === undefined) {
    throw new CrpError(
      'unsupported-activation',
      `layer '${layer.name}' uses activation '${name}', which @crp/lrp cannot run; supported: ${Object.keys(ACTIVATIONS).join(', ')}`,
    );
  }
  return act;
}

function pair(value: unknown, what: string, layer: LayerLike): [number, number] {
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value) && value.length === 2) return [Number(value[0]), Number(value[1])];
  throw new CrpError(
    'unsupported-layer',
    `layer '${layer.name}': cannot read ${what} ${JSON.stringify(value)}`,
  );
}

function padding(value: unknown, layer: LayerLike): Padding {
  if (value === 'same' || value === 'valid') return value;
  throw new CrpError(
    'unsupported-layer',
    `layer '${layer.name}' uses padding '${String(value)}'; supported: 'same', 'valid'`,
  );
}

function requireChannelsLast(config: Record<string, unknown>, layer: LayerLike): void {
  const format = config.dataFormat;
  if (format !== undefined && format !== 'channelsLast') {
    throw new CrpError(
      'unsupported-layer',
      `layer '${layer.name}' uses dataFormat '${String(format)}'; @crp/lrp works on NHWC (channelsLast) models`,
    );
  }
}

interface Described {
  kind: NodeKind;
  activation: ActivationName;
  params: NodeParams;
  customRule?: Rule;
}

function describe(layer: LayerLike, options: GraphOptions, outputRank: number): Described {
  const cls = layer.getClassName();
  const config = layer.getConfig();
  const weights = layer.getWeights();
  const custom = options.customLayers?.[cls];
  if (custom !== undefined) {
    return {
      kind: 'custom',
      activation: 'linear',
      params: { kind: 'custom', forward: custom.forward },
      customRule: custom.rule,
    };
  }
  switch (cls) {
    case 'InputLayer':
      return { kind: 'input', activation: 'linear', params: { kind: 'input' } };
    case 'Conv2D':
    case 'DepthwiseConv2D':
    case 'GroupedConv2D':
      return describeConvolution(layer, cls, config, weights);
    case 'Dense':
      return {
        kind: 'dense',
        activation: activationOf(layer, config.activation),
        params: {
          kind: 'dense',
          kernel: weights[0]!,
          bias: config.useBias === false ? null : (weights[1] ?? null),
        },
      };
    case 'Activation':
      return {
        kind: 'activation',
        activation: activationOf(layer, config.activation),
        params: { kind: 'activation' },
      };
    case 'ReLU': {
      const max = config.maxValue;
      if (max !== null && max !== undefined && max !== 6) {
        throw new CrpError(
          'unsupported-layer',
          `layer '${layer.name}': ReLU with maxValue ${String(max)}; supported: none or 6`,
        );
      }
      return { kind: 'activation', activation: max === 6 ? 'relu6' : 'relu', params: { kind: 'activation' } };
    }
    case 'LeakyReLU':
      return {
        kind: 'activation',
        activation: 'leakyRelu',
        params: { kind: 'activation', alpha: Number(config.alpha ?? 0.3) },
      };
    case 'ELU':
      return { kind: 'activation', activation: 'elu', params: { kind: 'activation' } };
    // HardSigmoid and HardSwish: layer classes of @crp/models (known here by their names and configs only)
    case 'HardSigmoid':
      return {
        kind: 'activation',
        activation: 'hardSigmoid',
        params: {
          kind: 'activation',
          alpha: Number(config.alpha ?? 1 / 6),
          beta: Number(config.beta ?? 0.5),
        },
      };
    case 'HardSwish':
      return { kind: 'activation', activation: 'hardSwish', params: { kind: 'activation' } };
    case 'Softmax': {
      const axis = Number(config.axis ?? -1);
      if (axis !== -1 && axis !== outputRank - 1) {
        throw new CrpError(
          'unsupported-layer',
          `layer '${layer.name}': softmax over axis ${axis}; supported: the last axis`,
        );
      }
      return { kind: 'activation', activation: 'softmax', params: { kind: 'activation' } };
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      requireChannelsLast(config, layer);
      const kind = cls === 'MaxPooling2D' ? 'maxPool2d' : 'avgPool2d';
      const poolSize = pair(config.poolSize ?? 2, 'poolSize', layer);
      return {
        kind,
        activation: 'linear',
        params: {
          kind,
          poolSize,
          strides: pair(config.strides ?? poolSize, 'strides', layer),
          padding: padding(config.padding ?? 'valid', layer),
        },
      };
    }
    case 'PaddedMaxPooling2D': {
      // PyTorch's MaxPool2d(padding=p), a layer class of @crp/models (known here by its name and config only)
      requireChannelsLast(config, layer);
      const poolSize = pair(config.poolSize, 'poolSize', layer);
      return {
        kind: 'maxPool2d',
        activation: 'linear',
        params: {
          kind: 'maxPool2d',
          poolSize,
          strides: pair(config.strides ?? poolSize, 'strides', layer),
          padding: zeroPaddingOf(config.padding),
        },
      };
    }
    case 'AdaptiveAveragePooling2D': {
      // PyTorch's AdaptiveAvgPool2d, a layer class of @crp/models (known here by its name and config only)
      requireChannelsLast(config, layer);
      const outputSize = pair(config.outputSize, 'outputSize', layer);
      if (!outputSize.every((v) => Number.isInteger(v) && v >= 1)) {
        throw new CrpError(
          'unsupported-layer',
          `layer '${layer.name}': outputSize ${JSON.stringify(config.outputSize)}; positive integers are needed`,
        );
      }
      return {
        kind: 'adaptiveAvgPool2d',
        activation: 'linear',
        params: { kind: 'adaptiveAvgPool2d', outputSize },
      };
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D': {
      requireChannelsLast(config, layer);
      const kind = cls === 'GlobalAveragePooling2D' ? 'globalAvgPool2d' : 'globalMaxPool2d';
      return { kind, activation: 'linear', params: { kind } };
    }
    case 'Flatten':
      requireChannelsLast(config, layer);
      return { kind: 'flatten', activation: 'linear', params: { kind: 'flatten' } };
    case 'Reshape':
      return {
        kind: 'reshape',
        activation: 'linear',
        params: { kind: 'reshape', targetShape: (config.targetShape as number[]).map(Number) },
      };
    case 'Dropout':
    case 'SpatialDropout1D':
    case 'GaussianNoise':
    case 'GaussianDropout':
    case 'AlphaDropout':
      // inference: the identity
      return { kind: 'identity', activation: 'linear', params: { kind: 'identity' } };
    case 'BatchNormalization':
      return describeBatchNorm(layer, config, weights, outputRank);
    case 'ZeroPadding2D':
      requireChannelsLast(config, layer);
      return {
        kind: 'zeroPadding2d',
        activation: 'linear',
        params: { kind: 'zeroPadding2d', padding: zeroPaddingOf(config.padding) },
      };
    case 'Add':
      return { kind: 'add', activation: 'linear', params: { kind: 'add' } };
    case 'Multiply':
      // the product of two branches; the first input is the feature map, the second the gate (see passToFeature)
      if (layer.inboundNodes[0]?.inputTensors.length !== 2) {
        throw new CrpError(
          'unsupported-layer',
          `layer '${layer.name}' (Multiply) has ${layer.inboundNodes[0]?.inputTensors.length ?? 0} inputs; supported: 2 (a feature map and its gate)`,
        );
      }
      return { kind: 'multiply', activation: 'linear', params: { kind: 'multiply' } };
    case 'Concatenate': {
      const axis = Number(config.axis ?? -1);
      return {
        kind: 'concatenate',
        activation: 'linear',
        params: { kind: 'concatenate', axis: axis < 0 ? outputRank + axis : axis },
      };
    }
    default: {
      const transformer = describeTransformerLayer(layer, cls, outputRank);
      if (transformer !== undefined) return { ...transformer, activation: 'linear' };
      const nested = ['Sequential', 'Functional', 'Model', 'LayersModel'].includes(cls);
      throw new CrpError(
        'unsupported-layer',
        nested
          ? `layer '${layer.name}' is a nested model (${cls}); flatten it into one model (call its layers on the outer model's tensors) before attribution`
          : `layer '${layer.name}' of class ${cls} is not supported by @crp/lrp. Supported classes: ${SUPPORTED_CLASSES.join(', ')}. ` +
              `To attribute through it, pass options.customLayers = { ${cls}: { forward, rule } }, e.g. with rules.pass() for an element-wise layer.`,
      );
    }
  }
}

function describeConvolution(
  layer: LayerLike,
  cls: string,
  config: Record<string, unknown>,
  weights: Tensor[],
): Described {
  requireChannelsLast(config, layer);
  const dilation = pair(config.dilationRate ?? 1, 'dilationRate', layer);
  const kind = cls === 'DepthwiseConv2D' ? 'depthwiseConv2d' : 'conv2d';
  // GroupedConv2D (layers/grouped-conv.ts): a conv2d node with PyTorch's groups
  const groups = cls === 'GroupedConv2D' ? { groups: Number(config.groups) } : {};
  return {
    kind,
    activation: activationOf(layer, config.activation),
    params: {
      kind,
      ...groups,
      kernel: weights[0]!,
      bias: config.useBias === false ? null : (weights[1] ?? null),
      strides: pair(config.strides ?? 1, 'strides', layer),
      padding: padding(config.padding, layer),
      ...(dilation[0] !== 1 || dilation[1] !== 1 ? { dilations: dilation } : {}),
    },
  };
}

function describeBatchNorm(
  layer: LayerLike,
  config: Record<string, unknown>,
  weights: Tensor[],
  outputRank: number,
): Described {
  const axis = Number(config.axis ?? -1);
  if (axis !== -1 && axis !== outputRank - 1) {
    throw new CrpError(
      'unsupported-layer',
      `layer '${layer.name}': BatchNormalization over axis ${axis}; supported: the channel (last) axis`,
    );
  }
  // the weights list holds gamma and beta only when scale / center are on
  let i = 0;
  const gamma = config.scale !== false ? weights[i++]! : null;
  const beta = config.center !== false ? weights[i++]! : null;
  return {
    kind: 'batchNorm',
    activation: 'linear',
    params: {
      kind: 'batchNorm',
      gamma,
      beta,
      movingMean: weights[i++]!,
      movingVariance: weights[i++]!,
      epsilon: Number(config.epsilon ?? 1e-3),
    },
  };
}

/** Keras' padding config (n, [h, w] or [[top, bottom], [left, right]]) as [[top, bottom], [left, right]]. */
function zeroPaddingOf(p: unknown): [[number, number], [number, number]] {
  if (typeof p === 'number') {
    return [
      [p, p],
      [p, p],
    ];
  }
  if (Array.isArray(p) && typeof p[0] === 'number') {
    return [
      [p[0], p[0]],
      [p[1], p[1]],
    ];
  }
  const q = p as [[number, number], [number, number]];
  return [
    [q[0][0], q[0][1]],
    [q[1][0], q[1][1]],
  ];
}

/**
 * Builds the graph of a TF.js `LayersModel` (Sequential or functional): one node per layer call, named by the
 * model's layer names, in topological order that follows the model's layer order where branches are
 * independent. The model object is not changed.
 */
export function graphFromLayersModel(model: LayersModel, options: GraphOptions = {}): ModelGraph {
  const outputs = model.outputs as unknown as SymbolicTensorLike[];
  const inputs = model.inputs as unknown as SymbolicTensorLike[];
  if (outputs.length !== 1 || inputs.length !== 1) {
    throw new CrpError(
      'unsupported-model',
      `@crp/lrp attributes models with one input and one output; this model has ${inputs.length} inputs and ${outputs.length} outputs`,
    );
  }
  const layerOrder = new Map<LayerLike, number>();
  (model.layers as unknown as LayerLike[]).forEach((l, i) => {
    layerOrder.set(l, i);
  });

  // Walk from the output to the input through the symbolic tensors.
  interface Raw {
    key: string;
    layer: LayerLike;
    nodeIndex: number;
    inputKeys: string[];
    shape: (number | null)[];
  }
  const raws = new Map<string, Raw>();
  const keyOf = (t: SymbolicTensorLike) => `${t.sourceLayer.name}#${t.nodeIndex}`;
  const stack: SymbolicTensorLike[] = [outputs[0]!];
  while (stack.length > 0) {
    const t = stack.pop()!;
    const key = keyOf(t);
    if (raws.has(key)) continue;
    if (t.tensorIndex !== 0) {
      throw new CrpError(
        'unsupported-model',
        `layer '${t.sourceLayer.name}' has several outputs; not supported`,
      );
    }
    const layer = t.sourceLayer;
    const isInput = layer.getClassName() === 'InputLayer';
    const inputTensors = isInput ? [] : (layer.inboundNodes[t.nodeIndex]?.inputTensors ?? []);
    raws.set(key, { key, layer, nodeIndex: t.nodeIndex, inputKeys: inputTensors.map(keyOf), shape: t.shape });
    for (const it of inputTensors) stack.push(it);
  }

  // Kahn's algorithm, ties broken by the model's layer order (as zennit's "registration order").
  const indegree = new Map<string, number>();
  const consumers = new Map<string, string[]>();
  for (const r of raws.values()) {
    indegree.set(r.key, new Set(r.inputKeys).size);
    for (const i of new Set(r.inputKeys)) {
      const list = consumers.get(i) ?? [];
      list.push(r.key);
      consumers.set(i, list);
    }
  }
  const rank = (r: Raw) => (layerOrder.get(r.layer) ?? -1) * 1000 + r.nodeIndex;
  const ready = [...raws.values()].filter((r) => indegree.get(r.key) === 0);
  const order: Raw[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => rank(a) - rank(b));
    const r = ready.shift()!;
    order.push(r);
    for (const c of consumers.get(r.key) ?? []) {
      const d = indegree.get(c)! - 1;
      indegree.set(c, d);
      if (d === 0) ready.push(raws.get(c)!);
    }
  }

  const calls = new Map<string, number>();
  for (const r of order) calls.set(r.layer.name, (calls.get(r.layer.name) ?? 0) + 1);
  const idOf = new Map<string, string>();
  for (const r of order)
    idOf.set(r.key, calls.get(r.layer.name)! > 1 ? `${r.layer.name}@${r.nodeIndex}` : r.layer.name);

  const outputKey = keyOf(outputs[0]!);
  let droppedSoftmax: string | undefined;
  const customRules = new Map<string, Rule>();
  const nodes: GraphNode[] = order.map((r, index) => {
    const d = describe(r.layer, options, r.shape.length);
    let activation = d.activation;
    if (r.key === outputKey && activation === 'softmax' && options.keepSoftmax !== true) {
      activation = 'linear';
      droppedSoftmax = idOf.get(r.key);
    }
    const node: GraphNode = {
      id: idOf.get(r.key)!,
      layerName: r.layer.name,
      className: r.layer.getClassName(),
      kind: d.kind,
      inputs: r.inputKeys.map((k) => idOf.get(k)!),
      outputShape: r.shape.slice(1),
      activation,
      params: d.params,
      index,
    };
    if (d.customRule !== undefined) customRules.set(node.id, d.customRule);
    return node;
  });
  const inputNode = nodes.find((n) => n.kind === 'input');
  if (inputNode === undefined) throw new CrpError('unsupported-model', 'the model has no InputLayer');
  return new ModelGraph({
    nodes,
    inputId: inputNode.id,
    outputId: idOf.get(outputKey)!,
    inputShape: inputs[0]!.shape.slice(1),
    droppedSoftmax,
    customRules,
  });
}
