import * as tf from '@tensorflow/tfjs-core';

/**
 * zennit's stabiliser: z + eps * sign0(z), where sign0(z) = +1 for z >= 0 (including 0) and -1 for z < 0,
 * so the denominator never vanishes and keeps its sign.
 */
export function stabilize(z: tf.Tensor, epsilon: number): tf.Tensor {
  return tf.where(tf.greaterEqual(z, 0), tf.add(z, epsilon), tf.sub(z, epsilon));
}

/**
 * {@link stabilize} of a z that no element of can be negative (sums of products of non-negative factors: ZPlus's
 * x+ W+ + b+ and x- W-, Flat's and WSquare's outputs): there sign0(z) is +1 everywhere (-0 and NaN included, as
 * `z >= 0` holds for -0 and NaN - eps is NaN + eps), so z + eps gives the same values with one kernel instead of
 * four (the comparison, both branches and the select).
 */
export function stabilizeNonNegative(z: tf.Tensor, epsilon: number): tf.Tensor {
  return tf.add(z, epsilon);
}
