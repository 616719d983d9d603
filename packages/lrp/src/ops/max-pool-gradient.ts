import * as tf from '@tensorflow/tfjs-core';
import type { PoolParams } from '../graph/types.js';
import { readFloat32, writeFloat32 } from './backend-memory.js';
import { onHostBackend } from './host-backend.js';
import { axisPadding, padOrCrop, readAtOffset, windowPadding } from './strided.js';

/** A max-pool gradient prepared for one pooling input: the first-maximum masks are computed once and
 * reused for every batch of relevance. */
export interface PreparedMaxPoolGradient {
  backward(r: tf.Tensor4D): tf.Tensor4D;
  /** The transpose of `backward`: each window reads the value at its first maximum ([B, H, W, C] ->
   * [B, Ho, Wo, C]). */
  adjoint(v: tf.Tensor4D): tf.Tensor4D;
  dispose(): void;
  /** How the first maxima were found: windows that tile the input, masks per window offset, or indices. */
  readonly method: 'tiles' | 'masks' | 'index';
}

/**
 * Prepares the plain gradient of max pooling for the pooling input `x` (batch 1 or the batch of the relevance),
 * computed explicitly: each window's relevance goes entirely to the **first** maximal element in row-major window
 * order (PyTorch's tie-break, which the reference values need). TF.js's own MaxPoolGrad is not used: on wasm it
 * is wrong for windows whose maximum is <= 0. A window holding a NaN sends its relevance to its last NaN, as
 * PyTorch's does ({@link forEachWindow}): on the host backends by the walker, in the tensor-op form the other
 * backends take (GPU, tfjs-node) and `method: 'masks'` by the same rule in tensor ops.
 * Windows that tile the input (stride = pool size, no padding; VGG's 2x2 pools) take a fast path through reshapes:
 * wasm's strided slices and depth-to-space are slow, its transposes fast.
 */
export function prepareMaxPoolGradient(
  x: tf.Tensor4D,
  p: PoolParams,
  /** The pooling's forward output, when the caller has it: each window's maximum, not computed again by the host
   * forms (the tensor-op forms take the maxima by `tf.maximum`: WebGL's max pool is wrong below -1e20). */
  pooled?: tf.Tensor4D,
  /** How the first maxima are found: 'auto' (default) by index on backends that hold tensors in host memory,
   * 'masks' by tensor ops on any backend (what GPU backends get). */
  method: 'auto' | 'masks' = 'auto',
): PreparedMaxPoolGradient {
  const [b, h, w, c] = x.shape;
  const geometry = poolGeometry(x, p);
  const { kh, kw, sh, sw, ho, wo } = geometry;
  const tiles = sh === kh && sw === kw && geometry.hp === h && geometry.wp === w;
  if (!tiles && method === 'auto' && onHostBackend()) {
    const byIndex = firstMaximumIndices(x, geometry, pooled);
    if (byIndex !== undefined) return byIndex;
  }
  if (!tiles) {
    // overlapping or padded windows (ResNet's 3x3 / 2 with padding 1): the first-maximum masks once, here, not
    // on every backward pass (CRP runs one per batch of conditions)
    const firsts = tf.tidy(() => firstMaxima(x, geometry));
    return {
      method: 'masks',
      backward: (r) => tf.tidy(() => placeAtFirsts(r, firsts, geometry)),
      adjoint: (v) => tf.tidy(() => readAtFirsts(v, firsts, geometry)),
      dispose: () => {
        for (const t of firsts) t.dispose();
      },
    };
  }
  const k = kh * kw;
  // first[b, oh, ow, i*kw + j, c] = 1 where (i, j) is the first maximum of the window
  const first =
    method === 'auto' && onHostBackend()
      ? firstMaximumTiles(x, pooled, geometry)
      : tf.tidy(() => {
          const cropped =
            ho * kh === h && wo * kw === w ? x : tf.slice(x, [0, 0, 0, 0], [b, ho * kh, wo * kw, c]);
          // each window's taps last ([b, ho, wo, c, k]) for the search, its mask back to [b, ho, wo, k, c]
          const windows = tf.reshape(
            tf.transpose(tf.reshape(cropped, [b, ho, kh, wo, kw, c]), [0, 1, 3, 5, 2, 4]),
            [b * ho * wo * c, k],
          ) as tf.Tensor2D;
          return tf.transpose(tf.reshape(firstMaximumMask(windows), [b, ho, wo, c, k]), [0, 1, 2, 4, 3]);
        });
  return {
    method: 'tiles',
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

/**
 * The tiles path's first-maximum masks ([B, Ho, Wo, kh * kw, C]) by a loop over the input read back, on a host
 * backend: the mask form's comparison, cast, cumulative count, equality, cast and product are six passes over
 * the windows (about 25 ms of CPU per MPRT run on the small VGG on wasm at 2 threads, more than a
 * third in one Cumsum), against one read here. The same ones and zeros: the first element in row-major window
 * order equal to the window's maximum (an infinite one too) wins, as its count of 1 does; a window holding a NaN
 * gets its last NaN ({@link forEachWindow}), as in the mask form.
 */
function firstMaximumTiles(x: tf.Tensor4D, pooled: tf.Tensor4D | undefined, g: PoolGeometry): tf.Tensor {
  const [b, , w, channels] = x.shape;
  const { kh, kw, ho, wo } = g;
  const k = kh * kw;
  // the pool's output where the caller has it, else pooled here (tiles: stride = pool size, no padding), so that
  // NaN windows get the walker's rule either way
  const own = pooled === undefined ? tf.maxPool(x, [kh, kw], [kh, kw], 'valid') : undefined;
  // on wasm the mask is written into the heap and the input and maxima read there (views taken after the
  // mask's allocation, which may move the heap): a new array per mask, its copy into the heap and two copies out
  // (slow on the threaded build's shared memory) cost about a third of this function on MPRT's small VGG
  const mask = writeFloat32([b, ho, wo, k, channels], (first) => {
    const xs = readFloat32(x);
    const maxima = readFloat32((pooled ?? own)!);
    // 2x2 (VGG's pools): every mask entry written by one branch-free pass, unless a NaN turns up
    if (kh === 2 && kw === 2 && firstOfFour(xs, maxima, first, x.shape, ho, wo)) return;
    first.fill(0);
    // where each window offset (i, j) starts in x, relative to the window's first element
    const offsets = new Int32Array(k);
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) offsets[i * kw + j] = (i * w + j) * channels;
    // a NaN window's mask: the tap `tap` alone, (dy, dx) from the window's first
    const takeNaN: TakeNaN = ({ out, first: from }, ch, tap) => {
      const to = out * k;
      for (let q = 0; q < k; q++) first[to + q * channels + ch] = 0;
      const rel = (tap - from - ch) / channels;
      first[to + (Math.floor(rel / w) * kw + (rel % w)) * channels + ch] = 1;
    };
    // tiles lie inside the input: no window is wholly padding
    forEachWindow(
      xs,
      x.shape,
      g,
      ({ out, first: from }) => {
        // locals, not the closure's variables, in the hot loop (V8 reloads those on every access)
        const [values, max, m, at, c] = [xs, maxima, first, offsets, channels];
        // the window's mask rows [k, c] start at k times its output index
        const to = out * k;
        for (let ch = 0; ch < c; ch++) {
          const top = max[out + ch]!;
          for (let q = 0; q < k; q++) {
            if (values[from + at[q]! + ch] === top) {
              m[to + q * c + ch] = 1;
              break;
            }
          }
        }
      },
      takeNaN,
    );
  });
  own?.dispose();
  return mask;
}

/**
 * {@link firstMaximumTiles} for 2x2 tiles without a NaN: each window's four taps read once, and its four mask
 * entries written as the first tap equal to the maximum (1) and the others (0): no fill, no callback per window and
 * no branch on which tap wins (MPRT's six pool preparations on the small VGG, 1 thread: 4.1-4.3 against 5.7-6.1 ms
 * of CPU with the walker). The same ones and zeros as the search. False, with the mask partly written, when a tap
 * is NaN (or a window holds both infinities): the caller then takes the walker, which gives NaN windows PyTorch's
 * rule.
 */
function firstOfFour(
  xs: Float32Array,
  maxima: Float32Array,
  first: Float32Array,
  [b, h, w, c]: readonly [number, number, number, number],
  ho: number,
  wo: number,
): boolean {
  const row = w * c;
  let nan = false;
  for (let bb = 0; bb < b; bb++) {
    for (let oh = 0; oh < ho; oh++) {
      for (let ow = 0; ow < wo; ow++) {
        const out = ((bb * ho + oh) * wo + ow) * c;
        const from = ((bb * h + 2 * oh) * w + 2 * ow) * c;
        const to = out * 4;
        for (let ch = 0; ch < c; ch++) {
          const top = maxima[out + ch]!;
          const t0 = xs[from + ch]!;
          const t1 = xs[from + c + ch]!;
          const t2 = xs[from + row + ch]!;
          const t3 = xs[from + row + c + ch]!;
          // NaN in the sum: a NaN tap (or +inf and -inf in one window, which the walker settles the same way)
          nan = nan || Number.isNaN(t0 + t1 + t2 + t3);
          const e0 = t0 === top ? 1 : 0;
          const e1 = (t1 === top ? 1 : 0) & (e0 ^ 1);
          const e2 = (t2 === top ? 1 : 0) & ((e0 | e1) ^ 1);
          const e3 = (t3 === top ? 1 : 0) & ((e0 | e1 | e2) ^ 1);
          first[to + ch] = e0;
          first[to + c + ch] = e1;
          first[to + 2 * c + ch] = e2;
          first[to + 3 * c + ch] = e3;
        }
      }
    }
  }
  return !nan;
}

/**
 * The max-pool gradient by index, for overlapping or padded windows on a host backend: the input is read back once
 * and a loop finds, per window and channel, the flat input index of its first maximum (row-major in the window;
 * padding never wins); backward scatters each window's relevance there (`tf.scatterND` sums where windows share
 * a maximum), adjoint gathers. The mask form costs about 9 comparisons, 9 selections and 9 shifted sums over the
 * output per layer plus the phases' interleave, all on one thread on wasm: 30-40 ms of a ResNet-50 heatmap, against
 * a few ms here. Undefined when a window lies wholly in the padding (the mask form handles it).
 */
function firstMaximumIndices(
  x: tf.Tensor4D,
  g: PoolGeometry,
  pooled?: tf.Tensor4D,
): PreparedMaxPoolGradient | undefined {
  const [b, h, w, c] = x.shape;
  const { ho, wo } = g;
  const plane = h * w * c;
  const perImage = ho * wo * c;
  const data = x.dataSync();
  // flat index into x of each window's first maximum, [b, ho, wo, c] row-major
  const at = new Int32Array(b * perImage);
  const found =
    pooled !== undefined
      ? firstEqualTaps(data, pooled.dataSync(), at, x.shape, g)
      : firstLargestTaps(data, at, x.shape, g);
  if (!found) return undefined;
  // the same windows within one image (a relevance batch over a one-image pass; an adjoint broadcast over images)
  const indices = tf.tensor1d(at, 'int32');
  const localIndices =
    b === 1
      ? indices
      : tf.tensor1d(
          at.map((i, k) => i - Math.floor(k / perImage) * plane),
          'int32',
        );
  return {
    method: 'index',
    backward: (r) =>
      tf.tidy(() => {
        const rb = r.shape[0];
        if (b === 1 && rb > 1) {
          // row q's windows point into row q of the output
          const rows = tf.range(0, rb * plane, plane, 'int32');
          const idx = tf.add(tf.reshape(rows, [rb, 1]), tf.reshape(indices, [1, perImage]));
          const placed = tf.scatterND(tf.reshape(idx, [rb * perImage, 1]), tf.reshape(r, [-1]), [rb * plane]);
          return tf.reshape(placed, [rb, h, w, c]) as tf.Tensor4D;
        }
        // one relevance row for several images: each image gets it
        const rows = rb === b ? r : tf.mul(r, tf.ones([b, 1, 1, 1]));
        const placed = tf.scatterND(tf.reshape(indices, [b * perImage, 1]), tf.reshape(rows, [-1]), [
          b * plane,
        ]);
        return tf.reshape(placed, [b, h, w, c]) as tf.Tensor4D;
      }),
    adjoint: (v) =>
      tf.tidy(() => {
        const vb = v.shape[0];
        if (b === 1) return tf.reshape(tf.gather(tf.reshape(v, [vb, plane]), indices, 1), [vb, ho, wo, c]);
        if (vb === b) return tf.reshape(tf.gather(tf.reshape(v, [-1]), indices), [b, ho, wo, c]);
        return tf.reshape(tf.gather(tf.reshape(v, [plane]), localIndices), [b, ho, wo, c]);
      }),
    dispose: () => {
      indices.dispose();
      if (localIndices !== indices) localIndices.dispose();
    },
  };
}

/** One pooling window, as {@link forEachWindow} hands it to a search: its taps in bounds are rows [y0, y1) and
 * columns [x0, x1) of its image; `first` is the flat input index of the first of them (channel 0), `out` the flat
 * output index of the window's channel 0. */
interface PoolWindow {
  y0: number;
  y1: number;
  x0: number;
  x1: number;
  out: number;
  first: number;
}

/** Where a window's NaN sends its relevance: `take(window, ch, tap)` is called after the search with the flat
 * input index of the window's last NaN tap of channel `ch`, for each channel that has one. */
type TakeNaN = (window: PoolWindow, ch: number, tap: number) => void;

/** Whether `data` holds a NaN: one pass that stops at the first, so an input without NaN (the normal case) costs
 * the walker one read of it and nothing per window. */
function holdsNaN(data: ArrayLike<number>): boolean {
  for (let i = 0; i < data.length; i++) if (Number.isNaN(data[i])) return true;
  return false;
}

/**
 * Hands every window of the pool over an input [b, h, w, c] to `search` (one object, updated in place), in output
 * order. False, and no further windows, when a window lies wholly in the padding.
 *
 * The one rule for NaN, PyTorch's: max_pool2d propagates NaN, so a window holding a NaN has NaN for its maximum and
 * its gradient goes to the **last** NaN in row-major window order (its CPU kernel takes a tap when
 * `val > max || isnan(val)`, so each later NaN replaces the earlier; torch 1.13 measured: [1, NaN; 3, NaN] routes
 * to index 3, [NaN, 2; NaN, 5] to index 2). The searches compare values (equality with the pool's output, which
 * TF.js computes without NaN on cpu and as -inf or another tap's value on wasm, or `>`), so NaN windows are
 * settled here, once, after the search: `takeNaN` gets each of them. ±inf are values like others: the first
 * maximum.
 */
function forEachWindow(
  data: ArrayLike<number>,
  [b, h, w, c]: readonly [number, number, number, number],
  { kh, kw, sh, sw, pt, pl, ho, wo }: PoolGeometry,
  search: (window: PoolWindow) => void,
  takeNaN: TakeNaN,
): boolean {
  const plane = h * w * c;
  const row = w * c;
  const nan = holdsNaN(data);
  const win: PoolWindow = { y0: 0, y1: 0, x0: 0, x1: 0, out: 0, first: 0 };
  for (let bb = 0; bb < b; bb++) {
    const image = bb * plane;
    for (let oh = 0; oh < ho; oh++) {
      win.y0 = Math.max(oh * sh - pt, 0);
      win.y1 = Math.min(oh * sh - pt + kh, h);
      for (let ow = 0; ow < wo; ow++) {
        win.x0 = Math.max(ow * sw - pl, 0);
        win.x1 = Math.min(ow * sw - pl + kw, w);
        if (win.y0 >= win.y1 || win.x0 >= win.x1) return false;
        win.out = ((bb * ho + oh) * wo + ow) * c;
        win.first = image + (win.y0 * w + win.x0) * c;
        search(win);
        if (!nan) continue;
        // the last NaN: the taps backwards from the window's last row and column
        const span = (win.x1 - win.x0) * c;
        for (let ch = 0; ch < c; ch++) {
          scan: for (let r = win.first + (win.y1 - win.y0 - 1) * row + ch; r >= win.first; r -= row)
            for (let i = r + span - c; i >= r; i -= c)
              if (Number.isNaN(data[i])) {
                takeNaN(win, ch, i);
                break scan;
              }
        }
      }
    }
  }
  return true;
}

/** For each window and channel, the flat index of the first tap (row-major) equal to the window's maximum, from
 * `maxima` (the pool's output: a maximum is one of the values, exactly), into `at`; the search stops there, so a
 * ResNet window reads about half its taps. A window without an equal tap keeps its first; one holding a NaN gets its
 * last NaN ({@link forEachWindow}). False when a window lies wholly in the padding. */
function firstEqualTaps(
  data: ArrayLike<number>,
  maxima: ArrayLike<number>,
  at: Int32Array,
  shape: readonly [number, number, number, number],
  g: PoolGeometry,
): boolean {
  const [, , w, channels] = shape;
  return forEachWindow(
    data,
    shape,
    g,
    ({ y0, y1, x0, x1, out, first }) => {
      // locals, not the closure's variables, in the hot loop (V8 reloads those on every access)
      const [values, max, taps, c, row] = [data, maxima, at, channels, w * channels];
      const span = (x1 - x0) * c;
      const end = first + (y1 - y0) * row;
      for (let ch = 0; ch < c; ch++) {
        const m = max[out + ch]!;
        let index = first + ch;
        search: for (let r = first + ch; r < end; r += row) {
          for (let i = r; i < r + span; i += c) {
            if (values[i] === m) {
              index = i;
              break search;
            }
          }
        }
        taps[out + ch] = index;
      }
    },
    ({ out }, ch, tap) => {
      at[out + ch] = tap;
    },
  );
}

/** {@link firstEqualTaps} without the maxima: each window's largest value is tracked over its taps. */
function firstLargestTaps(
  data: ArrayLike<number>,
  at: Int32Array,
  shape: readonly [number, number, number, number],
  g: PoolGeometry,
): boolean {
  const [, , w, channels] = shape;
  const best = new Float32Array(channels);
  return forEachWindow(
    data,
    shape,
    g,
    ({ y0, y1, x0, x1, out, first }) => {
      // locals, not the closure's variables, in the hot loop (V8 reloads those on every access)
      const [values, taps, largest, c, row] = [data, at, best, channels, w * channels];
      // the first tap in bounds holds the maximum until a larger value comes (ties keep the earlier)
      for (let ch = 0; ch < c; ch++) {
        largest[ch] = values[first + ch]!;
        taps[out + ch] = first + ch;
      }
      const span = (x1 - x0) * c;
      const end = first + (y1 - y0) * row;
      for (let r = first; r < end; r += row) {
        for (let tap = r === first ? r + c : r; tap < r + span; tap += c) {
          for (let ch = 0; ch < c; ch++) {
            const v = values[tap + ch]!;
            if (v > largest[ch]!) {
              largest[ch] = v;
              taps[out + ch] = tap + ch;
            }
          }
        }
      }
    },
    ({ out }, ch, tap) => {
      at[out + ch] = tap;
    },
  );
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

/** Per window offset (row-major), 1 where that offset holds the window's first maximum ([B, Ho, Wo, C]), or in a
 * window holding a NaN its last NaN (PyTorch's rule, {@link forEachWindow}). */
function firstMaxima(x: tf.Tensor4D, g: PoolGeometry): tf.Tensor4D[] {
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
  // by tf.maximum, not the pool's output: see firstMaximumMask
  let windowMax: tf.Tensor = reads[0]!;
  for (const v of reads.slice(1)) windowMax = tf.maximum(windowMax, v);
  // 1 where a window's maximum has not been claimed by an earlier element of the window
  let unclaimed: tf.Tensor = tf.onesLike(windowMax);
  const firsts = reads.map((read) => {
    const first = tf.mul(tf.cast(tf.equal(read, windowMax), 'float32'), unclaimed) as tf.Tensor4D;
    unclaimed = tf.sub(unclaimed, first);
    return first;
  });
  // the last NaN: from the window's end, 1 where a NaN has no later one
  const lastNaNs: tf.Tensor4D[] = new Array(reads.length);
  let noLater: tf.Tensor = tf.onesLike(windowMax);
  for (let i = reads.length - 1; i >= 0; i--) {
    lastNaNs[i] = tf.mul(tf.cast(tf.isNaN(reads[i]!), 'float32'), noLater) as tf.Tensor4D;
    noLater = tf.sub(noLater, lastNaNs[i]!);
  }
  const holdsNaN = tf.equal(noLater, 0);
  return firsts.map((first, i) => tf.where(holdsNaN, lastNaNs[i]!, first) as tf.Tensor4D);
}

/**
 * The largest value of each row of `t` ([n, k]) by a tree of `tf.maximum`, [n, 1]. Not `tf.max` nor the pool's
 * output: TF.js's WebGL max reduce and max pool start from -1e20 (`-1.0 / 1e-20` in their shaders), so a window
 * whose values all lie below (-inf, or finite below -1e20) got -1e20 for its maximum, which none of its taps
 * equals, and passed no relevance (measured in headless Chromium, TF.js 4.22). `tf.maximum` compares the values
 * themselves on every backend. A NaN row's maximum does not matter: {@link firstMaximumMask} gives it its last NaN.
 */
function rowMaximum(t: tf.Tensor2D): tf.Tensor2D {
  const [n] = t.shape;
  let rows = t;
  while (rows.shape[1] > 1) {
    const k = rows.shape[1];
    const half = Math.floor(k / 2);
    const pairs = tf.maximum(tf.slice(rows, [0, 0], [n, half]), tf.slice(rows, [0, half], [n, half]));
    rows = (k % 2 === 0 ? pairs : tf.concat([pairs, tf.slice(rows, [0, k - 1], [n, 1])], 1)) as tf.Tensor2D;
  }
  return rows;
}

/**
 * The tensor-op form of PyTorch's max-pool rule for windows laid out as rows of `windows` ([n, k], taps in
 * row-major window order): 1 at each row's first maximum, or, in a row holding a NaN (whose maximum is NaN), at
 * its last NaN ({@link forEachWindow}). The taps are the last axis, and the rank 2, so that the cumulative
 * counts and reductions need no transpose: TF.js 4.22's WebGPU transpose of a tensor cast from bool does not
 * compile (its cast to float32 keeps the int32 buffer; WGSL type mismatch), and WebGL's cumsum and select
 * support ranks up to 4 only.
 */
function firstMaximumMask(windows: tf.Tensor2D): tf.Tensor2D {
  const isMax = tf.cast(tf.equal(windows, rowMaximum(windows)), 'float32');
  // the first maximum is the one with cumulative count 1
  const first = tf.mul(isMax, tf.cast(tf.equal(tf.cumsum(isMax, 1), 1), 'float32'));
  const nans = tf.cast(tf.isNaN(windows), 'float32');
  // the last NaN is the one with count 1 summed from the end
  const lastNaN = tf.mul(nans, tf.cast(tf.equal(tf.cumsum(nans, 1, false, true), 1), 'float32'));
  return tf.where(tf.greater(tf.max(nans, 1, true), 0), lastNaN, first) as tf.Tensor2D;
}

/**
 * The tap each channel of global max pooling sends its gradient to, as a mask [B, H * W, C] of `x` flattened:
 * PyTorch's rule (adaptive_max_pool2d and max_pool2d, torch 1.13 measured): the first maximum, and in a channel
 * that holds a NaN (whose maximum is NaN) the last NaN, as the window walker does ({@link forEachWindow}). By
 * tensor ops ({@link firstMaximumMask}), so the rule is the same on every backend.
 */
function globalMaximumTaps(x: tf.Tensor4D): tf.Tensor3D {
  const [b, h, w, c] = x.shape;
  const rows = tf.reshape(tf.transpose(tf.reshape(x, [b, h * w, c]), [0, 2, 1]), [
    b * c,
    h * w,
  ]) as tf.Tensor2D;
  return tf.transpose(tf.reshape(firstMaximumMask(rows), [b, c, h * w]), [0, 2, 1]) as tf.Tensor3D;
}

/** Plain gradient of global max pooling with max pooling's tie-break and NaN rule ({@link globalMaximumTaps});
 * `r` is [B, C]. */
export function globalMaxPoolGradient(x: tf.Tensor4D, r: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const first = globalMaximumTaps(x);
    const [rb] = r.shape;
    return tf.reshape(tf.mul(first, tf.reshape(r, [rb, 1, c])), [Math.max(b, rb), h, w, c]);
  });
}

/** The transpose of {@link globalMaxPoolGradient}: each channel reads `v` at its tap; [B, C]. */
export function globalMaxPoolGradientAdjoint(x: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const [, h, w, c] = x.shape;
    const first = globalMaximumTaps(x);
    const vb = v.shape[0];
    return tf.sum(tf.mul(first, tf.reshape(v, [vb, h * w, c])), 1) as tf.Tensor2D;
  });
}
