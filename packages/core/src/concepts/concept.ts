import type * as tf from '@tensorflow/tfjs-core';

/** A 0/1 mask for relevance at a layer output, per sample; `shape` broadcasts against the layer's
 * per-sample output shape (e.g. [1, 1, C] masks channels of an [H, W, C] map). */
export interface ConceptMask {
  data: Float32Array;
  shape: number[];
}

/** Options of {@link Concept.attribute}. */
export interface ConceptAttributeOptions {
  /** Divide each row by (sum of its absolute values + 1e-10). Default false. */
  absNorm?: boolean;
}

/**
 * What a condition's indices mean at one layer. The engine only asks a concept for masks; channels
 * ({@link ChannelConcept}), groups of channels or spatial regions plug in by implementing this.
 */
export interface Concept {
  readonly name: string;
  /** Number of concepts at a layer with this per-sample output shape. */
  count(shape: readonly number[]): number;
  /** Throws a CrpError naming the valid range when `indices` do not fit `shape`. */
  validate(indices: readonly number[], shape: readonly number[], layer: string): void;
  /** The mask of one condition (its indices at this layer) for a per-sample output shape. */
  mask(indices: readonly number[], shape: readonly number[]): ConceptMask;
  /** Relevance per concept: [rows, ...shape] -> [rows, count]. The caller owns the result. */
  attribute(relevance: tf.Tensor, options?: ConceptAttributeOptions): tf.Tensor2D;
}
