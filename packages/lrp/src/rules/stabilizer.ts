import * as tf from '@tensorflow/tfjs-core';

// The numbers passed to the ops here (eps, -1) become scalar tensors on each call: with basic-rule's zero scalars
// about 140 per ResNet-50 heatmap, 2-4 us of CPU each on wasm, under 0.5 ms of its ~870 ms. A cache of them kept for
// the engine's life was measured (bit-identical; 30 interleaved heatmap pairs: +6 +- 10 ms) and not kept.

/**
 * zennit's stabiliser: z + eps * sign0(z), where sign0(z) = +1 for z >= 0 (including 0) and -1 for z < 0,
 * so the denominator never vanishes and keeps its sign.
 *
 * Computed as z + (-eps) * step(-1 * z, -1), where step(-1 * z, -1) is 1 where -z > 0 (z < 0) and -1 elsewhere
 * (-0 and NaN included): the values of `where(z >= 0, z + eps, z - eps)` to the bit, since z - eps = z + (-eps)
 * and -1 * -eps = eps exactly. On wasm that form took 5 to 7 times the CPU of these four element-wise kernels
 * (TF.js's GreaterEqual and Select are generic loops). -1 * z and not `neg`: both are XNNPACK kernels of equal cost
 * at 1 thread, but Neg splits the map over the pool's threads, which saved 0.03-0.04 ms a 56x56x256 map at load
 * 5-8 and cost 0.3-0.6 ms at load 10-12, when other processes held the worker's core (ResNet-50 heatmap: 17 calls;
 * bench/src/elementwise-threads.ts).
 */
export function stabilize(z: tf.Tensor, epsilon: number): tf.Tensor {
  return tf.add(z, tf.mul(tf.step(tf.mul(z, -1), -1), -epsilon));
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
