import { CrpError } from '@crp/common';
import { type ArrayInput, assertFinite, toDenseArray } from '../raster/array.js';

/** A single relevance map: `height * width` values, row-major. */
export interface Heatmap {
  /** Columns. */
  readonly width: number;
  /** Rows. */
  readonly height: number;
  /** float32 when the input was float32, else float64 */
  readonly data: Float32Array | Float64Array;
}

/**
 * Reads one heatmap from `[H, W]`, `[1, H, W]`, `[H, W, C]` or `[1, H, W, C]` (NHWC relevance; channels are
 * summed, as CRP does for input heatmaps).
 *
 * @throws CrpError `invalid-shape` for other shapes (a batch of more than one), `invalid-value` for NaN / Inf.
 */
export function toHeatmap(input: ArrayInput, what = 'heatmap'): Heatmap {
  const dense = toDenseArray(input, what);
  const shape = dense.shape;
  let h: number;
  let w: number;
  let c = 1;
  if (shape.length === 2) [h, w] = shape as [number, number];
  else if (shape.length === 3 && shape[0] === 1) [, h, w] = shape as [number, number, number];
  else if (shape.length === 3) [h, w, c] = shape as [number, number, number];
  else if (shape.length === 4 && shape[0] === 1) [, h, w, c] = shape as [number, number, number, number];
  else {
    throw new CrpError(
      'invalid-shape',
      `${what} has shape [${shape.join(', ')}]; expected one heatmap: [H, W], [1, H, W], [H, W, C] or [1, H, W, C]`,
    );
  }
  assertFinite(dense.data, what);
  const data = dense.dtype === 'float32' ? new Float32Array(h * w) : new Float64Array(h * w);
  for (let p = 0; p < h * w; p++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += dense.data[p * c + k]!;
    data[p] = s;
  }
  return { width: w, height: h, data };
}
