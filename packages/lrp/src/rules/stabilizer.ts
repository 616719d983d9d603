import * as tf from '@tensorflow/tfjs-core';

/**
 * zennit's stabiliser: z + eps * sign0(z), where sign0(z) = +1 for z >= 0 (including 0) and -1 for z < 0,
 * so the denominator never vanishes and keeps its sign.
 */
export function stabilize(z: tf.Tensor, epsilon: number): tf.Tensor {
  return tf.where(tf.greaterEqual(z, 0), tf.add(z, epsilon), tf.sub(z, epsilon));
}
