import * as tf from '@tensorflow/tfjs-core';
import type { ModelGraph } from './graph/model-graph.js';
import type { GraphNode } from './graph/types.js';

/** Rewrites the graph before attribution into an equivalent one that rules explain better. Returns a new
 * graph; the model and the input graph's nodes are left as they were. */
export interface Canonizer {
  readonly name: string;
  apply(graph: ModelGraph): ModelGraph;
}

export interface MergeBatchNormOptions {
  /**
   * Reproduce zennit 0.5.1 exactly: it resets the merged batch norm to gamma=1, beta=0, mean=0, var=1 but
   * keeps its eps, so the layer still scales activations by 1/sqrt(1 + eps). Default false: the batch
   * norm becomes an exact identity (as in zennit >= 1.0). The golden reference values use true.
   */
  keepEpsilon?: boolean;
}

/**
 * Merges every BatchNormalization whose only input is a Conv2D, DepthwiseConv2D or Dense layer (without a
 * fused activation, and consumed by nothing else) into that layer: s = gamma / sqrt(var + eps),
 * W' = W * s per output channel, b' = (b - mean) * s + beta. The batch norm becomes an exact identity
 * (see {@link MergeBatchNormOptions.keepEpsilon} for zennit 0.5.1's variant).
 */
export function mergeBatchNorm(options: MergeBatchNormOptions = {}): Canonizer {
  return {
    name: options.keepEpsilon ? 'MergeBatchNorm(keepEpsilon)' : 'MergeBatchNorm',
    apply(graph) {
      const replace = new Map<string, GraphNode>();
      const owned: tf.Tensor[] = [];
      for (const bn of graph.nodes) {
        const q = bn.params;
        if (q.kind !== 'batchNorm' || bn.inputs.length !== 1) continue;
        const lin = graph.node(bn.inputs[0]!);
        const p = lin.params;
        if (p.kind !== 'conv2d' && p.kind !== 'depthwiseConv2d' && p.kind !== 'dense') continue;
        if (lin.activation !== 'linear' || graph.consumersOf(lin.id).length !== 1 || replace.has(lin.id))
          continue;
        const [kernel, bias] = tf.tidy(() => {
          let s = tf.rsqrt(tf.add(q.movingVariance, q.epsilon));
          if (q.gamma !== null) s = tf.mul(s, q.gamma);
          const b0 = p.bias ?? tf.zerosLike(q.movingMean);
          let b = tf.mul(tf.sub(b0, q.movingMean), s);
          if (q.beta !== null) b = tf.add(b, q.beta);
          const shape = p.kernel.shape;
          // depthwise output channel c*M + m scales the kernel's [c, m] entry
          const scale = p.kind === 'depthwiseConv2d' ? tf.reshape(s, [shape[2]!, shape[3]!]) : s;
          return [tf.mul(p.kernel, scale), b];
        });
        owned.push(kernel!, bias!);
        replace.set(lin.id, { ...lin, params: { ...p, kernel: kernel!, bias: bias! } });
        if (options.keepEpsilon) {
          const mean = tf.zerosLike(q.movingMean);
          const variance = tf.onesLike(q.movingVariance);
          owned.push(mean, variance);
          replace.set(bn.id, {
            ...bn,
            params: {
              kind: 'batchNorm',
              gamma: null,
              beta: null,
              movingMean: mean,
              movingVariance: variance,
              epsilon: q.epsilon,
            },
          });
        } else {
          replace.set(bn.id, { ...bn, kind: 'identity', params: { kind: 'identity' } });
        }
      }
      return graph.withNodes(replace, owned);
    },
  };
}

/**
 * Folds every ZeroPadding2D whose only consumer is a Conv2D or DepthwiseConv2D with 'valid' padding into that
 * convolution as explicit padding, the way PyTorch's `Conv2d(padding=p)` pads inside the layer; the padding
 * layer becomes an identity. The forward values are unchanged, but rules whose input modifiers replace the input
 * (ZBox's bounds, Flat's ones) now see zeros at the border, as in zennit, instead of bounds or ones on the padded
 * positions. Models imported from PyTorch (`importTorchResNet` of @crp/models) pad strided convolutions this way.
 */
export function mergeZeroPadding(): Canonizer {
  return {
    name: 'MergeZeroPadding',
    apply(graph) {
      const replace = new Map<string, GraphNode>();
      for (const conv of graph.nodes) {
        const p = conv.params;
        if ((p.kind !== 'conv2d' && p.kind !== 'depthwiseConv2d') || p.padding !== 'valid') continue;
        if (conv.inputs.length !== 1) continue;
        const pad = graph.node(conv.inputs[0]!);
        if (pad.params.kind !== 'zeroPadding2d' || graph.consumersOf(pad.id).length !== 1) continue;
        const [[top, bottom], [left, right]] = pad.params.padding;
        replace.set(conv.id, {
          ...conv,
          params: {
            ...p,
            padding: [
              [top, bottom],
              [left, right],
            ],
          },
        });
        const source = graph.node(pad.inputs[0]!);
        replace.set(pad.id, {
          ...pad,
          kind: 'identity',
          params: { kind: 'identity' },
          outputShape: source.outputShape,
        });
      }
      return graph.withNodes(replace, []);
    },
  };
}

/**
 * Applies several canonizers in order, as zennit's `CompositeCanonizer`.
 */
export function compositeCanonizer(canonizers: readonly Canonizer[], name?: string): Canonizer {
  return {
    name: name ?? canonizers.map((c) => c.name).join('+'),
    apply(graph) {
      let current = graph;
      for (const c of canonizers) current = c.apply(current);
      return current;
    },
  };
}

/**
 * zennit's `ResNetCanonizer` for torchvision ResNets (as imported by `importTorchResNet` of @crp/models, or any
 * functional model of the same kind): batch norms merged into the convolution before them ({@link mergeBatchNorm},
 * zennit's `SequentialMergeBatchNorm`), PyTorch's padding folded into the convolutions ({@link mergeZeroPadding}).
 * The residual addition is already its own layer (`Add`), which the built-in composites give the Norm rule as
 * zennit gives its `Sum` module (the canonizer's reason to exist in zennit: a plain `+` in PyTorch has no module a
 * rule can attach to, so both branches would receive the whole relevance).
 */
export function resnetCanonizer(options: MergeBatchNormOptions = {}): Canonizer {
  return compositeCanonizer(
    [mergeBatchNorm(options), mergeZeroPadding()],
    options.keepEpsilon ? 'ResNetCanonizer(keepEpsilon)' : 'ResNetCanonizer',
  );
}
