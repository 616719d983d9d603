import { CrpError } from '@crp/common';
import type { ArrayInput } from '../raster/array.js';
import { type Color, parseColor, type RasterImage, toRgb } from '../raster/raster.js';
import { type Heatmap, toHeatmap } from './heatmap.js';
import { toRasterImage } from './imgify.js';

/** Options of {@link opacityView}. */
export interface OpacityOptions {
  /** Standard deviation in pixels of a Gaussian blur of the relevance before normalisation; default 0 (none). */
  blur?: number;
  /** Opacity = (relevance / max relevance) ^ gamma; default 1 (proportional). */
  gamma?: number;
  /** Hard mask instead of a ramp: opacity 1 where normalised relevance > threshold, else `minOpacity`. */
  threshold?: number;
  /** The lowest opacity, so that the context stays faintly visible; default 0. */
  minOpacity?: number;
  /** What shows through: a colour (default white), or `'transparent'` for an RGBA image. */
  background?: Color | 'transparent';
}

/** Separable Gaussian blur with edge clamping. */
export function blurHeatmap(heat: Heatmap, sigma: number): Heatmap {
  if (sigma <= 0) return heat;
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let k = -radius; k <= radius; k++) {
    const v = Math.exp(-(k * k) / (2 * sigma * sigma));
    kernel[k + radius] = v;
    sum += v;
  }
  for (let k = 0; k < kernel.length; k++) kernel[k]! /= sum;
  const { width: w, height: h } = heat;
  const tmp = new Float64Array(w * h);
  const out = new Float64Array(w * h);
  const clamp = (v: number, n: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -radius; k <= radius; k++) s += kernel[k + radius]! * heat.data[y * w + clamp(x + k, w)]!;
      tmp[y * w + x] = s;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -radius; k <= radius; k++) s += kernel[k + radius]! * tmp[clamp(y + k, h) * w + x]!;
      out[y * w + x] = s;
    }
  }
  return { width: w, height: h, data: out };
}

/**
 * The per-pixel opacity of {@link opacityView} in [0, 1]: positive relevance (optionally blurred), divided by
 * its maximum, then `^ gamma` or thresholded, and raised to at least `minOpacity`. All zero (or `minOpacity`)
 * when no pixel has positive relevance.
 */
export function relevanceOpacity(heatmap: ArrayInput, options: OpacityOptions = {}): Heatmap {
  const { blur = 0, gamma = 1, threshold, minOpacity = 0 } = options;
  if (!(blur >= 0) || !(gamma > 0) || !(minOpacity >= 0 && minOpacity <= 1)) {
    throw new CrpError(
      'invalid-argument',
      `opacity options out of range (blur ${blur}, gamma ${gamma}, minOpacity ${minOpacity}); valid: blur >= 0, gamma > 0, 0 <= minOpacity <= 1`,
    );
  }
  if (threshold !== undefined && !(threshold >= 0 && threshold < 1)) {
    throw new CrpError('invalid-argument', `opacity threshold must be in [0, 1); got ${threshold}`);
  }
  const raw = toHeatmap(heatmap);
  const positive: Heatmap = {
    width: raw.width,
    height: raw.height,
    data: raw.data.map((v) => Math.max(v, 0)),
  };
  const heat = blurHeatmap(positive, blur);
  let max = 0;
  for (const v of heat.data) if (v > max) max = v;
  const out = new Float64Array(heat.data.length);
  for (let p = 0; p < out.length; p++) {
    const r = max > 0 ? heat.data[p]! / max : 0;
    const o = threshold === undefined ? r ** gamma : r > threshold ? 1 : 0;
    out[p] = minOpacity + (1 - minOpacity) * o;
  }
  return { width: heat.width, height: heat.height, data: out };
}

/**
 * The opacity view of CRP papers: the image shown with opacity proportional to positive relevance, so that
 * only the part of a reference image that a concept responds to stands out (see {@link relevanceOpacity}).
 *
 * @returns a new RGB image (the image composited over `background`), or RGBA with the opacity as alpha when
 *   `background` is `'transparent'`
 * @throws CrpError `invalid-shape` if image and heatmap differ in size, `invalid-argument`.
 */
export function opacityView(
  image: RasterImage | ArrayInput,
  heatmap: ArrayInput,
  options: OpacityOptions = {},
): RasterImage {
  const { background = [255, 255, 255] } = options;
  const base = toRgb(toRasterImage(image));
  const opacity = relevanceOpacity(heatmap, options);
  if (opacity.width !== base.width || opacity.height !== base.height) {
    throw new CrpError(
      'invalid-shape',
      `heatmap is ${opacity.width}x${opacity.height} but the image is ${base.width}x${base.height} (width x height); they must match`,
    );
  }
  const n = base.width * base.height;
  if (background === 'transparent') {
    const out = new Uint8Array(n * 4);
    for (let p = 0; p < n; p++) {
      for (let c = 0; c < 3; c++) out[p * 4 + c] = base.data[p * 3 + c]!;
      out[p * 4 + 3] = Math.round(opacity.data[p]! * 255);
    }
    return { width: base.width, height: base.height, channels: 4, data: out };
  }
  const bg = parseColor(background, 'background');
  const out = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    const a = opacity.data[p]!;
    for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round(base.data[p * 3 + c]! * a + bg[c]! * (1 - a));
  }
  return { width: base.width, height: base.height, channels: 3, data: out };
}
