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
 * outputs read only group k's inputs (zeros elsewhere). Each group's block is padded to the full input width and
 * the blocks concatenated, so the result is made once and no mask of in x out values is needed.
 */
export function blockDiagonalKernel(kernel: tf.Tensor4D, groups: number): tf.Tensor4D {
  if (groups === 1) return kernel;
  return tf.tidy(() => {
    const inPerGroup = kernel.shape[2];
    const blocks = tf.split(kernel, groups, 3).map((block, k) =>
      tf.pad(block, [
        [0, 0],
        [0, 0],
        [k * inPerGroup, (groups - 1 - k) * inPerGroup],
        [0, 0],
      ]),
    );
    return tf.concat4d(blocks as tf.Tensor4D[], 3);
  });
}

/** Largest block-diagonal kernel (values) made once for a grouped conv's transpose (cached by the rules): 64 MB
 * (resnext50's widest conv2 is 9.4M, resnext101_32x8d's 37.7M); above it the transpose runs per group. */
export const BLOCK_DIAGONAL_MAX = 2 ** 24;

/** Largest block-diagonal kernel (values) {@link groupedConv2d} makes in a call: 1M, resnext50's conv2 of layer1
 * and layer2 (widths 128, 256); wider ones run per group, since making their kernel costs more than it saves. */
export const BLOCK_DIAGONAL_PER_CALL_MAX = 2 ** 20;

/**
 * PyTorch's grouped convolution in NHWC: the input's channels in `groups` consecutive groups, each convolved
 * with its share of the kernel's output channels, the results concatenated in group order. `kernel` is
 * [kh, kw, in / groups, out]. One tf.conv2d on the block-diagonal kernel ({@link blockDiagonalKernel}) when that
 * kernel has at most `maxBlockDiagonal` values, else one tf.conv2d per group on the split input. Measured on
 * 2-thread wasm at resnext50_32x4d's conv2 shapes (bench suite `grouped-conv`, 224 px, under load): with the
 * kernel made in the call, block-diagonal 373 vs 612 ms (width 128) and 185 vs 397 ms (256), per group 438 vs
 * 583 ms (512) and 238 vs 2835 ms (1024); with the kernel made once (the engine's transpose), block-diagonal won
 * at every width but 1024 (262 vs 238 ms), e.g. 110 vs 397 ms at 256. Both forms are differentiable (pad, split, concat and
 * conv2d have gradients), so a layer built on it trains.
 */
export function groupedConv2d(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  strides: [number, number],
  pad: ConvPad,
  groups: number,
  /** 0: always per group (tests) */
  maxBlockDiagonal = BLOCK_DIAGONAL_PER_CALL_MAX,
  /** tf.conv2d's dilations (TF.js: only with strides [1, 1]) */
  dilations: [number, number] = [1, 1],
): tf.Tensor4D {
  if (groups === 1) return tf.conv2d(x, kernel, strides, pad, 'NHWC', dilations);
  return tf.tidy(() => {
    if (kernel.size * groups <= maxBlockDiagonal) {
      return tf.conv2d(x, blockDiagonalKernel(kernel, groups), strides, pad, 'NHWC', dilations);
    }
    const xs = tf.split(x, groups, 3) as tf.Tensor4D[];
    const ks = tf.split(kernel, groups, 3) as tf.Tensor4D[];
    return tf.concat4d(
      xs.map((xi, i) => tf.conv2d(xi, ks[i]!, strides, pad, 'NHWC', dilations)),
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
