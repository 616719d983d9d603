import type { Tensor } from '@tensorflow/tfjs-core';

/** What a graph node computes. One node per layer call of the model. */
export type NodeKind =
  | 'input'
  | 'conv2d'
  | 'depthwiseConv2d'
  | 'dense'
  | 'activation'
  | 'maxPool2d'
  | 'avgPool2d'
  | 'adaptiveAvgPool2d'
  | 'globalAvgPool2d'
  | 'globalMaxPool2d'
  | 'flatten'
  | 'reshape'
  | 'identity'
  | 'batchNorm'
  | 'zeroPadding2d'
  | 'add'
  | 'concatenate'
  /** element-wise product of a feature map and a gate broadcast over it (squeeze-excitation): `Multiply` */
  | 'multiply'
  | 'custom'
  // transformer blocks (graph/transformer-layers.ts)
  | 'layerNorm'
  | 'matMul'
  | 'permute'
  | 'classToken'
  | 'positionEmbedding'
  | 'selectToken';

/** Element-wise activations that the engine can run forward. In the backward pass the built-in composites give
 * a separate activation layer the Pass rule (zennit's base entries, see `defaultRuleFor`), and a linear layer's
 * rule explains its linear part f(x; W, b), so a fused activation passes relevance unchanged as well. A composite
 * may map activation layers to another rule (e.g. `gradient()`, which applies the activation's derivative). */
export type ActivationName =
  | 'linear'
  | 'relu'
  | 'relu6'
  | 'softmax'
  | 'sigmoid'
  | 'tanh'
  | 'elu'
  | 'selu'
  | 'softplus'
  | 'softsign'
  | 'swish'
  | 'leakyRelu'
  | 'gelu'
  | 'hardSigmoid'
  | 'hardSwish';

export type Padding = 'same' | 'valid';

/** PyTorch-style padding of a convolution: [[top, bottom], [left, right]] zeros around the input. */
export type ExplicitPadding = [[number, number], [number, number]];

export interface ConvParams {
  /** [kh, kw, in, out] for conv2d ([kh, kw, in / groups, out] when grouped), [kh, kw, in, multiplier] for
   * depthwiseConv2d */
  kernel: Tensor;
  /** conv2d only: PyTorch's `groups` (the `GroupedConv2D` layer): the input and output channels in this many
   * consecutive groups, group k's outputs computed from group k's inputs alone. Default 1. */
  groups?: number;
  bias: Tensor | null;
  strides: [number, number];
  /** Distance between the kernel's taps (TF's dilationRate, PyTorch's and ONNX's dilation); absent: [1, 1]. The
   * engine runs a stride-1 dilated conv with TF.js's own dilations, a strided one (TF.js allows dilations only with
   * stride 1) as a conv with the kernel spread out by zeros; either way every rule sees only the taps. */
  dilations?: [number, number];
  /** TF's 'same' / 'valid', or explicit zeros around the input (set by {@link mergeZeroPadding}, which folds a
   * ZeroPadding2D into the convolution after it, as PyTorch's `Conv2d(padding=p)`). */
  padding: Padding | ExplicitPadding;
}

export interface DenseParams {
  /** [in, out] */
  kernel: Tensor;
  bias: Tensor | null;
}

export interface PoolParams {
  poolSize: [number, number];
  strides: [number, number];
  /** TF's 'same' / 'valid', or (max pooling only) explicit padding that never wins a window, as PyTorch's
   * `MaxPool2d(padding=p)` pads with -inf (the `PaddedMaxPooling2D` layer of @crp/models). */
  padding: Padding | ExplicitPadding;
}

export interface BatchNormParams {
  gamma: Tensor | null;
  beta: Tensor | null;
  movingMean: Tensor;
  movingVariance: Tensor;
  epsilon: number;
}

/** A user-supplied layer: its forward computation (the rule comes from the composite or the spec). */
export interface CustomLayerParams {
  forward: (inputs: Tensor[]) => Tensor;
}

/** Per-kind parameters. Weights are tensors owned by the model (or by a canonized graph). */
export type NodeParams =
  | { kind: 'input' }
  | ({ kind: 'conv2d' | 'depthwiseConv2d' } & ConvParams)
  | ({ kind: 'dense' } & DenseParams)
  | { kind: 'activation'; alpha?: number; beta?: number }
  | ({ kind: 'maxPool2d' | 'avgPool2d' } & PoolParams)
  /** PyTorch's AdaptiveAvgPool2d (the `AdaptiveAveragePooling2D` layer of @crp/models): [oh, ow] output. */
  | { kind: 'adaptiveAvgPool2d'; outputSize: [number, number] }
  | { kind: 'globalAvgPool2d' | 'globalMaxPool2d' | 'flatten' | 'identity' | 'add' | 'multiply' }
  | { kind: 'reshape'; targetShape: number[] }
  | ({ kind: 'batchNorm' } & BatchNormParams)
  | { kind: 'zeroPadding2d'; padding: [[number, number], [number, number]] }
  | { kind: 'concatenate'; axis: number }
  | ({ kind: 'custom' } & CustomLayerParams)
  | TransformerNodeParams;

/** LayerNormalization over the last axis: y = (x - mean) / sqrt(var + epsilon) * gamma + beta. */
export interface LayerNormParams {
  gamma: Tensor | null;
  beta: Tensor | null;
  epsilon: number;
}

/** Parameters of the transformer kinds: LayerNormalization; the product of two activations (attention scores
 * `scale * q k^T` with `transposeB`, attention-weighted values `A v`); an axis permutation (0-based, batch
 * first; multi-head split and merge); a learned class token prepended on the token axis; a learned position
 * embedding added to the tokens; one token taken out (the head on the class token). */
export type TransformerNodeParams =
  | ({ kind: 'layerNorm' } & LayerNormParams)
  | { kind: 'matMul'; transposeB: boolean; scale: number }
  | { kind: 'permute'; perm: number[] }
  | { kind: 'classToken'; token: Tensor }
  | { kind: 'positionEmbedding'; embedding: Tensor }
  | { kind: 'selectToken'; index: number };

/** One layer call of the model. */
export interface GraphNode {
  /** Unique id: the layer name, or `name@k` for the k-th call of a layer called more than once. */
  readonly id: string;
  /** The model's own layer name. */
  readonly layerName: string;
  /** The TF.js class name of the layer (`Conv2D`, `Dense`, ...). */
  readonly className: string;
  readonly kind: NodeKind;
  /** Ids of the nodes whose outputs this node consumes, in argument order. */
  readonly inputs: readonly string[];
  /** Output shape without the batch dimension (null where the model leaves it open). */
  readonly outputShape: readonly (number | null)[];
  /** Activation applied after the node's linear part (fused activations of Conv2D/Dense, or the
   * activation of an Activation/ReLU layer). */
  readonly activation: ActivationName;
  readonly params: NodeParams;
  /** Position in topological order (model layer order among independent branches). */
  readonly index: number;
}

/** The kinds whose linear part is an affine map x -> f(x; W, b) that LRP rules act on. */
export const PARAMETRIC_KINDS: readonly NodeKind[] = ['conv2d', 'depthwiseConv2d', 'dense'];
/** Convolutions, as zennit's `Convolution` type (first-layer matching of EpsilonGammaBox). */
export const CONV_KINDS: readonly NodeKind[] = ['conv2d', 'depthwiseConv2d'];
