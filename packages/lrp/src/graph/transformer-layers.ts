import * as tf from '@tensorflow/tfjs-core';
import { CrpError } from '../errors.js';
import { matMulShared } from '../ops/head-matmul.js';
import type { GraphNode, NodeKind, TransformerNodeParams } from './types.js';

/** The TF.js layer classes of transformer blocks that the engine knows, beside the CNN classes:
 * `LayerNormalization` and `Permute` of tfjs-layers, and the four layers of `layers/transformer.ts`. */
export const TRANSFORMER_CLASSES = [
  'LayerNormalization',
  'Permute',
  'ClassToken',
  'PositionEmbedding',
  'MatMul',
  'SelectToken',
] as const;

/** The kinds whose relevance moves without a rule: axis permutations, the class token (its own slot's
 * relevance stays with the learned token, as a bias keeps its share) and taking out one token. */
export const TRANSFORMER_STRUCTURAL_KINDS: readonly NodeKind[] = ['permute', 'classToken', 'selectToken'];

interface LayerView {
  name: string;
  getConfig(): Record<string, unknown>;
  getWeights(): tf.Tensor[];
}

/**
 * The node description of a transformer layer class, or undefined for a class that is not one. Refuses what
 * the engine would otherwise approximate (LayerNormalization over other axes than the last, say).
 */
export function describeTransformerLayer(
  layer: LayerView,
  cls: string,
  outputRank: number,
): { kind: NodeKind; params: TransformerNodeParams } | undefined {
  const config = layer.getConfig();
  const weights = layer.getWeights();
  switch (cls) {
    case 'LayerNormalization': {
      // tfjs-layers resolves the axis to a list once the layer is built
      const axes = (Array.isArray(config.axis) ? config.axis : [config.axis ?? -1]).map(Number);
      if (axes.length !== 1 || (axes[0] !== -1 && axes[0] !== outputRank - 1)) {
        throw new CrpError(
          'unsupported-layer',
          `layer '${layer.name}': LayerNormalization over axes ${JSON.stringify(config.axis)}; supported: the last axis (the token's features)`,
        );
      }
      let i = 0;
      const gamma = config.scale !== false ? weights[i++]! : null;
      const beta = config.center !== false ? weights[i++]! : null;
      return {
        kind: 'layerNorm',
        params: { kind: 'layerNorm', gamma, beta, epsilon: Number(config.epsilon ?? 1e-3) },
      };
    }
    case 'Permute': {
      const dims = (config.dims as number[]).map(Number);
      return { kind: 'permute', params: { kind: 'permute', perm: [0, ...dims] } };
    }
    case 'ClassToken':
      return { kind: 'classToken', params: { kind: 'classToken', token: weights[0]! } };
    case 'PositionEmbedding':
      return { kind: 'positionEmbedding', params: { kind: 'positionEmbedding', embedding: weights[0]! } };
    case 'MatMul':
      return {
        kind: 'matMul',
        params: {
          kind: 'matMul',
          transposeB: config.transposeB === true,
          scale: config.scale === undefined ? 1 : Number(config.scale),
        },
      };
    case 'SelectToken':
      return { kind: 'selectToken', params: { kind: 'selectToken', index: Number(config.index ?? 0) } };
    default:
      return undefined;
  }
}

/** LayerNormalization over the last axis (biased variance, as PyTorch's nn.LayerNorm and tfjs-layers). */
export function layerNorm(
  x: tf.Tensor,
  gamma: tf.Tensor | null,
  beta: tf.Tensor | null,
  epsilon: number,
): tf.Tensor {
  return tf.tidy(() => {
    const axis = x.rank - 1;
    const centered = tf.sub(x, tf.mean(x, axis, true));
    const variance = tf.mean(tf.square(centered), axis, true);
    let y = tf.mul(centered, tf.rsqrt(tf.add(variance, epsilon)));
    if (gamma !== null) y = tf.mul(y, gamma);
    if (beta !== null) y = tf.add(y, beta);
    return y;
  });
}

/** The product of two activations, `scale * a b` (or `scale * a b^T`), batched over the leading axes. */
export function matMulActivations(a: tf.Tensor, b: tf.Tensor, transposeB: boolean, scale: number): tf.Tensor {
  return tf.tidy(() => {
    const z = matMulShared(a, b, transposeB);
    return scale === 1 ? z : tf.mul(z, scale);
  });
}

/** The token count a position embedding of shape [1, T, D] or [T, D] was trained for. */
function embeddingTokens(embedding: tf.Tensor): number {
  return embedding.shape[embedding.rank - 2]!;
}

/** Runs a transformer node forward (the graph's and the TF.js layers' one implementation). */
export function forwardTransformer(where: string, p: TransformerNodeParams, inputs: tf.Tensor[]): tf.Tensor {
  const x = inputs[0]!;
  switch (p.kind) {
    case 'layerNorm':
      return layerNorm(x, p.gamma, p.beta, p.epsilon);
    case 'matMul':
      return matMulActivations(x, inputs[1]!, p.transposeB, p.scale);
    case 'permute':
      return tf.transpose(x, p.perm);
    case 'classToken': {
      const d = p.token.shape[p.token.rank - 1]!;
      return tf.tidy(() => tf.concat([tf.tile(tf.reshape(p.token, [1, 1, d]), [x.shape[0]!, 1, 1]), x], 1));
    }
    case 'positionEmbedding': {
      const tokens = embeddingTokens(p.embedding);
      if (x.rank !== 3 || x.shape[1] !== tokens || x.shape[2] !== p.embedding.shape[p.embedding.rank - 1]) {
        throw new CrpError(
          'invalid-shape',
          `layer '${where}': tokens of shape [${x.shape.slice(1).join(', ')}] do not match the position embedding [${p.embedding.shape.slice(-2).join(', ')}]; the image size must give exactly the ${tokens} tokens the embedding was trained for (interpolating position embeddings is not supported)`,
        );
      }
      return tf.add(x, p.embedding);
    }
    case 'selectToken':
      return tf.tidy(() => tf.squeeze(tf.slice(x, [0, p.index, 0], [-1, 1, -1]), [1]));
  }
}

/** Exact backward of the structural transformer kinds for relevance `r` of any batch. */
export function transformerStructuralBackward(
  node: GraphNode,
  inputs: readonly tf.Tensor[],
  r: tf.Tensor,
): tf.Tensor[] {
  const p = node.params;
  const x = inputs[0]!;
  switch (p.kind) {
    case 'permute':
      return [tf.transpose(r, inversePermutation(p.perm))];
    case 'classToken':
      return [tf.slice(r, [0, 1, 0], [-1, -1, -1])];
    case 'selectToken': {
      const tokens = x.shape[1]!;
      return [
        tf.pad(tf.expandDims(r, 1), [
          [0, 0],
          [p.index, tokens - 1 - p.index],
          [0, 0],
        ]),
      ];
    }
    default:
      throw new Error(`no structural backward for ${node.kind}`);
  }
}

/** The transpose of {@link transformerStructuralBackward}, from values at the input to the output. */
export function transformerStructuralAdjoint(node: GraphNode, v: tf.Tensor): tf.Tensor {
  const p = node.params;
  switch (p.kind) {
    case 'permute':
      return tf.transpose(v, p.perm);
    case 'classToken':
      return tf.pad(v, [
        [0, 0],
        [1, 0],
        [0, 0],
      ]);
    case 'selectToken':
      return tf.squeeze(tf.slice(v, [0, p.index, 0], [-1, 1, -1]), [1]);
    default:
      throw new Error(`no structural adjoint for ${node.kind}`);
  }
}

function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    inv[p] = i;
  });
  return inv;
}
