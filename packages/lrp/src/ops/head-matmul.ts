/**
 * The products of attention (scores q k^T, attention-weighted values A v, and the products of their relevance
 * rules) where one factor is the forward pass's activation of one image, shared by every row of relevance.
 *
 * Why not `tf.matMul` on the 4-D tensors: TF.js's wasm backend (tfjs-backend-wasm 4.22,
 * `batch_mat_mul_impl.cc`) hands a product to XNNPACK's fully-connected operator (SIMD, threaded over the
 * pthreadpool) only when both factors are 2-D (batch 1) and neither is transposed; every batched product of
 * attention [rows, heads, tokens, d] runs its plain scalar loop on one thread. So on wasm the product runs per
 * head as one 2-D product: head h of every relevance row stacked into one [R * M, P] operand times the head's
 * shared [P, Q] factor, which XNNPACK packs once and keeps for as long as that tensor lives. The heads are taken
 * apart by one transpose (heads first) and a tensor per head written from the heap: on wasm `tf.slice` and
 * `tf.split` copy their whole input out of the heap for every piece, and `tf.gather` / `tf.stridedSlice` cost
 * more than the product they feed (measured on [8, 12, 197, 197]: 220 and 378 ms CPU against 190 ms for the
 * product). Other backends keep `tf.matMul`.
 *
 * Kept after @crp/backend's in-place wasm `Slice` (which `selectBackend` installs): `tf.slice` per head after the
 * same transpose was measured against this copy (bench/src/vit-head-split.ts, vit_b_16 shapes, CPU ms per product,
 * medians of 7 or 15 interleaved calls, four runs at load 18-27). Threaded (2): R k with 8 rows 50 / 52 / 65 / 64 here
 * against 54 / 60 / 68 / 66 by slice; R v^T with 8 rows 81 / 111 / 91 / 103 against 84 / 112 / 105 / 117; A v with
 * one row alike (10-18 ms both). So slicing is no faster where it matters, and it would be far slower wherever the
 * application has not installed that kernel (TF.js's own copies the whole input for every head), which a library
 * cannot know. One thread (no shared heap, so `heapValues` falls back to `dataSync`) was the exception: slice took
 * 36-44 ms against 97-108 for R k, 89 against 105-124 for R v^T.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Swaps the last two axes. */
function transposeLast(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1]!, perm[t.rank - 2]!];
  return tf.transpose(t, perm);
}

/**
 * Whether the per-head path is taken: on wasm, for a shared factor of batch 1 (see the module comment), and not
 * under a gradient tape (its values pass through JavaScript, which autodiff cannot follow: the gradient rule
 * differentiates a matMul node's forward).
 */
function perHead(s: tf.Tensor): boolean {
  return tf.getBackend() === 'wasm' && s.rank >= 3 && s.shape[0] === 1 && !tf.engine().isTapeOn();
}

/** Whether x [R, ...heads, ., .] has the heads of s [1, ...heads, ., .]. */
function sameHeads(x: tf.Tensor, s: tf.Tensor): boolean {
  return x.rank === s.rank && x.shape.slice(1, -2).every((d, i) => d === s.shape[i + 1]);
}

/** A factor S [1, ...heads, P, Q] of one image, multiplied from the right onto rows of relevance. */
export interface SharedFactor {
  /** op(x) S: x [R, ...heads, M, P] (or [R, ...heads, P, M] when `transposeX`) -> [R, ...heads, M, Q]. */
  times(x: tf.Tensor, transposeX?: boolean): tf.Tensor;
  /** x S^T: x [R, ...heads, M, Q] -> [R, ...heads, M, P]. */
  timesTransposed(x: tf.Tensor): tf.Tensor;
  /** S^T x = (x^T S)^T: x [R, ...heads, P, N] -> [R, ...heads, Q, N]. */
  transposedTimes(x: tf.Tensor): tf.Tensor;
  /** Frees the per-head copies (not `s` itself). */
  dispose(): void;
}

/** The wasm backend's view of a tensor in its heap (a public method of its BackendWasm class). */
interface HeapBackend {
  typedArrayFromHeap?(t: tf.Tensor): Float32Array;
}

/**
 * The values of t, read in place where that is safe. The threaded wasm build's heap is shared memory, which never
 * detaches when it grows, so a view of it stays valid while new tensors are allocated; copying it out as
 * `dataSync` does (TypedArray.slice on shared memory) is slow: 75 ms for 15 MB, measured. Elsewhere `dataSync`.
 */
function heapValues(t: tf.Tensor): Float32Array {
  const heap = (tf.backend() as HeapBackend).typedArrayFromHeap?.(t);
  const shared = typeof SharedArrayBuffer === 'function' && heap?.buffer instanceof SharedArrayBuffer;
  return shared && heap.length === t.size ? heap : (t.dataSync() as Float32Array);
}

/**
 * The [M, P] blocks of x [R, H, M, P] for head h (of x [R, H, P, M] transposed when `transpose`), stacked as
 * [R * M, P]: one transpose puts the heads first ([H, R, M, P], each head's blocks then contiguous), and each
 * head is written into a tensor of its own from the heap.
 */
function headBlocks(x: tf.Tensor, transpose = false): tf.Tensor2D[] {
  return tf.tidy(() => {
    const [a, b] = x.shape.slice(-2) as [number, number];
    const [m, p] = transpose ? [b, a] : [a, b];
    const rows = x.shape[0]!;
    const h = x.size / (rows * m * p);
    const grouped = tf.reshape(x, [rows, h, a, b]);
    // with one row and no transpose the heads are first already
    const laid =
      rows === 1 && !transpose
        ? grouped
        : tf.transpose(grouped, [1, 0, transpose ? 3 : 2, transpose ? 2 : 3]);
    const values = heapValues(laid);
    const size = rows * m * p;
    return Array.from({ length: h }, (_, k) =>
      tf.tensor2d(values.subarray(k * size, (k + 1) * size), [rows * m, p]),
    );
  });
}

/**
 * op(x) [R, ...heads, M, P] times the heads' 2-D factors [P, Q]: per head, the R rows' [M, P] blocks stacked into
 * one [R * M, P] operand and multiplied in one 2-D product; the results are laid back as [R, ...heads, M, Q].
 */
function timesHeads(x: tf.Tensor, heads: readonly tf.Tensor2D[], transposeX = false): tf.Tensor {
  return tf.tidy(() => {
    const m = x.shape[transposeX ? x.rank - 1 : x.rank - 2]!;
    const q = heads[0]!.shape[1];
    const rows = x.shape[0]!;
    const parts = headBlocks(x, transposeX).map((block, k) =>
      tf.reshape(tf.matMul(block, heads[k]!), [rows, 1, m, q]),
    );
    return tf.reshape(tf.concat(parts, 1), [...x.shape.slice(0, -2), m, q]);
  });
}

/** The factor s [1, ...heads, P, Q] shared by every row; see {@link SharedFactor}. */
export function sharedFactor(s: tf.Tensor): SharedFactor {
  const plainPath: SharedFactor = {
    times: (x, transposeX = false) => tf.matMul(x, s, transposeX, false),
    timesTransposed: (x) => tf.matMul(x, s, false, true),
    transposedTimes: (x) => tf.matMul(s, x, true, false),
    dispose: () => {},
  };
  if (!perHead(s)) return plainPath;
  // made on first use (a rule needs one or two of the layouts) and kept out of the caller's tidy scope
  let plain: tf.Tensor2D[] | undefined;
  let transposed: tf.Tensor2D[] | undefined;
  const plainHeads = () => {
    plain ??= headBlocks(s).map((t) => tf.keep(t));
    return plain;
  };
  const transposedHeads = () => {
    transposed ??= headBlocks(s, true).map((t) => tf.keep(t));
    return transposed;
  };
  return {
    times: (x, transposeX = false) => {
      if (!sameHeads(x, s)) return plainPath.times(x, transposeX);
      return timesHeads(x, plainHeads(), transposeX);
    },
    timesTransposed: (x) =>
      sameHeads(x, s) ? timesHeads(x, transposedHeads()) : plainPath.timesTransposed(x),
    transposedTimes: (x) =>
      sameHeads(x, s)
        ? tf.tidy(() => transposeLast(timesHeads(x, plainHeads(), true)))
        : plainPath.transposedTimes(x),
    dispose: () => {
      if (plain) tf.dispose(plain);
      if (transposed) tf.dispose(transposed);
      plain = transposed = undefined;
    },
  };
}

/**
 * `a op(b)` of two activations batched over the leading axes, as `tf.matMul(a, b, false, transposeB)` computes
 * it; per head on wasm when b is one image's (see the module comment).
 */
export function matMulShared(a: tf.Tensor, b: tf.Tensor, transposeB: boolean): tf.Tensor {
  if (!perHead(b)) return tf.matMul(a, b, false, transposeB);
  const factor = sharedFactor(b);
  try {
    return transposeB ? factor.timesTransposed(a) : factor.times(a);
  } finally {
    factor.dispose();
  }
}
