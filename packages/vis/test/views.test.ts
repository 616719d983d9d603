import { CrpError } from '@crp/common';
import { describe, expect, it } from 'vitest';
import {
  blurHeatmap,
  cropBox,
  imageGrid,
  opacityView,
  overlayHeatmap,
  type RasterImage,
  relevanceBox,
  relevanceOpacity,
  resize,
  toHeatmap,
} from '../src/index.js';

const rgb = (width: number, height: number, values: number[]): RasterImage => ({
  width,
  height,
  channels: 3,
  data: Uint8Array.from(values),
});
const grey = (width: number, height: number, values: number[]): RasterImage => ({
  width,
  height,
  channels: 1,
  data: Uint8Array.from(values),
});

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CrpError) return err.code;
    throw err;
  }
  throw new Error('expected a CrpError');
}

describe('heatmaps', () => {
  it('sums channels of NHWC relevance', () => {
    const h = toHeatmap({ data: Float32Array.of(1, 2, 3, -1, -1, -1), shape: [1, 1, 2, 3] });
    expect([h.width, h.height, Array.from(h.data)]).toEqual([2, 1, [6, -3]]);
    expect(code(() => toHeatmap({ data: new Float32Array(8), shape: [2, 2, 2, 1] }))).toBe('invalid-shape');
  });
});

describe('overlayHeatmap', () => {
  const image = rgb(2, 1, [10, 20, 30, 200, 200, 200]);
  const heat = { data: Float32Array.of(-1, 1), shape: [1, 2] };

  it('alpha-blends the bwr heatmap', () => {
    // heat colours: [0, 0, 255] and [255, 0, 0]; out = round(img * 0.5 + heat * 0.5)
    const out = overlayHeatmap(image, heat, { alpha: 0.5 });
    expect(Array.from(out.data)).toEqual([5, 10, 143, 228, 100, 100]);
    expect(Array.from(overlayHeatmap(image, heat, { alpha: 0 }).data)).toEqual(Array.from(image.data));
  });

  it('weighted: pixels without relevance keep the image', () => {
    const out = overlayHeatmap(
      image,
      { data: Float32Array.of(0, 1), shape: [1, 2] },
      { alpha: 1, weighted: true },
    );
    // zero -> byte 127 (bwr [254, 254, 255]) with weight 0.5 / 127.5: 10 * (1 - w) + 254 * w = 10.96 -> 11
    expect(Array.from(out.data.subarray(0, 3))).toEqual([11, 21, 31]);
    expect(Array.from(out.data.subarray(3))).toEqual([255, 0, 0]);
  });

  it('grayscale base', () => {
    const out = overlayHeatmap(image, heat, { alpha: 0, grayscale: true });
    const g = Math.round(0.299 * 10 + 0.587 * 20 + 0.114 * 30);
    expect(Array.from(out.data.subarray(0, 3))).toEqual([g, g, g]);
  });

  it('rejects size mismatch and alpha outside [0, 1]', () => {
    expect(code(() => overlayHeatmap(image, { data: new Float32Array(3), shape: [1, 3] }))).toBe(
      'invalid-shape',
    );
    expect(code(() => overlayHeatmap(image, heat, { alpha: 1.5 }))).toBe('invalid-argument');
  });
});

describe('opacityView', () => {
  const image = rgb(4, 1, [100, 150, 200, 100, 150, 200, 100, 150, 200, 100, 150, 200]);
  const heat = { data: Float32Array.of(0, 0.5, 1, -1), shape: [1, 4] };

  it('opacity is proportional to positive relevance', () => {
    const out = opacityView(image, heat);
    expect(Array.from(out.data)).toEqual([255, 255, 255, 178, 203, 228, 100, 150, 200, 255, 255, 255]);
    const clear = opacityView(image, heat, { background: 'transparent' });
    expect(clear.channels).toBe(4);
    expect([3, 7, 11, 15].map((i) => clear.data[i])).toEqual([0, 128, 255, 0]);
  });

  it('threshold, gamma and minOpacity', () => {
    expect(Array.from(relevanceOpacity(heat, { threshold: 0.4, minOpacity: 0.25 }).data)).toEqual([
      0.25, 1, 1, 0.25,
    ]);
    expect(Array.from(relevanceOpacity(heat, { gamma: 2 }).data)).toEqual([0, 0.25, 1, 0]);
    expect(Array.from(relevanceOpacity({ data: Float32Array.of(-1, -2), shape: [1, 2] }).data)).toEqual([
      0, 0,
    ]);
    expect(code(() => relevanceOpacity(heat, { gamma: 0 }))).toBe('invalid-argument');
    expect(code(() => opacityView(rgb(1, 1, [0, 0, 0]), heat))).toBe('invalid-shape');
  });

  it('blur keeps the total and spreads a point symmetrically', () => {
    const data = new Float64Array(81);
    data[40] = 1;
    const blurred = blurHeatmap({ width: 9, height: 9, data }, 1);
    let total = 0;
    for (const v of blurred.data) total += v;
    expect(total).toBeCloseTo(1, 10);
    expect(blurred.data[39]).toBeCloseTo(blurred.data[41]!, 12);
    expect(blurred.data[31]).toBeCloseTo(blurred.data[39]!, 12);
    expect(blurred.data[40]!).toBeLessThan(0.2);
  });
});

describe('cropBox and relevanceBox', () => {
  const im = grey(3, 3, [1, 2, 3, 4, 5, 6, 7, 8, 9]);

  it('pads a box that leaves the image', () => {
    expect(Array.from(cropBox(im, { x: -1, y: -1, width: 3, height: 3 }).data)).toEqual([
      0, 0, 0, 0, 1, 2, 0, 4, 5,
    ]);
    expect(Array.from(cropBox(im, { x: -1, y: -1, width: 3, height: 3 }, { mode: 'edge' }).data)).toEqual([
      1, 1, 2, 1, 1, 2, 4, 4, 5,
    ]);
    expect(Array.from(cropBox(im, { x: 2, y: 1, width: 2, height: 1 }, { fill: 99 }).data)).toEqual([6, 99]);
    expect(Array.from(cropBox(im, { x: 1, y: 1, width: 2, height: 2 }).data)).toEqual([5, 6, 8, 9]);
  });

  it('rejects invalid boxes', () => {
    expect(code(() => cropBox(im, { x: 0, y: 0, width: 0, height: 2 }))).toBe('invalid-argument');
    expect(code(() => cropBox(im, { x: 0.5, y: 0, width: 1, height: 1 }))).toBe('invalid-argument');
  });

  it('finds the box of relevant pixels', () => {
    const heat = { data: Float32Array.of(0, 0, 0, 0, 0, 0.5, 0.05, 0, 0, 1, 0, 0), shape: [3, 4] };
    expect(relevanceBox(heat, 0.1)).toEqual({ x: 1, y: 1, width: 1, height: 2 });
    expect(relevanceBox(heat, 0.01)).toEqual({ x: 1, y: 1, width: 2, height: 2 });
    expect(relevanceBox({ data: Float32Array.of(-1, 0), shape: [1, 2] })).toBeUndefined();
  });
});

describe('imageGrid', () => {
  it('lays out cells of the largest size with spacing, centring smaller images', () => {
    const a = rgb(1, 1, [10, 10, 10]);
    const b = rgb(1, 1, [20, 20, 20]);
    const c = rgb(2, 1, [30, 30, 30, 40, 40, 40]);
    const out = imageGrid([a, b, c], { columns: 2, spacing: 1, background: [0, 0, 0] });
    // cells 2x1, 2 columns, 2 rows: width 2 + 1 + 2 = 5, height 1 + 1 + 1 = 3
    expect([out.width, out.height]).toEqual([5, 3]);
    const r = Array.from({ length: 15 }, (_, p) => out.data[p * 3]!);
    expect(r).toEqual([10, 0, 0, 20, 0, 0, 0, 0, 0, 0, 30, 40, 0, 0, 0]);
  });

  it('rejects an empty list and bad options', () => {
    expect(code(() => imageGrid([]))).toBe('invalid-argument');
    expect(code(() => imageGrid([rgb(1, 1, [0, 0, 0])], { columns: 0 }))).toBe('invalid-argument');
  });
});

describe('resize', () => {
  it('nearest replicates pixels, bilinear interpolates between centres', () => {
    const im = grey(2, 1, [0, 255]);
    expect(Array.from(resize(im, { scale: 2 }).data)).toEqual([0, 0, 255, 255, 0, 0, 255, 255]);
    expect(Array.from(resize(im, { width: 4, height: 1, method: 'bilinear' }).data)).toEqual([
      0, 64, 191, 255,
    ]);
    const keep = resize(grey(4, 2, new Array(8).fill(1)), { width: 2 });
    expect([keep.width, keep.height]).toEqual([2, 1]);
    expect(code(() => resize(im, {}))).toBe('invalid-argument');
  });
});
