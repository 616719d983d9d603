import { type TypedArray, util } from '@tensorflow/tfjs-core';

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
  for (let n = 0, to = 0; n < count; n++, to += run) {
    out.set(src.subarray(from, from + run), to);
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
