import * as tf from '@tensorflow/tfjs-core';
import type { PoolParams } from '../graph/types.js';
import { axisPadding, padOrCrop, readAtOffset, windowPadding } from './strided.js';

/** A max-pool gradient prepared for one pooling input: the first-maximum masks are computed once and
 * reused for every batch of relevance. */
export interface PreparedMaxPoolGradient {
  backward(r: tf.Tensor4D): tf.Tensor4D;
  /** The transpose of `backward`: each window reads the value at its first maximum ([B, H, W, C] ->
   * [B, Ho, Wo, C]). */
  adjoint(v: tf.Tensor4D): tf.Tensor4D;
  dispose(): void;
}

/**
 * Prepares the plain gradient of max pooling for the pooling input `x` (batch 1 or the batch of the relevance),
 * computed explicitly: each window's relevance goes entirely to the **first** maximal element in row-major window
 * order (PyTorch's tie-break, which the reference values need). TF.js's own MaxPoolGrad is not used: on wasm it
 * is wrong for windows whose maximum is <= 0. Windows that tile the input (stride = pool size, no padding; VGG's
 * 2x2 pools) take a fast path through reshapes: wasm's strided slices and depth-to-space are slow, its
 * transposes fast.
 */
export function prepareMaxPoolGradient(
  x: tf.Tensor4D,
  p: PoolParams,
  /** The pooling's forward output, when the caller has it: each window's maximum, not computed again. */
  pooled?: tf.Tensor4D,
): PreparedMaxPoolGradient {
  const [b, h, w, c] = x.shape;
  const geometry = poolGeometry(x, p);
  const { kh, kw, sh, sw, ho, wo } = geometry;
  const tiles = sh === kh && sw === kw && geometry.hp === h && geometry.wp === w;
  if (!tiles) {
    // overlapping or padded windows (ResNet's 3x3 / 2 with padding 1): the first-maximum masks once, here, not
    // on every backward pass (CRP runs one per batch of conditions)
    const firsts = tf.tidy(() => firstMaxima(x, geometry, pooled));
    return {
      backward: (r) => tf.tidy(() => placeAtFirsts(r, firsts, geometry)),
      adjoint: (v) => tf.tidy(() => readAtFirsts(v, firsts, geometry)),
      dispose: () => {
        for (const t of firsts) t.dispose();
      },
    };
  }
  const k = kh * kw;
  // first[b, oh, ow, i*kw + j, c] = 1 where (i, j) is the first maximum of the window
  const first = tf.tidy(() => {
    const cropped = ho * kh === h && wo * kw === w ? x : tf.slice(x, [0, 0, 0, 0], [b, ho * kh, wo * kw, c]);
    const windows = tf.reshape(
      tf.transpose(tf.reshape(cropped, [b, ho, kh, wo, kw, c]), [0, 1, 3, 2, 4, 5]),
      [b, ho, wo, k, c],
    );
    // x - max >= 0 exactly at the maxima (no broadcasting comparison: slow on wasm); the maxima are the pool's
    // output where the caller has it (the same values: a maximum is one of its window's values)
    const max = pooled === undefined ? tf.max(windows, 3, true) : tf.reshape(pooled, [b, ho, wo, 1, c]);
    const isMax = tf.cast(tf.greaterEqual(tf.sub(windows, max), 0), 'float32');
    // the first maximum is the one with cumulative count 1; the count runs on rank 3 because WebGL's cumsum
    // supports ranks up to 4 only
    const counts = tf.reshape(tf.cumsum(tf.reshape(isMax, [b * ho * wo, k, c]), 1), [b, ho, wo, k, c]);
    return tf.mul(isMax, tf.cast(tf.equal(counts, 1), 'float32'));
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
    adjoint: (v) =>
      tf.tidy(() => {
        const vb = v.shape[0];
        const cropped =
          ho * kh === h && wo * kw === w ? v : tf.slice(v, [0, 0, 0, 0], [vb, ho * kh, wo * kw, c]);
        const windows = tf.reshape(
          tf.transpose(tf.reshape(cropped, [vb, ho, kh, wo, kw, c]), [0, 1, 3, 2, 4, 5]),
          [vb, ho, wo, k, c],
        );
        return tf.sum(tf.mul(first, windows), 3) as tf.Tensor4D;
      }),
    dispose: () => first.dispose(),
  };
}

/** The window geometry of a max pool on the padded input grid [hp, wp]. */
interface PoolGeometry {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  pt: number;
  pb: number;
  pl: number;
  pr: number;
  ho: number;
  wo: number;
  hp: number;
  wp: number;
}

/**
 * Sends each window's relevance to its first maximum: `r * first(i, j)` lands at (oh·sh + i, ow·sw + j) of the
 * padded grid. Computed per output phase (y mod sh, x mod sw), where offset i = q·sh + ρ adds its term shifted by q
 * rows to phase ρ; the phases are then interleaved by a reshape. So nothing is computed on a grid spread apart by
 * zeros (at stride 2, 3/4 of it), and the only full-size ops are the interleave and the crop of the padding.
 */
function placeAtFirsts(r: tf.Tensor4D, firsts: readonly tf.Tensor4D[], g: PoolGeometry): tf.Tensor4D {
  const qh = Math.floor((g.kh - 1) / g.sh);
  const qw = Math.floor((g.kw - 1) / g.sw);
  const nh = Math.max(Math.ceil(g.hp / g.sh), g.ho + qh);
  const nw = Math.max(Math.ceil(g.wp / g.sw), g.wo + qw);
  const shares = firsts.map((first) => tf.mul(r, first) as tf.Tensor4D);
  const [b, , , c] = shares[0]!.shape;
  const phase = (rh: number, rw: number): tf.Tensor4D => {
    let sum: tf.Tensor4D | undefined;
    for (let i = rh; i < g.kh; i += g.sh)
      for (let j = rw; j < g.kw; j += g.sw) {
        const [di, dj] = [Math.floor(i / g.sh), Math.floor(j / g.sw)];
        const term = padOrCrop(shares[i * g.kw + j]!, di, nh - g.ho - di, dj, nw - g.wo - dj);
        sum = sum === undefined ? term : (tf.add(sum, term) as tf.Tensor4D);
      }
    return sum ?? (tf.zeros([b, nh, nw, c]) as tf.Tensor4D);
  };
  const rows = Array.from({ length: g.sh }, (_, rh) =>
    // [B, nh, nw, sw, C]: the phases of one row phase, interleaved along the columns
    tf.stack(
      Array.from({ length: g.sw }, (_, rw) => phase(rh, rw)),
      3,
    ),
  );
  const grid = tf.reshape(tf.stack(rows, 2), [b, nh * g.sh, nw * g.sw, c]) as tf.Tensor4D;
  // the input's own rows and columns: the padding and the phases' surplus cut off
  const [h, w] = [g.hp - g.pt - g.pb, g.wp - g.pl - g.pr];
  return padOrCrop(grid, -g.pt, h + g.pt - nh * g.sh, -g.pl, w + g.pl - nw * g.sw);
}

/** The transpose of `placeAtFirsts`: every window reads `v` at its first maximum. */
function readAtFirsts(v: tf.Tensor4D, firsts: readonly tf.Tensor4D[], g: PoolGeometry): tf.Tensor4D {
  const vp = padOrCrop(v, g.pt, g.pb, g.pl, g.pr);
  let sum: tf.Tensor4D | undefined;
  firsts.forEach((first, k) => {
    const [i, j] = [Math.floor(k / g.kw), k % g.kw];
    const read = tf.mul(readAtOffset(vp, i, j, g.sh, g.sw, g.ho, g.wo), first) as tf.Tensor4D;
    sum = sum === undefined ? read : (tf.add(sum, read) as tf.Tensor4D);
  });
  return sum!;
}

/** The windows of a max pool over `x`: sizes, strides, padding and the padded grid. */
function poolGeometry(x: tf.Tensor4D, p: PoolParams): PoolGeometry {
  const [, h, w] = x.shape;
  const [kh, kw] = p.poolSize;
  const [sh, sw] = p.strides;
  const [pt, pb, ho] = windowPadding(h, kh, sh, axisPadding(p.padding, 0));
  const [pl, pr, wo] = windowPadding(w, kw, sw, axisPadding(p.padding, 1));
  return { kh, kw, sh, sw, pt, pb, pl, pr, ho, wo, hp: h + pt + pb, wp: w + pl + pr };
}

/** Per window offset (row-major), 1 where that offset holds the window's first maximum ([B, Ho, Wo, C]).
 * `pooled`: the max pool's output (the window maxima: the same values, a maximum is exact). */
function firstMaxima(x: tf.Tensor4D, g: PoolGeometry, pooled?: tf.Tensor4D): tf.Tensor4D[] {
  const xp =
    g.pt + g.pb + g.pl + g.pr > 0
      ? tf.pad(
          x,
          [
            [0, 0],
            [g.pt, g.pb],
            [g.pl, g.pr],
            [0, 0],
          ],
          Number.NEGATIVE_INFINITY,
        )
      : x;
  const reads: tf.Tensor4D[] = [];
  for (let i = 0; i < g.kh; i++)
    for (let j = 0; j < g.kw; j++) reads.push(readAtOffset(xp, i, j, g.sh, g.sw, g.ho, g.wo));
  let windowMax = pooled ?? reads[0]!;
  if (pooled === undefined) for (const v of reads.slice(1)) windowMax = tf.maximum(windowMax, v);
  // 1 where a window's maximum has not been claimed by an earlier element of the window
  let unclaimed: tf.Tensor = tf.onesLike(windowMax);
  return reads.map((read) => {
    const first = tf.mul(tf.cast(tf.equal(read, windowMax), 'float32'), unclaimed) as tf.Tensor4D;
    unclaimed = tf.sub(unclaimed, first);
    return first;
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

/** The transpose of {@link globalMaxPoolGradient}: each channel reads `v` at its first maximum; [B, C]. */
export function globalMaxPoolGradientAdjoint(x: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const flat = tf.reshape(x, [b, h * w, c]);
    const isMax = tf.cast(tf.equal(flat, tf.max(flat, 1, true)), 'float32');
    const first = tf.mul(isMax, tf.cast(tf.equal(tf.cumsum(isMax, 1), 1), 'float32'));
    const vb = v.shape[0];
    return tf.sum(tf.mul(first, tf.reshape(v, [vb, h * w, c])), 1) as tf.Tensor2D;
  });
}
