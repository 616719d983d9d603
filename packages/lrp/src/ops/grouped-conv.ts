import * as tf from '@tensorflow/tfjs-core';
import { CrpError } from '../errors.js';

/** The `pad` argument of tf.conv2d. */
export type ConvPad =
  | 'same'
  | 'valid'
  | [[number, number], [number, number], [number, number], [number, number]];

/**
 * Checks that `groups` divides the input channels into the kernel's input width and the output channels evenly,
 * as PyTorch's `Conv2d(groups=g)` requires.
 */
export function checkGroups(
  where: string,
  inChannels: number,
  kernelShape: readonly number[],
  groups: number,
) {
  const [, , cinPerGroup, cout] = kernelShape as [number, number, number, number];
  if (!Number.isInteger(groups) || groups < 1 || cout % groups !== 0 || inChannels !== cinPerGroup * groups) {
    throw new CrpError(
      'invalid-shape',
      `${where}: a grouped convolution with ${groups} groups needs input channels = groups x kernel input width ` +
        `and output channels divisible by the groups; got ${inChannels} input channels, kernel [${kernelShape.join(', ')}]`,
    );
  }
}

/**
 * The dense kernel [kh, kw, in, out] of a grouped kernel [kh, kw, in / g, out]: block-diagonal, group k's
 * outputs read only group k's inputs (PyTorch's `Conv2d(groups=g)`). Made of differentiable ops (tile and a
 * constant mask), so a gradient through it lands on the grouped kernel's entries only.
 */
export function blockDiagonalKernel(kernel: tf.Tensor4D, groups: number): tf.Tensor4D {
  if (groups === 1) return kernel;
  return tf.tidy(() => {
    const [kh, kw, cinPerGroup, cout] = kernel.shape;
    const coutPerGroup = cout / groups;
    const mask = new Float32Array(cinPerGroup * groups * cout);
    for (let i = 0; i < cinPerGroup * groups; i++) {
      const g = Math.floor(i / cinPerGroup);
      mask.fill(1, i * cout + g * coutPerGroup, i * cout + (g + 1) * coutPerGroup);
    }
    const tiled = tf.tile(kernel, [1, 1, groups, 1]);
    void kh;
    void kw;
    return tf.mul(tiled, tf.tensor2d(mask, [cinPerGroup * groups, cout])) as tf.Tensor4D;
  });
}

/**
 * PyTorch's grouped convolution in NHWC: the input's channels in `groups` consecutive groups, each convolved
 * with its share of the kernel's output channels, the results concatenated in group order. `kernel` is
 * [kh, kw, in / groups, out]. One tf.conv2d per group on the split input; differentiable (split, conv2d and
 * concat all have gradients), so a layer built on it trains.
 */
export function groupedConv2d(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  strides: [number, number],
  pad: ConvPad,
  groups: number,
): tf.Tensor4D {
  if (groups === 1) return tf.conv2d(x, kernel, strides, pad);
  return tf.tidy(() => {
    const xs = tf.split(x, groups, 3) as tf.Tensor4D[];
    const ks = tf.split(kernel, groups, 3) as tf.Tensor4D[];
    return tf.concat4d(
      xs.map((xi, i) => tf.conv2d(xi, ks[i]!, strides, pad)),
      3,
    );
  });
}

/**
 * The kernel of a grouped convolution's transpose, from the spatially flipped grouped kernel
 * [kh, kw, in / g, out]: group k's [in / g, out / g] block transposed, as a grouped kernel [kh, kw, out / g, in]
 * (the transpose of a grouped convolution is the grouped convolution with the transposed blocks).
 */
export function groupedBackKernel(flipped: tf.Tensor4D, groups: number): tf.Tensor4D {
  const [kh, kw, cinPerGroup, cout] = flipped.shape;
  return tf.tidy(() =>
    tf.reshape(
      tf.transpose(tf.reshape(flipped, [kh, kw, cinPerGroup, groups, cout / groups]), [0, 1, 4, 3, 2]),
      [kh, kw, cout / groups, cinPerGroup * groups],
    ),
  );
}
