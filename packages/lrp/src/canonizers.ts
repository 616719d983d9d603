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
