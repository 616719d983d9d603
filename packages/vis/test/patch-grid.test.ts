/** The patch grid of a ViT over a token heatmap: line pixels, untouched pixels, any display size, bad grids. */
import { describe, expect, it } from 'vitest';
import { drawPatchGrid, imgify, type RasterImage, resize } from '../src/index.js';

const rgbAt = (im: RasterImage, x: number, y: number) =>
  Array.from(im.data.subarray((y * im.width + x) * im.channels, (y * im.width + x) * im.channels + 3));

describe('drawPatchGrid', () => {
  it('draws the first row and column of every patch but the first, and leaves the rest as it was', () => {
    // a 2x2 token heatmap (one value per patch), upsampled to 8x8 for display: 4 px per patch
    const tokens = imgify(
      { data: Float32Array.from([1, -1, 0.5, 0]), shape: [2, 2] },
      { cmap: 'bwr', symmetric: true },
    );
    const heat = resize(tokens, { width: 8, height: 8, method: 'nearest' });
    const grid = drawPatchGrid(heat, { grid: [2, 2] });
    expect([grid.width, grid.height, grid.channels]).toEqual([8, 8, 3]);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const onLine = x === 4 || y === 4;
        expect(rgbAt(grid, x, y)).toEqual(onLine ? [64, 64, 64] : rgbAt(heat, x, y));
      }
    }
    // the input is not changed
    expect(rgbAt(heat, 4, 4)).not.toEqual([64, 64, 64]);
  });

  it('places lines at round(k * size / patches) for display sizes that are not multiples, in any colour', () => {
    const white: RasterImage = { width: 10, height: 7, channels: 1, data: new Uint8Array(70).fill(255) };
    const grid = drawPatchGrid(white, { grid: [3, 4], color: '#ff0000' });
    expect(grid.channels).toBe(3);
    const rows = [2, 5]; // round(7/3), round(14/3)
    const cols = [3, 5, 8]; // round(10/4 = 2.5) = 3, round(5), round(7.5) = 8
    for (let y = 0; y < 7; y++) {
      for (let x = 0; x < 10; x++) {
        expect(rgbAt(grid, x, y)).toEqual(
          rows.includes(y) || cols.includes(x) ? [255, 0, 0] : [255, 255, 255],
        );
      }
    }
  });

  it('keeps alpha opaque on lines and refuses grids that do not fit', () => {
    const rgba: RasterImage = { width: 4, height: 4, channels: 4, data: new Uint8Array(64) };
    const grid = drawPatchGrid(rgba, { grid: [2, 2] });
    expect(Array.from(grid.data.subarray((2 * 4 + 0) * 4, (2 * 4 + 0) * 4 + 4))).toEqual([64, 64, 64, 255]);
    expect(Array.from(grid.data.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expect(() => drawPatchGrid(rgba, { grid: [0, 2] })).toThrow(/positive integers/);
    expect(() => drawPatchGrid(rgba, { grid: [5, 2] })).toThrow(/does not fit a 4x4 image/);
  });
});
