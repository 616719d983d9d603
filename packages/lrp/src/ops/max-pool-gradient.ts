import * as tf from '@tensorflow/tfjs-core';
import type { PoolParams } from '../graph/types.js';
import { padOrCrop, placeAtOffset, readAtOffset, windowPadding } from './strided.js';

/**
 * The plain gradient of max pooling, computed explicitly: each window's relevance goes entirely to the
 * **first** maximal element in row-major window order (PyTorch's tie-break, which the reference values
 * need). TF.js's own MaxPoolGrad is not used: on wasm it is wrong for windows whose maximum is <= 0.
 *
 * `x` is the pooling input (batch 1 or the batch of `r`), `r` the relevance at the pooling output.
 */
export function maxPoolGradient(x: tf.Tensor4D, r: tf.Tensor4D, p: PoolParams): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    const [kh, kw] = p.poolSize;
    const [sh, sw] = p.strides;
    const [pt, pb, ho] = windowPadding(h, kh, sh, p.padding);
    const [pl, pr, wo] = windowPadding(w, kw, sw, p.padding);
    const xp = pt + pb + pl + pr > 0 ? tf.pad(x, [[0, 0], [pt, pb], [pl, pr], [0, 0]], Number.NEGATIVE_INFINITY) : x;
    const hp = h + pt + pb;
    const wp = w + pl + pr;
    const reads: tf.Tensor4D[] = [];
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) reads.push(readAtOffset(xp, i, j, sh, sw, ho, wo));
    let windowMax = reads[0]!;
    for (const v of reads.slice(1)) windowMax = tf.maximum(windowMax, v);
    // 1 where a window's maximum has not been claimed by an earlier element of the window
    let unclaimed: tf.Tensor = tf.onesLike(windowMax);
    let sum: tf.Tensor4D | undefined;
    let k = 0;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const first = tf.mul(tf.cast(tf.equal(reads[k]!, windowMax), 'float32'), unclaimed);
        unclaimed = tf.sub(unclaimed, first);
        const placed = placeAtOffset(tf.mul(r, first) as tf.Tensor4D, i, j, sh, sw, hp, wp);
        sum = sum === undefined ? placed : (tf.add(sum, placed) as tf.Tensor4D);
        k++;
      }
    }
    return padOrCrop(sum!, -pt, -pb, -pl, -pr);
  });
}

/** Plain gradient of global max pooling with the same first-maximum tie-break; `r` is [B, C]. */
export function globalMaxPoolGradient(x: tf.Tensor4D, r: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const flat = tf.reshape(x, [b, h * w, c]);
    const isMax = tf.cast(tf.equal(flat, tf.max(flat, 1, true)), 'float32');
    // the first maximum is the one with cumulative count 1
    const first = tf.mul(isMax, tf.cast(tf.equal(tf.cumsum(isMax, 1), 1), 'float32'));
    const [rb] = r.shape;
    return tf.reshape(tf.mul(first, tf.reshape(r, [rb, 1, c])), [Math.max(b, rb), h, w, c]);
  });
}
