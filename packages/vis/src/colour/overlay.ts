import { CrpError } from '@crp/common';
import type { ArrayInput } from '../raster/array.js';
import { type RasterImage, toRgb } from '../raster/raster.js';
import type { ColorMap } from './colormap.js';
import { toHeatmap } from './heatmap.js';
import { imgify, toRasterImage } from './imgify.js';

/** Options of {@link overlayHeatmap}. */
export interface OverlayOptions {
  /** Colour map of the heatmap; default `'bwr'`. */
  cmap?: string | ColorMap;
  /** Palette level; default 1. */
  level?: number;
  /** Symmetric normalisation (0 relevance = middle of the map); default true. */
  symmetric?: boolean;
  /** Explicit lower bound of the heatmap. */
  vmin?: number;
  /** Explicit upper bound of the heatmap. */
  vmax?: number;
  /** Opacity of the heatmap over the image, in [0, 1]; default 0.5. */
  alpha?: number;
  /**
   * Scale the opacity per pixel by the relevance's strength (|distance from the middle| for symmetric maps,
   * the normalised value otherwise), so that irrelevant pixels show the image; default false.
   */
  weighted?: boolean;
  /** Show the image in grey below the heatmap, so that the heatmap's colours stand out; default false. */
  grayscale?: boolean;
}

/**
 * Blends a heatmap, coloured by {@link imgify}, over an image: `out = image * (1 - a) + heat * a` per pixel,
 * rounded, with `a = alpha` (or `alpha * strength` when `weighted`). RGBA images are composited over white first.
 *
 * @param image - the input image: a {@link RasterImage} or an array (`[H, W, 3]`, `[1, H, W, 3]`, ...; float
 *   images are min-max normalised)
 * @param heatmap - relevance of the same height and width (`[H, W]`, `[1, H, W]`, `[1, H, W, C]`, ...)
 * @returns a new RGB image owned by the caller
 * @throws CrpError `invalid-shape` if the sizes differ (use {@link resize}), `invalid-argument` for alpha outside [0, 1].
 */
export function overlayHeatmap(
  image: RasterImage | ArrayInput,
  heatmap: ArrayInput,
  options: OverlayOptions = {},
): RasterImage {
  const { alpha = 0.5, weighted = false, grayscale = false, symmetric = true } = options;
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new CrpError('invalid-argument', `overlay alpha must be in [0, 1]; got ${alpha}`);
  }
  const base = toRgb(toRasterImage(image));
  const heat = toHeatmap(heatmap);
  if (heat.width !== base.width || heat.height !== base.height) {
    throw new CrpError(
      'invalid-shape',
      `heatmap is ${heat.width}x${heat.height} but the image is ${base.width}x${base.height} (width x height); ` +
        'they must match: resize one of them first (resize())',
    );
  }
  const settings = {
    symmetric,
    ...(options.cmap === undefined ? {} : { cmap: options.cmap }),
    ...(options.level === undefined ? {} : { level: options.level }),
    ...(options.vmin === undefined ? {} : { vmin: options.vmin }),
    ...(options.vmax === undefined ? {} : { vmax: options.vmax }),
  };
  const shaped = { data: heat.data, shape: [heat.height, heat.width] };
  const colored = imgify(shaped, settings);
  let strength: Uint8Array | undefined;
  if (weighted) strength = imgify(shaped, { ...settings, cmap: 'gray', level: 1 }).data;
  const out = new Uint8Array(base.data.length);
  const src = base.data;
  for (let p = 0; p < base.width * base.height; p++) {
    let a = alpha;
    if (strength !== undefined) {
      const v = strength[p * 3]!;
      a *= symmetric ? Math.abs(v - 127.5) / 127.5 : v / 255;
    }
    const grey = grayscale ? 0.299 * src[p * 3]! + 0.587 * src[p * 3 + 1]! + 0.114 * src[p * 3 + 2]! : 0;
    for (let c = 0; c < 3; c++) {
      const under = grayscale ? grey : src[p * 3 + c]!;
      out[p * 3 + c] = Math.round(under * (1 - a) + colored.data[p * 3 + c]! * a);
    }
  }
  return { width: base.width, height: base.height, channels: 3, data: out };
}
