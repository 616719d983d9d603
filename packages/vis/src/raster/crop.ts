import { CrpError } from '@crp/common';
import { toHeatmap } from '../colour/heatmap.js';
import type { ArrayInput } from './array.js';
import { assertRasterImage, type RasterImage } from './raster.js';

/** A pixel rectangle: top-left corner (`x` = column, `y` = row; may be negative) and size. */
export interface Box {
  /** Left column (may be negative). */
  readonly x: number;
  /** Top row (may be negative). */
  readonly y: number;
  /** Width in pixels (> 0). */
  readonly width: number;
  /** Height in pixels (> 0). */
  readonly height: number;
}

/** Options of {@link cropBox}. */
export interface CropOptions {
  /** How pixels outside the image are filled: `'constant'` (default) with `fill`, or `'edge'` (nearest pixel). */
  mode?: 'constant' | 'edge';
  /** Fill bytes for `'constant'`: one for all channels or one per channel; default 0 (black / transparent). */
  fill?: number | readonly number[];
}

/**
 * Cuts a box out of an image, e.g. the receptive field of a neuron that the caller computed. Parts of the box
 * outside the image are padded, so the result always has the box's size.
 *
 * @throws CrpError `invalid-argument` for a box whose values are not integers or whose size is not positive.
 */
export function cropBox(image: RasterImage, box: Box, options: CropOptions = {}): RasterImage {
  assertRasterImage(image);
  const { mode = 'constant', fill = 0 } = options;
  const { x, y, width, height } = box;
  if (![x, y, width, height].every(Number.isInteger) || width <= 0 || height <= 0) {
    throw new CrpError(
      'invalid-argument',
      `crop box ${JSON.stringify(box)} is invalid; x, y, width and height must be integers with width, height > 0`,
    );
  }
  if (mode !== 'constant' && mode !== 'edge') {
    throw new CrpError(
      'invalid-argument',
      `crop mode '${String(mode)}' is invalid; valid: 'constant', 'edge'`,
    );
  }
  const c = image.channels;
  const fillValues = typeof fill === 'number' ? new Array<number>(c).fill(fill) : [...fill];
  if (fillValues.length !== c || fillValues.some((v) => !Number.isInteger(v) || v < 0 || v > 255)) {
    throw new CrpError(
      'invalid-argument',
      `crop fill ${JSON.stringify(fill)} must be a byte or ${c} bytes (0..255)`,
    );
  }
  const out = new Uint8Array(width * height * c);
  for (let j = 0; j < height; j++) {
    for (let i = 0; i < width; i++) {
      let sy = y + j;
      let sx = x + i;
      const inside = sy >= 0 && sy < image.height && sx >= 0 && sx < image.width;
      const dst = (j * width + i) * c;
      if (!inside && (mode === 'constant' || image.width === 0 || image.height === 0)) {
        for (let k = 0; k < c; k++) out[dst + k] = fillValues[k]!;
        continue;
      }
      sy = Math.min(Math.max(sy, 0), image.height - 1);
      sx = Math.min(Math.max(sx, 0), image.width - 1);
      const src = (sy * image.width + sx) * c;
      for (let k = 0; k < c; k++) out[dst + k] = image.data[src + k]!;
    }
  }
  return { width, height, channels: c, data: out };
}

/**
 * The smallest box holding every pixel whose relevance exceeds `threshold` times the maximum relevance (as
 * zennit-crp crops reference images to the relevant region), or undefined when no relevance is positive.
 *
 * @param threshold - fraction of the maximum, in [0, 1); default 0.1
 */
export function relevanceBox(heatmap: ArrayInput, threshold = 0.1): Box | undefined {
  if (!(threshold >= 0 && threshold < 1)) {
    throw new CrpError('invalid-argument', `relevanceBox threshold must be in [0, 1); got ${threshold}`);
  }
  const heat = toHeatmap(heatmap);
  let max = 0;
  for (const v of heat.data) if (v > max) max = v;
  if (max <= 0) return undefined;
  let x0 = heat.width;
  let y0 = heat.height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < heat.height; y++) {
    for (let x = 0; x < heat.width; x++) {
      if (heat.data[y * heat.width + x]! > threshold * max) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  return { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}
