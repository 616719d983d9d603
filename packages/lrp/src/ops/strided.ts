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

/**
 * The strided window read `x[:, i::sh, j::sw, :]` limited to [Ho, Wo] positions: a plain slice of the window
 * grid, then every s-th row and column by a reshape (the wasm backend's tf.stridedSlice is a generic
 * element-by-element loop, 5x slower here; max pooling's relevance reads 9 of these per layer).
 */
export function readAtOffset(
  x: tf.Tensor4D,
  i: number,
  j: number,
  sh: number,
  sw: number,
  ho: number,
  wo: number,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    // the rows and columns added here lie after the last one read
    const grid = padOrCrop(x, 0, Math.max(i + ho * sh - h, 0), 0, Math.max(j + wo * sw - w, 0));
    const window = tf.slice(grid, [0, i, j, 0], [b, ho * sh, wo * sw, c]);
    if (sh === 1 && sw === 1) return window;
    const rows = tf.reshape(window, [b * ho, sh, wo, sw * c]);
    return tf.reshape(tf.slice(rows, [0, 0, 0, 0], [b * ho, 1, wo, c]), [b, ho, wo, c]);
  });
}

/** The kernel rows (or columns) that output phase r of a stride-s transpose uses: every s-th of a flipped kernel
 * of size k, from (k - 1 - r) mod s on; none when the kernel is smaller than the phase. */
function phaseTaps(k: number, s: number, r: number): number[] {
  const taps = r > k - 1 ? 0 : Math.floor((k - 1 - r) / s) + 1;
  const first = (((k - 1 - r) % s) + s) % s;
  return Array.from({ length: taps }, (_, m) => first + s * m);
}

/** Where each phase kernel lies in a kernel {@link packPhaseKernels} packed: [first row, mh, mw] per phase that
 * has taps, in the order the transpose uses them. Plain numbers; no tensors. */
const phaseLayouts = new WeakMap<tf.Tensor, [number, number, number][]>();

/** The phase kernels cut out of a packed kernel by {@link retainPhaseKernels}, until {@link releasePhaseKernels}. */
const retainedPhases = new WeakMap<tf.Tensor, tf.Tensor4D[]>();

/**
 * The flipped kernel [kh, kw, a, b] of a strided conv split into its sh·sw phase kernels, packed as
 * [sum of mh·mw, 1, a, b] (phases row-major, each [mh, mw] flattened): made once per weight (the rules cache
 * it) so that a transpose slices contiguous blocks instead of gathering taps per call.
 */
export function packPhaseKernels(back: tf.Tensor4D, [sh, sw]: [number, number]): tf.Tensor4D {
  const layout: [number, number, number][] = [];
  const packed = tf.tidy(() => {
    const [kh, kw, a, b] = back.shape;
    const parts: tf.Tensor[] = [];
    let offset = 0;
    for (let rh = 0; rh < sh; rh++) {
      const rows = phaseTaps(kh, sh, rh);
      for (let rw = 0; rw < sw; rw++) {
        const cols = phaseTaps(kw, sw, rw);
        if (rows.length === 0 || cols.length === 0) continue;
        const k = tf.gather(tf.gather(back, rows, 0), cols, 1);
        parts.push(tf.reshape(k, [rows.length * cols.length, 1, a, b]));
        layout.push([offset, rows.length, cols.length]);
        offset += rows.length * cols.length;
      }
    }
    return tf.concat(parts, 0) as tf.Tensor4D;
  });
  phaseLayouts.set(packed, layout);
  return packed;
}

/**
 * Cuts a packed kernel of {@link packPhaseKernels} into its phase kernels once, for a holder that keeps it (the
 * attributor's cached transpose weights); no-op for any other tensor. Without this every transpose cuts them
 * again, and a new filter tensor costs wasm's Conv2D a new XNNPACK operator: the kernel is transposed and packed
 * again on every call (measured on ResNet-50's layer4.0: 47 ms of CPU for its downsample's transpose, 12 ms with
 * the phase kernel kept). The holder frees them with {@link releasePhaseKernels} before the packed kernel.
 */
export function retainPhaseKernels(packed: tf.Tensor): void {
  const layout = phaseLayouts.get(packed);
  if (layout === undefined || retainedPhases.has(packed)) return;
  const [, , a, b] = packed.shape as [number, number, number, number];
  // kept: the first transpose, inside the engine's tidy, asks for them
  const phases = layout.map(([offset, mh, mw]) =>
    tf.keep(
      tf.tidy(() => tf.reshape(tf.slice(packed, [offset, 0, 0, 0], [mh * mw, 1, a, b]), [mh, mw, a, b])),
    ),
  ) as tf.Tensor4D[];
  retainedPhases.set(packed, phases);
}

/** Frees the phase kernels {@link retainPhaseKernels} cut out of `packed`, if any. */
export function releasePhaseKernels(packed: tf.Tensor): void {
  const phases = retainedPhases.get(packed);
  if (phases === undefined) return;
  retainedPhases.delete(packed);
  for (const k of phases) k.dispose();
}

/** One axis of a sub-pixel transpose: the common grid of phase rows (from `lo`, `n` of them) and, per phase,
 * its taps and the padding that aligns its stride-1 correlation with that grid. */
function subPixelAxis(k: number, s: number, pad: number, size: number, outSize: number) {
  const lo = Math.floor(pad / s);
  const n = Math.floor((pad + size - 1) / s) - lo + 1;
  const phases = Array.from({ length: s }, (_, r) => {
    const taps = phaseTaps(k, s, r).length;
    const before = taps - 1 - lo;
    return { taps, before, after: n + taps - 1 - outSize - before };
  });
  return { lo, n, phases };
}

/**
 * The transpose of a conv with strides (sh, sw) as sh·sw stride-1 convs, one per output phase, instead of one
 * conv over the gradient spread apart by zeros: padded row y + pt = Y·s + r receives only the kernel rows
 * k ≡ r (mod s), so phase r correlates g with every s-th row of the flipped kernel. The same sums with about
 * sh·sw times fewer multiplications (at stride 2, 3/4 of a spread gradient's products are with zeros).
 * `packed` holds the phase kernels ({@link packPhaseKernels}) of a flipped [kh, kw, out, in] kernel; `conv`
 * runs a stride-1 correlation; the result is [B, h, w, in] for an input of spatial size [h, w] with leading
 * padding (pt, pl).
 */
export function subPixelConvTranspose(
  g: tf.Tensor4D,
  packed: tf.Tensor4D,
  [kh, kw]: [number, number],
  [h, w]: [number, number],
  [sh, sw]: [number, number],
  [pt, pl]: [number, number],
  conv: (
    x: tf.Tensor4D,
    k: tf.Tensor4D,
    pad: 'valid' | [[0, 0], [number, number], [number, number], [0, 0]],
  ) => tf.Tensor4D,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, ho, wo] = g.shape;
    const [, , out, cin] = packed.shape;
    const rows = subPixelAxis(kh, sh, pt, h, ho);
    const cols = subPixelAxis(kw, sw, pl, w, wo);
    const retained = retainedPhases.get(packed);
    let offset = 0;
    let phase = 0;
    const phaseOf = (ph: (typeof rows.phases)[number], pw: (typeof cols.phases)[number]) => {
      const taps = ph.taps * pw.taps;
      if (taps === 0) return tf.zeros([b, rows.n, cols.n, cin]) as tf.Tensor4D;
      const k =
        retained?.[phase] ??
        (tf.reshape(tf.slice(packed, [offset, 0, 0, 0], [taps, 1, out, cin]), [
          ph.taps,
          pw.taps,
          out,
          cin,
        ]) as tf.Tensor4D);
      offset += taps;
      phase++;
      if (ph.before >= 0 && ph.after >= 0 && pw.before >= 0 && pw.after >= 0) {
        return conv(g, k, [
          [0, 0],
          [ph.before, ph.after],
          [pw.before, pw.after],
          [0, 0],
        ]);
      }
      return conv(padOrCrop(g, ph.before, ph.after, pw.before, pw.after), k, 'valid');
    };
    // a kernel smaller than the strides (ResNet's 1x1 / 2 downsample): phase (0, 0) alone has taps, so the grid is
    // that phase spread apart by zeros (two pads), not the phases' stack with zero maps
    const alone = (phases: { taps: number }[]) => phases.every((p, r) => r === 0 || p.taps === 0);
    let full: tf.Tensor4D;
    if (alone(rows.phases) && alone(cols.phases))
      full = spread(phaseOf(rows.phases[0]!, cols.phases[0]!), sh, sw);
    else {
      const bands = rows.phases.map((ph) => {
        const phases = cols.phases.map((pw) => phaseOf(ph, pw));
        // [B, n, m, sw, C]: the columns of the phases interleaved
        return tf.reshape(tf.stack(phases, 3), [b, rows.n, cols.n * sw, cin]);
      });
      full = tf.reshape(tf.stack(bands, 2), [b, rows.n * sh, cols.n * sw, cin]) as tf.Tensor4D;
    }
    return tf.slice(full, [0, pt - rows.lo * sh, pl - cols.lo * sw, 0], [b, h, w, cin]);
  });
}
