import { CrpError } from '@crp/common';
import { assertRasterImage, type Color, parseColor, type RasterImage } from './raster.js';

/** Options of {@link drawPatchGrid}. */
export interface PatchGridOptions {
  /** Patches of the model's input: [rows, columns] (a ViT's 224 px image in 16 px patches: [14, 14]). */
  grid: readonly [number, number];
  /** Colour of the lines (default dark grey `[64, 64, 64]`, visible on the white of a zero-relevance heatmap). */
  color?: Color;
}

/**
 * The image with the patch grid of a Vision Transformer drawn on it, at any display size: the image is divided
 * into `grid` patches of equal size, and the first pixel row (column) of every patch but those of the first row
 * (column), `round(k * height / rows)` for k = 1 .. rows - 1, is drawn in `color`. So a token heatmap (one value
 * per patch, upsampled) shows which token each block of pixels is. Returns a new image (RGB or RGBA as given;
 * grey becomes RGB); the input is not changed.
 */
export function drawPatchGrid(image: RasterImage, options: PatchGridOptions): RasterImage {
  assertRasterImage(image);
  const [rows, cols] = options.grid;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new CrpError(
      'invalid-argument',
      `grid must be [rows, columns] of positive integers, got [${rows}, ${cols}]`,
    );
  }
  if (rows > image.height || cols > image.width) {
    throw new CrpError(
      'invalid-argument',
      `a ${rows}x${cols} patch grid does not fit a ${image.width}x${image.height} image (at most one line per pixel)`,
    );
  }
  const [r, g, b] = parseColor(options.color ?? [64, 64, 64], 'color');
  const channels = image.channels === 1 ? 3 : image.channels;
  const data = new Uint8Array(image.width * image.height * channels);
  for (let i = 0; i < image.width * image.height; i++) {
    for (let c = 0; c < channels; c++) {
      data[i * channels + c] =
        image.channels === 1 ? (c < 3 ? image.data[i]! : 255) : image.data[i * image.channels + c]!;
    }
  }
  const paint = (x: number, y: number) => {
    const at = (y * image.width + x) * channels;
    data[at] = r;
    data[at + 1] = g;
    data[at + 2] = b;
    if (channels === 4) data[at + 3] = 255;
  };
  for (let k = 1; k < rows; k++) {
    const y = Math.round((k * image.height) / rows);
    for (let x = 0; x < image.width; x++) paint(x, y);
  }
  for (let k = 1; k < cols; k++) {
    const x = Math.round((k * image.width) / cols);
    for (let y = 0; y < image.height; y++) paint(x, y);
  }
  return { width: image.width, height: image.height, channels: channels as 3 | 4, data };
}
