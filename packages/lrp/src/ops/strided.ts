import * as tf from '@tensorflow/tfjs-core';

/** TF's padding of a 'same' / 'valid' window op along one axis, or explicit [before, after] zeros (PyTorch's
 * symmetric padding): [before, after, outSize]. */
export function windowPadding(
  size: number,
  window: number,
  stride: number,
  padding: 'same' | 'valid' | readonly [number, number],
): [number, number, number] {
  if (typeof padding !== 'string') {
    const [before, after] = padding;
    return [before, after, Math.floor((size + before + after - window) / stride) + 1];
  }
  if (padding === 'valid') {
    const out = Math.ceil((size - window + 1) / stride);
    return [0, 0, out];
  }
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + window - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before, out];
}

/** The padding of one spatial axis (0: height, 1: width) as {@link windowPadding} takes it. */
export function axisPadding(
  padding: 'same' | 'valid' | readonly [readonly [number, number], readonly [number, number]],
  axis: 0 | 1,
): 'same' | 'valid' | readonly [number, number] {
  return typeof padding === 'string' ? padding : padding[axis];
}

/** The `pad` argument of tf.conv2d / tf.depthwiseConv2d for a node's padding. */
export function convPad(
  padding: 'same' | 'valid' | readonly [readonly [number, number], readonly [number, number]],
): 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]] {
  if (typeof padding === 'string') return padding;
  return [
    [0, 0],
    [padding[0][0], padding[0][1]],
    [padding[1][0], padding[1][1]],
    [0, 0],
  ];
}

/** Pads (positive) or crops (negative) the two spatial axes of an NHWC tensor. */
export function padOrCrop(
  x: tf.Tensor4D,
  top: number,
  bottom: number,
  left: number,
  right: number,
): tf.Tensor4D {
  let y = x;
  if (top > 0 || bottom > 0 || left > 0 || right > 0) {
    y = tf.pad(y, [
      [0, 0],
      [Math.max(top, 0), Math.max(bottom, 0)],
      [Math.max(left, 0), Math.max(right, 0)],
      [0, 0],
    ]);
  }
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [b, h, w, c] = y.shape;
    const t0 = Math.max(-top, 0);
    const l0 = Math.max(-left, 0);
    y = tf.slice(y, [0, t0, l0, 0], [b, h - t0 - Math.max(-bottom, 0), w - l0 - Math.max(-right, 0), c]);
  }
  return y;
}

/**
 * Spreads the spatial grid of `x` apart by the strides: element (i, j) moves to (i*sh, j*sw), zeros in
 * between; the result is [B, H*sh, W*sw, C] (trailing zeros included).
 */
export function spread(x: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return x;
  const [b, h, w, c] = x.shape;
  let y: tf.Tensor4D = x;
  if (sh > 1) {
    y = tf.reshape(
      tf.pad(tf.reshape(y, [b, h, 1, w * c]), [
        [0, 0],
        [0, 0],
        [0, sh - 1],
        [0, 0],
      ]),
      [b, h * sh, w, c],
    );
  }
  if (sw > 1) {
    const hh = h * sh;
    y = tf.reshape(
      tf.pad(tf.reshape(y, [b * hh, w, 1, c]), [
        [0, 0],
        [0, 0],
        [0, sw - 1],
        [0, 0],
      ]),
      [b, hh, w * sw, c],
    );
  }
  return y;
}

/**
 * The transpose of a strided window read: `x[:, oh*sh + i, ow*sw + j, :]` for offset (i, j). Places the
 * [B, Ho, Wo, C] values `v` at those positions of a zero tensor of spatial size [H, W].
 */
export function placeAtOffset(
  v: tf.Tensor4D,
  i: number,
  j: number,
  sh: number,
  sw: number,
  h: number,
  w: number,
): tf.Tensor4D {
  const s = spread(v, sh, sw);
  const [, hs, ws] = s.shape;
  return padOrCrop(s, i, h - hs - i, j, w - ws - j);
}

/** The strided window read `x[:, i::sh, j::sw, :]` limited to [Ho, Wo] positions. */
export function readAtOffset(
  x: tf.Tensor4D,
  i: number,
  j: number,
  sh: number,
  sw: number,
  ho: number,
  wo: number,
): tf.Tensor4D {
  const [b, , , c] = x.shape;
  return tf.stridedSlice(
    x,
    [0, i, j, 0],
    [b, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, c],
    [1, sh, sw, 1],
  ) as tf.Tensor4D;
}
