import * as tf from '@tensorflow/tfjs-core';
import type { PoolParams } from '../graph/types.js';
import { padOrCrop, placeAtOffset, readAtOffset, windowPadding } from './strided.js';

/** A max-pool gradient prepared for one pooling input: the first-maximum masks are computed once and
 * reused for every batch of relevance. */
export interface PreparedMaxPoolGradient {
  backward(r: tf.Tensor4D): tf.Tensor4D;
  dispose(): void;
}

/**
 * Prepares the max-pool gradient (see {@link maxPoolGradient}). Windows that tile the input (stride = pool
 * size, no padding; VGG's 2x2 pools) take a fast path through reshapes: wasm's strided slices and
 * depth-to-space are slow, its transposes fast.
 */
export function prepareMaxPoolGradient(x: tf.Tensor4D, p: PoolParams): PreparedMaxPoolGradient {
  const [b, h, w, c] = x.shape;
  const [kh, kw] = p.poolSize;
  const [sh, sw] = p.strides;
  const [pt, pb, ho] = windowPadding(h, kh, sh, p.padding);
  const [pl, pr, wo] = windowPadding(w, kw, sw, p.padding);
  const tiles = sh === kh && sw === kw && pt + pb + pl + pr === 0;
  if (!tiles) {
    return { backward: (r) => maxPoolGradient(x, r, p), dispose: () => {} };
  }
  const k = kh * kw;
  // first[b, oh, ow, i*kw + j, c] = 1 where (i, j) is the first maximum of the window
  const first = tf.tidy(() => {
    const cropped = ho * kh === h && wo * kw === w ? x : tf.slice(x, [0, 0, 0, 0], [b, ho * kh, wo * kw, c]);
    const windows = tf.reshape(
      tf.transpose(tf.reshape(cropped, [b, ho, kh, wo, kw, c]), [0, 1, 3, 2, 4, 5]),
      [b, ho, wo, k, c],
    );
    // x - max >= 0 exactly at the maxima (no broadcasting comparison: slow on wasm)
    const isMax = tf.cast(tf.greaterEqual(tf.sub(windows, tf.max(windows, 3, true)), 0), 'float32');
    return tf.mul(isMax, tf.cast(tf.equal(tf.cumsum(isMax, 3), 1), 'float32'));
  });
  return {
    backward: (r) =>
      tf.tidy(() => {
        const rb = r.shape[0];
        const spreadR = tf.mul(first, tf.reshape(r, [rb, ho, wo, 1, c]));
        const back = tf.reshape(
          tf.transpose(tf.reshape(spreadR, [Math.max(rb, b), ho, wo, kh, kw, c]), [0, 1, 3, 2, 4, 5]),
          [Math.max(rb, b), ho * kh, wo * kw, c],
        ) as tf.Tensor4D;
        return padOrCrop(back, 0, h - ho * kh, 0, w - wo * kw);
      }),
    dispose: () => first.dispose(),
  };
}

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
    const xp =
      pt + pb + pl + pr > 0
        ? tf.pad(
            x,
            [
              [0, 0],
              [pt, pb],
              [pl, pr],
              [0, 0],
            ],
            Number.NEGATIVE_INFINITY,
          )
        : x;
    const hp = h + pt + pb;
    const wp = w + pl + pr;
    const reads: tf.Tensor4D[] = [];
    for (let i = 0; i < kh; i++)
      for (let j = 0; j < kw; j++) reads.push(readAtOffset(xp, i, j, sh, sw, ho, wo));
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
