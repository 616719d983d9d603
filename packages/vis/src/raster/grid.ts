import { CrpError } from '@crp/common';
import { type Color, parseColor, type RasterImage, toRgb } from './raster.js';

/** Options of {@link imageGrid}. */
export interface ImageGridOptions {
  /** Number of columns; default ceil(sqrt(N)). */
  columns?: number;
  /** Pixels between neighbouring cells; default 4. */
  spacing?: number;
  /** Pixels around the whole grid; default 0. */
  padding?: number;
  /** Colour of spacing, padding and empty space; default white. */
  background?: Color;
}

/**
 * Lays images out row by row in a grid with spacing. Every cell has the size of the largest image; smaller
 * images are centred in their cell. RGBA images are composited over the background.
 *
 * @returns a new RGB image owned by the caller
 * @throws CrpError `invalid-argument` for an empty list or invalid columns / spacing / padding.
 */
export function imageGrid(images: readonly RasterImage[], options: ImageGridOptions = {}): RasterImage {
  const n = images.length;
  if (n === 0)
    throw new CrpError('invalid-argument', 'imageGrid needs at least one image; got an empty list');
  const {
    columns = Math.ceil(Math.sqrt(n)),
    spacing = 4,
    padding = 0,
    background = [255, 255, 255],
  } = options;
  for (const [name, v, min] of [
    ['columns', columns, 1],
    ['spacing', spacing, 0],
    ['padding', padding, 0],
  ] as const) {
    if (!Number.isInteger(v) || v < min) {
      throw new CrpError('invalid-argument', `imageGrid ${name} must be an integer >= ${min}; got ${v}`);
    }
  }
  const bg = parseColor(background, 'background');
  const rgb = images.map((im) => toRgb(im, bg));
  const cellW = Math.max(...rgb.map((im) => im.width));
  const cellH = Math.max(...rgb.map((im) => im.height));
  const cols = Math.min(columns, n);
  const rows = Math.ceil(n / cols);
  const width = 2 * padding + cols * cellW + (cols - 1) * spacing;
  const height = 2 * padding + rows * cellH + (rows - 1) * spacing;
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    data[p * 3] = bg[0];
    data[p * 3 + 1] = bg[1];
    data[p * 3 + 2] = bg[2];
  }
  rgb.forEach((im, k) => {
    const left = padding + (k % cols) * (cellW + spacing) + Math.floor((cellW - im.width) / 2);
    const top = padding + Math.floor(k / cols) * (cellH + spacing) + Math.floor((cellH - im.height) / 2);
    for (let y = 0; y < im.height; y++) {
      const dst = ((top + y) * width + left) * 3;
      data.set(im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3), dst);
    }
  });
  return { width, height, channels: 3, data };
}
