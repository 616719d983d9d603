import { CrpError } from '@crp/common';
import { assertRasterImage, type RasterImage } from './raster.js';

/** Options of {@link resize}: a target size (`width` and/or `height`, the other keeps the aspect ratio) or a `scale`. */
export interface ResizeOptions {
  /** Target width in pixels. */
  width?: number;
  /** Target height in pixels. */
  height?: number;
  /** Factor for both sides (instead of width / height). */
  scale?: number;
  /** `'nearest'` keeps pixels crisp (good for small heatmaps; the default), `'bilinear'` is smooth. */
  method?: 'nearest' | 'bilinear';
}

/**
 * Resizes an image (pixel centres aligned, as `tf.image.resize*` with `halfPixelCenters`).
 *
 * @returns a new image with the same channels, owned by the caller
 * @throws CrpError `invalid-argument` when no valid size follows from the options.
 */
export function resize(image: RasterImage, options: ResizeOptions): RasterImage {
  assertRasterImage(image);
  const { method = 'nearest', scale } = options;
  let { width, height } = options;
  if (scale !== undefined) {
    width = Math.max(1, Math.round(image.width * scale));
    height = Math.max(1, Math.round(image.height * scale));
  } else if (width !== undefined && height === undefined) {
    height = Math.max(1, Math.round((image.height * width) / Math.max(image.width, 1)));
  } else if (height !== undefined && width === undefined) {
    width = Math.max(1, Math.round((image.width * height) / Math.max(image.height, 1)));
  }
  if (
    width === undefined ||
    height === undefined ||
    !Number.isInteger(width) ||
    !Number.isInteger(height) ||
    width < 1 ||
    height < 1 ||
    image.width < 1 ||
    image.height < 1 ||
    (method !== 'nearest' && method !== 'bilinear')
  ) {
    throw new CrpError(
      'invalid-argument',
      `cannot resize a ${image.width}x${image.height} image with ${JSON.stringify(options)}; give a positive scale or ` +
        "integer width and/or height >= 1, and method 'nearest' or 'bilinear'",
    );
  }
  const c = image.channels;
  const out = new Uint8Array(width * height * c);
  const sx = image.width / width;
  const sy = image.height / height;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dst = (y * width + x) * c;
      if (method === 'nearest') {
        const src =
          (Math.min(Math.floor((y + 0.5) * sy), image.height - 1) * image.width +
            Math.min(Math.floor((x + 0.5) * sx), image.width - 1)) *
          c;
        for (let k = 0; k < c; k++) out[dst + k] = image.data[src + k]!;
        continue;
      }
      const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), image.height - 1);
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), image.width - 1);
      const y0 = Math.floor(fy);
      const x0 = Math.floor(fx);
      const y1 = Math.min(y0 + 1, image.height - 1);
      const x1 = Math.min(x0 + 1, image.width - 1);
      const wy = fy - y0;
      const wx = fx - x0;
      for (let k = 0; k < c; k++) {
        const at = (yy: number, xx: number) => image.data[(yy * image.width + xx) * c + k]!;
        const top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx;
        const bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx;
        out[dst + k] = Math.round(top * (1 - wy) + bottom * wy);
      }
    }
  }
  return { width, height, channels: c, data: out };
}
