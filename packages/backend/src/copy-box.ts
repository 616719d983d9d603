import { type TypedArray, util } from '@tensorflow/tfjs-core';

/** Runs up to this many elements are copied one by one: a typed-array view per run costs more than they do. */
const SHORT_RUN = 16;

/**
 * `copy(from, to, n)`: `out[to .. to + n) = src[from .. from + n)`. Without a new typed-array view per run (a
 * `subarray` each, which cost more than copying a run of 64 floats): views of one buffer (the wasm heap) copy by
 * `copyWithin` on a view of the whole buffer, short runs element by element. `src` and `out` must not overlap.
 */
export function runCopier(src: TypedArray, out: TypedArray): (from: number, to: number, n: number) => void {
  const size = src.BYTES_PER_ELEMENT;
  if (
    src.buffer === out.buffer &&
    src.constructor === out.constructor &&
    src.byteOffset % size === 0 &&
    out.byteOffset % size === 0
  ) {
    const heap = new (src.constructor as new (b: ArrayBufferLike) => TypedArray)(src.buffer);
    const [s, o] = [src.byteOffset / size, out.byteOffset / size];
    return (from, to, n) => {
      if (n > SHORT_RUN) heap.copyWithin(o + to, s + from, s + from + n);
      else for (let k = 0; k < n; k++) heap[o + to + k] = heap[s + from + k]!;
    };
  }
  return (from, to, n) => {
    if (n > SHORT_RUN) out.set(src.subarray(from, from + n), to);
    else for (let k = 0; k < n; k++) out[to + k] = src[from + k]!;
  };
}

/**
 * Copies the box `begin`/`size` of a row-major array of `shape` into `out`, in runs as long as the box allows:
 * the trailing axes the box spans completely join the innermost run, so a crop of H and W in NHWC copies rows
 * of W·C values, and a slice along the first axis is one copy.
 */
export function copyBox(
  src: TypedArray,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
  out: TypedArray,
): void {
  const rank = shape.length;
  if (rank === 0) {
    out[0] = src[0]!;
    return;
  }
  const strides = util.computeStrides(shape as number[]);
  const stride = (k: number) => (k === rank - 1 ? 1 : strides[k]!);
  // the run: axis `inner` and every full axis after it
  let inner = rank - 1;
  while (inner > 0 && size[inner] === shape[inner]) inner--;
  const run = size[inner]! * stride(inner);
  const outer = size.slice(0, inner);
  const count = outer.reduce((a, b) => a * b, 1);
  const index = new Array<number>(inner).fill(0);
  let base = begin[inner]! * stride(inner);
  for (let k = 0; k < inner; k++) base += begin[k]! * stride(k);
  let from = base;
  const copy = runCopier(src, out);
  for (let n = 0, to = 0; n < count; n++, to += run) {
    copy(from, to, run);
    // next outer index (odometer, last outer axis fastest)
    for (let k = inner - 1; k >= 0; k--) {
      index[k]!++;
      from += stride(k);
      if (index[k]! < outer[k]!) break;
      from -= index[k]! * stride(k);
      index[k] = 0;
    }
  }
}
