import * as tf from '@tensorflow/tfjs-core';
import { CrpError } from '../errors.js';
import type { GraphNode, PoolParams } from '../graph/types.js';
import { adaptiveAvgPool2d, adaptiveAvgPool2dTranspose } from './adaptive-avg-pool.js';
import { withFusedBias } from './fused-bias.js';
import {
  BLOCK_DIAGONAL_MAX,
  blockDiagonalKernel,
  type ConvPad,
  groupedBackKernel,
  groupedConv2d,
} from './grouped-conv.js';
import { onHostBackend } from './host-backend.js';
import { patchConvMap } from './patch-conv.js';
import {
  axisPadding,
  convPad,
  packPhaseKernels,
  padOrCrop,
  placeAtOffset,
  spread,
  subPixelConvTranspose,
  windowPadding,
} from './strided.js';

/** Weight and bias of an affine node; both null for parameter-free linear maps (average pooling). */
export interface LinearParams {
  weight: tf.Tensor | null;
  bias: tf.Tensor | null;
}

/**
 * The linear part of a node for one input shape: the forward map f(x; W, b) and its transpose
 * back(W, g) (the input-gradient of x -> f(x; W, 0)), which every LRP rule is built from.
 */
export interface LinearMap {
  forward(x: tf.Tensor, p: LinearParams): tf.Tensor;
  /** Precomputes what `transpose` needs from a weight (e.g. the flipped kernel); cached by the rules. */
  backWeight(weight: tf.Tensor | null): tf.Tensor | null;
  /** back(W, g) for a batch of output gradients g, with `backWeight(W)`. */
  transpose(g: tf.Tensor, backWeight: tf.Tensor | null): tf.Tensor;
  /** The same as `transpose` when g is zero outside the output `channels`, computed on those alone. */
  transposeChannels?(g: tf.Tensor, backWeight: tf.Tensor | null, channels: tf.Tensor1D): tf.Tensor;
}

function addBias(y: tf.Tensor, bias: tf.Tensor | null): tf.Tensor {
  return bias === null ? y : tf.add(y, bias);
}

/** A kernel [kh, kw, ...] with its taps `d` apart: zeros between them, [(kh - 1) dh + 1, (kw - 1) dw + 1, ...]. */
export function dilateKernel(w: tf.Tensor, [dh, dw]: [number, number]): tf.Tensor4D {
  const [kh, kw, a, b] = w.shape as [number, number, number, number];
  if (dh === 1 && dw === 1) return w as tf.Tensor4D;
  // rows, then columns, each a rank-4 pad: TF.js's WebGL pad (4.22) does not compile above rank 4 (its shader
  // calls lessThan on the ivec5/ivec6 structs), as one rank-6 pad of [kh, 1, kw, 1, a, b] did here
  return tf.tidy(() => {
    const rows = tf.pad(tf.reshape(w, [kh, 1, kw, a * b]), [
      [0, 0],
      [0, dh - 1],
      [0, 0],
      [0, 0],
    ]);
    const cols = tf.pad(tf.reshape(rows, [kh * dh, kw, 1, a * b]), [
      [0, 0],
      [0, 0],
      [0, dw - 1],
      [0, 0],
    ]);
    const full = tf.reshape(cols, [kh * dh, kw * dw, a, b]);
    return tf.slice(full, [0, 0, 0, 0], [(kh - 1) * dh + 1, (kw - 1) * dw + 1, a, b]) as tf.Tensor4D;
  });
}

/** The general conv path (any stride, padding, dilation, groups); {@link linearMapOf} takes the patch-embedding
 * path instead where the windows tile the input. */
export function convMap(node: GraphNode, inputShape: readonly number[]): LinearMap {
  const p = node.params;
  if (p.kind !== 'conv2d' && p.kind !== 'depthwiseConv2d') throw new Error('not a conv node');
  const depthwise = p.kind === 'depthwiseConv2d';
  const dilations = p.dilations ?? [1, 1];
  const dilated = dilations[0] !== 1 || dilations[1] !== 1;
  const [sh, sw] = p.strides;
  // a stride-1 dilated conv and its transpose run on TF.js's own dilations (the kernel as it is, no spread
  // copy). TF.js refuses dilations with a stride > 1,
  // so a strided dilated conv (ONNX allows it) runs as a plain conv on the spread kernel. Either way the rules
  // modify the kernel's taps only: Flat sees the taps, not the zeros between them, as zennit.
  const native = dilated && sh === 1 && sw === 1;
  const rate: [number, number] = native ? dilations : [1, 1];
  const kernelOf = (w: tf.Tensor): tf.Tensor4D =>
    dilated && !native ? dilateKernel(w, dilations) : (w as tf.Tensor4D);
  // a grouped kernel is [kh, kw, in / groups, out] (grouped-conv.ts); its transpose runs as one dense conv on
  // the block-diagonal kernel, made once in backWeight (the rules cache it; the transpose is what CRP repeats
  // per condition), unless that kernel is too large (then per group)
  const groups = p.kind === 'conv2d' ? (p.groups ?? 1) : 1;
  const [kh0, kw0, cin, cout] = p.kernel.shape as [number, number, number, number];
  // the size of the window the kernel spans (the spread kernel's size), and of the kernel the convs get
  const [kh, kw] = [(kh0 - 1) * dilations[0] + 1, (kw0 - 1) * dilations[1] + 1];
  const [khRun, kwRun] = native ? [kh0, kw0] : [kh, kw];
  const denseBack = groups === 1 || khRun * kwRun * cin * groups * cout <= BLOCK_DIAGONAL_MAX;
  const conv = (a: tf.Tensor4D, k: tf.Tensor4D, pad: ConvPad) =>
    denseBack ? tf.conv2d(a, k, 1, pad, 'NHWC', rate) : groupedConv2d(a, k, [1, 1], pad, groups, 0, rate);
  const [h, w] = [inputShape[1]!, inputShape[2]!];
  const [pt, , ho] = windowPadding(h, kh, sh, axisPadding(p.padding, 0));
  const [pl, , wo] = windowPadding(w, kw, sw, axisPadding(p.padding, 1));
  const pad = convPad(p.padding);
  // a strided conv's transpose runs per output phase (subPixelConvTranspose) on the phase kernels, packed once
  // (a strided dilated conv is never native, so its phases are those of the spread kernel)
  const phased = !depthwise && (sh > 1 || sw > 1);
  // otherwise (stride 1, or depthwise) the transpose is a stride-1 correlation of the gradient (spread apart by
  // the strides for a strided depthwise conv) with the flipped kernel; a dilated kernel flips to the dilated
  // flipped kernel, so the same dilations serve the transpose
  const padTop = kh - 1 - pt;
  const padLeft = kw - 1 - pl;
  const padBottom = h + kh - 1 - ((ho - 1) * sh + 1) - padTop;
  const padRight = w + kw - 1 - ((wo - 1) * sw + 1) - padLeft;
  const map: LinearMap = {
    forward(x, q) {
      const run = (w: tf.Tensor4D) => {
        if (!depthwise && groups === 1 && q.bias !== null) {
          const bias = q.bias;
          // through the op, not its kernel run directly: TF.js registers no gradient for FusedConv2D, only the op's
          // custom gradient, and tf.grad over this forward pass (pruning's Taylor criterion) needs one
          const fused = withFusedBias(bias, () =>
            tf.fused.conv2d({
              x: x as tf.Tensor4D,
              filter: w,
              strides: p.strides,
              pad,
              dilations: rate,
              bias,
            }),
          );
          if (fused !== undefined) return fused;
        }
        return addBias(
          depthwise
            ? tf.depthwiseConv2d(x as tf.Tensor4D, w, p.strides, pad, 'NHWC', rate)
            : groupedConv2d(x as tf.Tensor4D, w, p.strides, pad, groups, undefined, rate),
          q.bias,
        );
      };
      return tf.tidy(() => run(kernelOf(q.weight!)));
    },
    backWeight(weight) {
      if (weight === null) throw new Error('conv without weight');
      return tf.tidy(() => {
        const flipped = flipSpatial(kernelOf(weight));
        let back: tf.Tensor4D;
        if (groups > 1) {
          const grouped = groupedBackKernel(flipped as tf.Tensor4D, groups);
          back = denseBack ? blockDiagonalKernel(grouped, groups) : grouped;
        } else {
          // conv2d: [kh, kw, out, in]; depthwise: one filter per (channel, multiplier) pair
          back = depthwise
            ? tf.reshape(flipped, [khRun, kwRun, cin * cout, 1])
            : (tf.transpose(flipped, [0, 1, 3, 2]) as tf.Tensor4D);
        }
        return phased ? packPhaseKernels(back, [sh, sw]) : back;
      });
    },
    transpose(g, back) {
      return tf.tidy(() => {
        const g4 = g as tf.Tensor4D;
        if (phased) {
          return subPixelConvTranspose(g4, back as tf.Tensor4D, [kh, kw], [h, w], [sh, sw], [pt, pl], conv);
        }
        const spreadG = spread(g4, sh, sw);
        const bottom = padBottom - (sh - 1);
        const right = padRight - (sw - 1);
        if (!depthwise && padTop >= 0 && bottom >= 0 && padLeft >= 0 && right >= 0) {
          // the conv pads by itself: one full-size copy fewer than tf.pad + 'valid'
          const pads: [[number, number], [number, number], [number, number], [number, number]] = [
            [0, 0],
            [padTop, bottom],
            [padLeft, right],
            [0, 0],
          ];
          return conv(spreadG, back as tf.Tensor4D, pads);
        }
        const gp = padOrCrop(spreadG, padTop, bottom, padLeft, right);
        if (!depthwise) return conv(gp, back as tf.Tensor4D, 'valid');
        const y = tf.depthwiseConv2d(gp, back as tf.Tensor4D, 1, 'valid', 'NHWC', rate);
        const [b, hh, ww] = y.shape;
        return tf.sum(tf.reshape(y, [b, hh, ww, cin, cout]), 4);
      });
    },
  };
  if (!depthwise && denseBack) {
    // the flipped kernel is [kh, kw, out, in]: keep the rows of the used output channels
    map.transposeChannels = (g, back, channels) =>
      tf.tidy(() => map.transpose(tf.gather(g, channels, 3), tf.gather(back as tf.Tensor4D, channels, 2)));
  }
  return map;
}

/** `tf.reverse(k, [0, 1])` of a [kh, kw, ...] kernel as a reverse of its kh * kw rows: (i, j) goes to
 * (kh-1-i, kw-1-j), the row kh * kw - 1 - (i * kw + j). The same values; wasm's Reverse over two axes of a 4-D
 * tensor is a per-element loop (5 ms of CPU for a 3x3x64x128 kernel, 3x more than the one-axis form). On the
 * host backends the rows are cut apart and put together in the opposite order: whole-row copies, 0.3-0.4 ms of
 * CPU for that kernel against 1.6-3.9 ms for the one-axis Reverse (wasm, 1 and 2 threads), which MPRT pays for
 * every conv twice per run. */
export function flipSpatial(k: tf.Tensor): tf.Tensor {
  const [kh, kw] = k.shape as [number, number];
  const rows = kh * kw;
  if (rows === 1) return tf.clone(k);
  return tf.tidy(() => {
    const flat = tf.reshape(k, [rows, -1]);
    const flipped = onHostBackend() ? tf.concat(tf.split(flat, rows, 0).reverse(), 0) : tf.reverse(flat, 0);
    return tf.reshape(flipped, k.shape);
  });
}

/** Rows of the blocks {@link transpose2d} moves whole. */
const TRANSPOSE_BLOCK = 128;

/**
 * W^T of a [rows, cols] matrix, a tall one in blocks of {@link TRANSPOSE_BLOCK} rows (each block transposed,
 * then the blocks put side by side): the same values, but wasm's Transpose writes a tall matrix's columns with
 * a stride of its whole height, and an 8192x128 dense kernel took 20 ms of CPU against 3.5 ms in blocks
 * (measured on 2 threads).
 */
export function transpose2d(w: tf.Tensor2D): tf.Tensor2D {
  const [rows, cols] = w.shape;
  const b = TRANSPOSE_BLOCK;
  if (rows <= b || rows % b !== 0) return tf.transpose(w);
  return tf.tidy(() => {
    const blocks = tf.transpose(tf.reshape(w, [rows / b, b, cols]), [0, 2, 1]);
    return tf.reshape(tf.transpose(blocks, [1, 0, 2]), [cols, rows]);
  });
}

/**
 * TF.js's WebGL matMul computes a product with one row and a shared dimension over 1000 as multiply + sum,
 * through a [1, K, N] temporary: 102.8M values (411 MB) for VGG16's fc1, more than a texture holds where
 * MAX_TEXTURE_SIZE is 8192 (SwiftShader, many laptops and phones), so such a model failed on WebGL. With a
 * second (zero) row it takes its packed matMul program instead: the same values, no temporary.
 */
const WEBGL_VECTOR_MATMUL_MIN_SHARED = 1000;

function matMul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (a.shape[0] === 1 && a.shape[1] > WEBGL_VECTOR_MATMUL_MIN_SHARED && tf.getBackend() === 'webgl') {
    return tf.tidy(() => tf.slice(tf.matMul(tf.concat([a, tf.zerosLike(a)], 0), b), 0, 1) as tf.Tensor2D);
  }
  return tf.matMul(a, b);
}

/**
 * Rows up to which a dense layer's transpose runs as (W g^T)^T on W as it is, instead of g W^T: no W^T is made.
 * Making W^T costs a transpose of the whole kernel, and wasm's XNNPACK packs every new right-hand matrix of a
 * product (3.4 ms for an 8192x128 kernel, about 6x the product with 6 rows), which a kernel used once (a
 * single heatmap, MPRT's randomised layers) never earns back; here the packed matrix is g^T, of the rows' size.
 * The same sums in the same order (the shared axis is the output's either way): the same values, checked bit
 * for bit on wasm and cpu. More rows (CRP's batches of conditions, the tokens of a ViT) take W^T, made once, and
 * so do the GPU backends (WebGL would compute a one-column product through a [K, N] temporary, see
 * {@link matMul}).
 */
export const DENSE_LEFT_ROWS = 16;

const leftProducts = onHostBackend;

/** W^T of a dense transpose weight, made on the first product with more than {@link DENSE_LEFT_ROWS} rows and
 * kept until {@link releaseTransposedWeight}. */
const transposedWeights = new WeakMap<tf.Tensor, tf.Tensor2D>();

function transposedWeight(w: tf.Tensor2D): tf.Tensor2D {
  let wt = transposedWeights.get(w);
  if (wt === undefined) {
    wt = tf.keep(transpose2d(w));
    transposedWeights.set(w, wt);
  }
  return wt;
}

/** Frees the W^T kept for a dense transpose weight (the holder calls it before disposing the weight); no-op
 * for any other tensor. */
export function releaseTransposedWeight(w: tf.Tensor): void {
  const wt = transposedWeights.get(w);
  if (wt === undefined) return;
  transposedWeights.delete(w);
  wt.dispose();
}

/** g W^T for g [rows, nout] and W [nin, nout] (see {@link DENSE_LEFT_ROWS}). */
function timesTransposed(g: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  if (g.shape[0] <= DENSE_LEFT_ROWS && leftProducts()) {
    return tf.tidy(() => tf.transpose(matMul(w, tf.transpose(g))));
  }
  return matMul(g, transposedWeight(w));
}

function denseMap(): LinearMap {
  const flat = (x: tf.Tensor, n: number) =>
    x.rank === 2 ? (x as tf.Tensor2D) : (tf.reshape(x, [-1, n]) as tf.Tensor2D);
  return {
    forward(x, q) {
      const wt = q.weight as tf.Tensor2D;
      const [nin, nout] = wt.shape;
      const y = matMul(flat(x, nin), wt);
      const shaped = x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), nout]);
      return addBias(shaped, q.bias);
    },
    // W itself (a tensor of its own, sharing the data, so that its holder releases the W^T made for it);
    // wasm's matMul with transposeB is 8-20x slower than on a transposed copy (measured: VGG16 fc1 with 8 rows
    // 1.7 s vs 0.21 s), so a product of many rows takes W^T, made once
    backWeight: (weight) => tf.clone(weight as tf.Tensor2D),
    transpose(g, back) {
      const w = back as tf.Tensor2D;
      const [nin, nout] = w.shape;
      const y = timesTransposed(flat(g, nout), w);
      return g.rank === 2 ? y : tf.reshape(y, [...g.shape.slice(0, -1), nin]);
    },
    transposeChannels(g, back, channels) {
      return tf.tidy(() => {
        const w = back as tf.Tensor2D;
        const [nin, nout] = w.shape;
        const gc = tf.gather(flat(g, nout), channels, 1);
        const y =
          gc.shape[0] <= DENSE_LEFT_ROWS && leftProducts()
            ? tf.transpose(matMul(tf.gather(w, channels, 1), tf.transpose(gc)))
            : matMul(gc, tf.gather(transposedWeight(w), channels, 0));
        return g.rank === 2 ? y : tf.reshape(y, [...g.shape.slice(0, -1), nin]);
      });
    },
  };
}

/** Number of in-bounds inputs of every window of a 'same'-padded pooling, as [1, Ho, Wo, 1]. */
function windowCounts(h: number, w: number, p: PoolParams): tf.Tensor4D {
  const axis = (size: number, k: number, s: number, a: 0 | 1) => {
    const [before, , out] = windowPadding(size, k, s, axisPadding(p.padding, a));
    const counts = new Float32Array(out);
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < k; i++) {
        const at = o * s + i - before;
        if (at >= 0 && at < size) counts[o]! += 1;
      }
    }
    return counts;
  };
  const ch = axis(h, p.poolSize[0], p.strides[0], 0);
  const cw = axis(w, p.poolSize[1], p.strides[1], 1);
  const data = new Float32Array(ch.length * cw.length);
  for (let i = 0; i < ch.length; i++)
    for (let j = 0; j < cw.length; j++) data[i * cw.length + j] = ch[i]! * cw[j]!;
  return tf.tensor4d(data, [1, ch.length, cw.length, 1]);
}

function avgPoolMap(node: GraphNode, inputShape: readonly number[]): LinearMap {
  const p = node.params;
  if (p.kind !== 'avgPool2d') throw new Error('not an avg-pool node');
  const padding = p.padding;
  if (typeof padding !== 'string') {
    // explicit padding is PyTorch's -inf padding of max pooling; no layer makes it for average pooling
    throw new CrpError(
      'unsupported-layer',
      `'${node.id}': average pooling with explicit padding; supported: 'same', 'valid' (pad with ZeroPadding2D to count the pads)`,
    );
  }
  const [h, w] = [inputShape[1]!, inputShape[2]!];
  const [kh, kw] = p.poolSize;
  const [sh, sw] = p.strides;
  const [pt, pb] = windowPadding(h, kh, sh, padding);
  const [pl, pr] = windowPadding(w, kw, sw, padding);
  return {
    forward: (x) => tf.avgPool(x as tf.Tensor4D, p.poolSize, p.strides, padding),
    backWeight: () => null,
    transpose(g) {
      return tf.tidy(() => {
        const g4 = g as tf.Tensor4D;
        const share = padding === 'valid' ? tf.div(g4, kh * kw) : tf.div(g4, windowCounts(h, w, p));
        const hp = h + pt + pb;
        const wp = w + pl + pr;
        let sum: tf.Tensor4D | undefined;
        for (let i = 0; i < kh; i++) {
          for (let j = 0; j < kw; j++) {
            const placed = placeAtOffset(share as tf.Tensor4D, i, j, sh, sw, hp, wp);
            sum = sum === undefined ? placed : (tf.add(sum, placed) as tf.Tensor4D);
          }
        }
        return padOrCrop(sum!, -pt, -pb, -pl, -pr);
      });
    },
  };
}

/** PyTorch's adaptive average pool: A_h X A_w^T forward, A_h^T G A_w back (matrices from the input shape). */
function adaptiveAvgPoolMap(node: GraphNode, inputShape: readonly number[]): LinearMap {
  const p = node.params;
  if (p.kind !== 'adaptiveAvgPool2d') throw new Error('not an adaptive-avg-pool node');
  const size: [number, number] = [inputShape[1]!, inputShape[2]!];
  return {
    forward: (x) => adaptiveAvgPool2d(x, p.outputSize),
    backWeight: () => null,
    transpose: (g) => adaptiveAvgPool2dTranspose(g, size),
  };
}

function globalAvgPoolMap(inputShape: readonly number[]): LinearMap {
  const [h, w] = [inputShape[1]!, inputShape[2]!];
  return {
    forward: (x) => tf.mean(x, [1, 2]),
    backWeight: () => null,
    transpose(g) {
      return tf.tidy(() => {
        const [b, c] = g.shape as [number, number];
        return tf.mul(tf.ones([1, h, w, 1]), tf.reshape(tf.div(g, h * w), [b, 1, 1, c]));
      });
    },
  };
}

/** The linear map of a node for an input of `inputShape` (with batch), or undefined for non-linear kinds. */
export function linearMapOf(node: GraphNode, inputShape: readonly number[]): LinearMap | undefined {
  switch (node.kind) {
    case 'conv2d':
      return patchConvMap(node, inputShape) ?? convMap(node, inputShape);
    case 'depthwiseConv2d':
      return convMap(node, inputShape);
    case 'dense':
      return denseMap();
    case 'avgPool2d':
      return avgPoolMap(node, inputShape);
    case 'adaptiveAvgPool2d':
      return adaptiveAvgPoolMap(node, inputShape);
    case 'globalAvgPool2d':
      return globalAvgPoolMap(inputShape);
    default:
      return undefined;
  }
}

/** The layer's own weight and bias as {@link LinearParams}. */
export function linearParamsOf(node: GraphNode): LinearParams {
  const p = node.params;
  if (p.kind === 'conv2d' || p.kind === 'depthwiseConv2d' || p.kind === 'dense') {
    return { weight: p.kernel, bias: p.bias };
  }
  if (p.kind === 'avgPool2d' || p.kind === 'adaptiveAvgPool2d' || p.kind === 'globalAvgPool2d')
    return { weight: null, bias: null };
  throw new CrpError(
    'invalid-rule',
    `node '${node.id}' (${node.className}) has no linear map for an LRP rule`,
  );
}
