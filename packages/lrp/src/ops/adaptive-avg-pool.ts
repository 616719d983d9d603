import * as tf from '@tensorflow/tfjs-core';
import { CrpError } from '../errors.js';

/**
 * The windows of PyTorch's adaptive average pooling along one axis of `size` inputs pooled to `out` outputs:
 * window i is [floor(i * size / out), ceil((i + 1) * size / out)). Windows overlap where `size` is not a multiple
 * of `out`, and repeat inputs where `size < out`.
 */
export function adaptivePoolWindows(size: number, out: number): [number, number][] {
  if (!Number.isInteger(size) || size < 1 || !Number.isInteger(out) || out < 1) {
    throw new CrpError(
      'invalid-argument',
      `adaptive pooling of ${size} inputs to ${out} outputs; both must be integers >= 1`,
    );
  }
  return Array.from({ length: out }, (_, i) => [
    Math.floor((i * size) / out),
    Math.ceil(((i + 1) * size) / out),
  ]);
}

/** The [out, size] matrix whose row i averages window i (see {@link adaptivePoolWindows}). */
function poolMatrix(size: number, out: number): tf.Tensor2D {
  const m = new Float32Array(out * size);
  adaptivePoolWindows(size, out).forEach(([start, end], i) => {
    for (let j = start; j < end; j++) m[i * size + j] = 1 / (end - start);
  });
  return tf.tensor2d(m, [out, size]);
}

/** Y[b, i, c] = sum_j M[i, j] X[b, j, c] along `axis` (1 or 2) of an NHWC tensor, as one 2-D matMul. */
function alongAxis(x: tf.Tensor4D, m: tf.Tensor2D, axis: 1 | 2): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const n = m.shape[0];
  if (axis === 1) {
    // [h, b*w*c] -> [n, b*w*c]
    const cols = tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [h, b * w * c]);
    return tf.transpose(tf.reshape(tf.matMul(m, cols), [n, b, w, c]), [1, 0, 2, 3]);
  }
  const cols = tf.reshape(tf.transpose(x, [2, 0, 1, 3]), [w, b * h * c]);
  return tf.transpose(tf.reshape(tf.matMul(m, cols), [n, b, h, c]), [1, 2, 0, 3]);
}

/**
 * PyTorch's `adaptive_avg_pool2d` on NHWC input: output (i, j) is the mean of the input window
 * rows [floor(i*H/oh), ceil((i+1)*H/oh)) x columns [floor(j*W/ow), ceil((j+1)*W/ow)), computed as
 * A_h X A_w^T with the averaging matrices of {@link adaptivePoolWindows}. Differentiable (matMul, transpose).
 *
 * @returns a new tensor [batch, oh, ow, channels] (the caller owns it)
 */
export function adaptiveAvgPool2d(x: tf.Tensor, outputSize: readonly [number, number]): tf.Tensor4D {
  if (x.rank !== 4) {
    throw new CrpError(
      'invalid-argument',
      `adaptive average pooling takes NHWC input of rank 4; got shape [${x.shape.join(', ')}]`,
    );
  }
  const [, h, w] = x.shape as [number, number, number, number];
  const [oh, ow] = outputSize;
  return tf.tidy(() => {
    if (h === oh && w === ow) return tf.clone(x as tf.Tensor4D);
    let y = x as tf.Tensor4D;
    if (h !== oh) y = alongAxis(y, poolMatrix(h, oh), 1);
    if (w !== ow) y = alongAxis(y, poolMatrix(w, ow), 2);
    return y;
  });
}

/**
 * The transpose of {@link adaptiveAvgPool2d} for an input of `inputSize` [H, W]: `A_h^T G A_w`, i.e. every input
 * element receives 1/|window| of the value of each window it belongs to (the input gradient of the pool).
 *
 * @returns a new tensor [rows, H, W, channels] (the caller owns it)
 */
export function adaptiveAvgPool2dTranspose(g: tf.Tensor, inputSize: readonly [number, number]): tf.Tensor4D {
  const [, oh, ow] = g.shape as [number, number, number, number];
  const [h, w] = inputSize;
  return tf.tidy(() => {
    if (h === oh && w === ow) return tf.clone(g as tf.Tensor4D);
    let y = g as tf.Tensor4D;
    if (h !== oh) y = alongAxis(y, tf.transpose(poolMatrix(h, oh)), 1);
    if (w !== ow) y = alongAxis(y, tf.transpose(poolMatrix(w, ow)), 2);
    return y;
  });
}
