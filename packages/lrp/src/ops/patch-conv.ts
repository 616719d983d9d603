import * as tf from '@tensorflow/tfjs-core';
import type { GraphNode } from '../graph/types.js';
import { withFusedBias } from './fused-bias.js';
import type { LinearMap } from './linear.js';
import { axisPadding, windowPadding } from './strided.js';

/**
 * The patches of an NHWC input for a conv whose windows tile it (kernel = strides): [B * Ho * Wo, kh * kw * C],
 * row (b, i, j) holding window (i, j) in the kernel's [kh, kw, C] order. Rows and columns past the last whole
 * window are dropped, as a 'valid' conv drops them.
 */
export function patchify(x: tf.Tensor4D, [kh, kw]: [number, number]): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const [ho, wo] = [Math.floor(h / kh), Math.floor(w / kw)];
    const whole = ho * kh === h && wo * kw === w ? x : tf.slice(x, [0, 0, 0, 0], [b, ho * kh, wo * kw, c]);
    // with one row per window (1x1 and 1xk kernels) the rows are already in place: a reshape, no copy
    if (kh === 1) return tf.reshape(whole, [b * ho * wo, kw * c]) as tf.Tensor2D;
    // rank 4 at most: [B Ho, kh, Wo, kw C] -> [B Ho, Wo, kh, kw C]
    const rows = tf.transpose(tf.reshape(whole, [b * ho, kh, wo, kw * c]), [0, 2, 1, 3]);
    return tf.reshape(rows, [b * ho * wo, kh * kw * c]) as tf.Tensor2D;
  });
}

/** The transpose of {@link patchify}: patches [B * Ho * Wo, kh * kw * C] back to an NHWC map [B, H, W, C]
 * (zeros where no window reaches). */
export function unpatchify(
  patches: tf.Tensor2D,
  [b, h, w, c]: readonly [number, number, number, number],
  [kh, kw]: [number, number],
): tf.Tensor4D {
  return tf.tidy(() => {
    const [ho, wo] = [Math.floor(h / kh), Math.floor(w / kw)];
    const grid =
      kh === 1 ? patches : tf.transpose(tf.reshape(patches, [b * ho, wo, kh, kw * c]), [0, 2, 1, 3]);
    const whole = tf.reshape(grid, [b, ho * kh, wo * kw, c]) as tf.Tensor4D;
    if (ho * kh === h && wo * kw === w) return whole;
    return tf.pad(whole, [
      [0, 0],
      [0, h - ho * kh],
      [0, w - wo * kw],
      [0, 0],
    ]);
  });
}

/**
 * `t` as `shape` (the same elements): itself when it has that shape, else the Reshape kernel run directly. These
 * run between the convs, where each step's JavaScript runs with the caches cold: tf.reshape's op wrapper (a scope,
 * the shape's checks) costs about as much as the kernel's own bookkeeping there.
 */
function view(t: tf.Tensor, shape: readonly number[]): tf.Tensor {
  if (t.rank === shape.length && t.shape.every((d, i) => d === shape[i])) return t;
  return tf.engine().runKernel(tf.Reshape, { x: t }, { shape: [...shape] }) as tf.Tensor;
}

/**
 * a [M, K] x b [K, N] (+ bias [N]) from operands of any shape with those sizes, as [1, M, N], by the product
 * kernel itself: tf.matMul and tf.fused.matMul reshape both operands to rank 3 and the product back (three
 * Reshape dispatches a product, six with ours around them, about 260 in a ResNet-50 heatmap's 1x1 convs). The
 * same kernel with the same operands: the same values.
 */
function product(
  a: tf.Tensor,
  b: tf.Tensor,
  [m, k, n]: [number, number, number],
  bias?: tf.Tensor,
): tf.Tensor3D {
  const inputs = { a: view(a, [1, m, k]), b: view(b, [1, k, n]) };
  const attrs = { transposeA: false, transposeB: false };
  if (bias === undefined) return tf.engine().runKernel(tf.BatchMatMul, inputs, attrs) as tf.Tensor3D;
  const fusedAttrs = { ...attrs, activation: 'linear', leakyreluAlpha: 0.2 };
  return tf.engine().runKernel(tf._FusedMatMul, { ...inputs, bias }, fusedAttrs) as tf.Tensor3D;
}

/**
 * The linear map of a patch embedding: a plain conv (no groups, no dilation) with kernel = strides and no
 * padding, so its windows tile the input without overlap. Forward is patches x W [kh kw C, D]; the transpose
 * is G [B N, D] x W^T, un-patchified. The general conv path runs the transpose as a stride-1 conv over the
 * gradient spread by zeros, whose taps are zero in all but 1 / (kh kw) of the places: for vit_b_16's
 * `conv_proj` that was 17 of the 20 s of a backward pass. Undefined for any other conv.
 */
export function patchConvMap(node: GraphNode, inputShape: readonly number[]): LinearMap | undefined {
  const p = node.params;
  if (p.kind !== 'conv2d' || (p.groups ?? 1) !== 1) return undefined;
  const [dh, dw] = p.dilations ?? [1, 1];
  const [kh, kw, cin, cout] = p.kernel.shape as [number, number, number, number];
  const [sh, sw] = p.strides;
  if (dh !== 1 || dw !== 1 || kh !== sh || kw !== sw || inputShape.length !== 4) return undefined;
  const [h, w] = [inputShape[1]!, inputShape[2]!];
  const [top, bottom, ho] = windowPadding(h, kh, sh, axisPadding(p.padding, 0));
  const [left, right, wo] = windowPadding(w, kw, sw, axisPadding(p.padding, 1));
  // zeros around the input would sit inside windows; 'valid' (or 'same' on a multiple of the stride) has none
  if (top !== 0 || bottom !== 0 || left !== 0 || right !== 0 || ho < 1 || wo < 1) return undefined;
  const k = kh * kw * cin;
  const pointwise = kh === 1 && kw === 1;
  const flatKernel = (weight: tf.Tensor) => tf.reshape(weight, [k, cout]) as tf.Tensor2D;
  const tokens = (y: tf.Tensor, b: number, d: number) => view(y, [b, ho, wo, d]);
  // wt: W^T [D, kh kw C], for a 1x1 conv [1, D, C] (the product's own shape, so no reshape per call)
  const back = (g: tf.Tensor, wt: tf.Tensor) =>
    tf.tidy(() => {
      const b = g.shape[0]!;
      const rows = b * ho * wo;
      const d = wt.shape[wt.rank - 2]!;
      if (pointwise) return view(product(g, wt, [rows, d, cin]), [b, h, w, cin]);
      const patches = tf.matMul(tf.reshape(g, [rows, d]) as tf.Tensor2D, wt as tf.Tensor2D) as tf.Tensor2D;
      return unpatchify(patches, [b, h, w, cin], [kh, kw]);
    });
  return {
    forward(x, q) {
      return tf.tidy(() => {
        const b = x.shape[0]!;
        // a 1x1 conv (stride 1, no padding: h = ho, w = wo) reads the map itself as its patches. Only it takes the
        // fused bias, which rounds differently (XNNPACK starts each sum at the bias): on vit_b_16's 16x16 patch
        // embedding that moved one LayerNorm output of block 0 across AttnLRP's pole at -eps (LXT's z + eps has no
        // sign) and the golden heatmap by 14% (bench/README.md, "The fused bias and vit_b_16")
        if (pointwise) {
          const bias = q.bias === null || q.bias.rank !== 1 ? undefined : q.bias;
          const fused =
            bias && withFusedBias(bias, () => product(x, q.weight!, [b * h * w, cin, cout], bias));
          if (fused !== undefined) return tokens(fused, b, cout);
          const y = tokens(product(x, q.weight!, [b * h * w, cin, cout]), b, cout);
          return q.bias === null ? y : tf.add(y, q.bias);
        }
        const a = patchify(x as tf.Tensor4D, [kh, kw]);
        const k = flatKernel(q.weight!);
        const y = tokens(tf.matMul(a, k), b, cout);
        return q.bias === null ? y : tf.add(y, q.bias);
      });
    },
    // W^T [D, kh kw C] once (the rules cache it): wasm's matMul with transposeB is much slower than on a copy
    backWeight: (weight) =>
      tf.tidy(() => {
        const wt = tf.transpose(flatKernel(weight!));
        return pointwise ? tf.reshape(wt, [1, cout, cin]) : wt;
      }),
    transpose: (g, wt) => back(g, wt!),
    transposeChannels: (g, wt, channels) =>
      tf.tidy(() => back(tf.gather(g, channels, 3), tf.gather(wt!, channels, wt!.rank - 2))),
  };
}
