import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import type { Concept, ConceptAttributeOptions, ConceptMask } from './concept.js';

/**
 * Attention heads as concepts: the first per-sample axis of a [heads, tokens, d] output (the attention-weighted
 * values of a multi-head attention, `self_attention.context` in @crp/models' ViT). Index h keeps head h at every
 * token and dimension. Use it in `maskMap` for such layers: `{ maskMap: { 'encoder.layers.encoder_layer_11.self_attention.context': new HeadConcept() } }`.
 */
export class HeadConcept implements Concept {
  readonly name = 'HeadConcept';

  count(shape: readonly number[]): number {
    return shape[0]!;
  }

  validate(indices: readonly number[], shape: readonly number[], layer: string): void {
    if (shape.length !== 3) {
      throw new CrpError(
        'invalid-argument',
        `HeadConcept needs a [heads, tokens, d] layer output; '${layer}' has [${shape.join(', ')}]`,
      );
    }
    const heads = this.count(shape);
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= heads) {
        throw new CrpError(
          'invalid-argument',
          `head ${i} is out of range for layer '${layer}': it has ${heads} heads (valid: 0..${heads - 1})`,
        );
      }
    }
  }

  mask(indices: readonly number[], shape: readonly number[]): ConceptMask {
    const data = new Float32Array(this.count(shape));
    for (const i of indices) data[i] = 1;
    return { data, shape: [data.length, 1, 1] };
  }

  /** Per row, the relevance of each head summed over tokens and dimensions: [rows, H, T, d] -> [rows, H]. */
  attribute(relevance: tf.Tensor, options: ConceptAttributeOptions = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const scores = tf.sum(relevance, [2, 3]) as tf.Tensor2D;
      if (options.absNorm !== true) return scores;
      return tf.div(scores, tf.add(tf.sum(tf.abs(scores), 1, true), 1e-10)) as tf.Tensor2D;
    });
  }
}
