/** Pixels onto canvases: images as the model sees them and heatmaps coloured as zennit colours them. */
import { drawPatchGrid, imgify, type RasterImage, resize, toRgba } from '@crp/vis';
import type { Heatmap } from './explainer.js';

/** Draws an 8-bit image at its own size (CSS scales it up, pixelated). */
export function drawRaster(canvas: HTMLCanvasElement, image: RasterImage): void {
  canvas.width = image.width;
  canvas.height = image.height;
  const rgba = toRgba(image);
  const data = new ImageData(new Uint8ClampedArray(rgba.data), image.width, image.height);
  canvas.getContext('2d')!.putImageData(data, 0, 0);
}

/**
 * A heatmap coloured with zennit's `bwr` map, symmetric around 0: red for relevance that speaks for the class,
 * blue against, white for none. `vmax` fixes the scale (e.g. to compare several heatmaps).
 */
export function heatmapImage(heatmap: Heatmap, vmax?: number): RasterImage {
  const input = { data: heatmap.data, shape: [heatmap.height, heatmap.width] };
  if (vmax !== undefined && vmax > 0) return imgify(input, { cmap: 'bwr', vmin: -vmax, vmax });
  if (!heatmap.data.some((v) => v !== 0)) return imgify(input, { cmap: 'bwr', vmin: -1, vmax: 1 });
  return imgify(input, { cmap: 'bwr', symmetric: true });
}

/**
 * A ViT's token heatmap for display: one value per patch (`tokens` is the patch grid), coloured as
 * {@link heatmapImage}, each patch upsampled to its block of an `size.width` x `size.height` picture (nearest: one
 * colour per token) and the patch grid drawn over it, so the canvas shows which token is where.
 */
export function tokenHeatmapImage(
  tokens: Heatmap,
  size: { width: number; height: number },
  vmax?: number,
): RasterImage {
  const up = resize(heatmapImage(tokens, vmax), {
    width: size.width,
    height: size.height,
    method: 'nearest',
  });
  return drawPatchGrid(up, { grid: [tokens.height, tokens.width] });
}

/** A conditional heatmap as a concept card shows it: per token with the patch grid for a ViT (at the heatmap's
 * size), else per pixel. */
export function conceptImage(map: { heatmap: Heatmap; tokens?: Heatmap }): RasterImage {
  return map.tokens === undefined ? heatmapImage(map.heatmap) : tokenHeatmapImage(map.tokens, map.heatmap);
}

/** The model's input as a picture: each channel min-max scaled to bytes. */
export function inputImage(
  values: Float32Array,
  height: number,
  width: number,
  channels: number,
): RasterImage {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const data = Uint8Array.from(values, (v) => Math.round((v - lo) * scale));
  return { width, height, channels: channels === 1 ? 1 : 3, data };
}
