import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import ndarray from 'ndarray';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ImgifyOptions, imgify, normalizeToBytes, palette, toRasterImage } from '../src/index.js';
import { loadGolden } from './golden.js';

const golden = loadGolden();

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CrpError) return err.code;
    throw err;
  }
  throw new Error('expected a CrpError');
}

function px(pal: Uint8Array, k: number): number[] {
  return [pal[k * 3]!, pal[k * 3 + 1]!, pal[k * 3 + 2]!];
}

describe('imgify matches zennit byte for byte', () => {
  it('has heatmap, grid and RGB cases', () => {
    expect(golden.imgify.length).toBeGreaterThanOrEqual(7);
  });

  it.each(golden.imgify.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const image = imgify(
      { data: Float32Array.from(c.input.data), shape: c.input.shape },
      c.settings as ImgifyOptions,
    );
    expect([image.height, image.width, image.channels]).toEqual(c.rgb.shape);
    expect(Array.from(image.data)).toEqual(c.rgb.data);
  });
});

describe('imgify by hand', () => {
  it('min-max normalises and truncates', () => {
    const img = imgify({ data: Float32Array.of(0, 1, 2, 4), shape: [2, 2] }, { cmap: 'gray' });
    // (a - 0) / 4 * 255 = 0, 63.75, 127.5, 255 -> truncated
    expect(Array.from(img.data)).toEqual([0, 0, 0, 63, 63, 63, 127, 127, 127, 255, 255, 255]);
  });

  it('normalises symmetrically around zero', () => {
    const img = imgify({ data: Float32Array.of(-2, 1), shape: [1, 2] }, { symmetric: true });
    // vmin = -2, vmax = 2: bytes 0 and 191; bwr at 191 = [255, 255 * 64 / 127 -> 128, 128]
    expect(Array.from(img.data)).toEqual([0, 0, 255, 255, 128, 128]);
  });

  it('explicit vmin / vmax clip', () => {
    const { bytes } = normalizeToBytes(
      { data: Float32Array.of(-5, 0, 0.5, 5), shape: [2, 2] },
      { vmin: 0, vmax: 1 },
    );
    expect(Array.from(bytes)).toEqual([0, 0, 127, 255]);
  });

  it('computes in float32 for float32 data and in float64 for float64 data, like numpy', () => {
    const values = [0, 0.046666666865348816, Math.fround(1.7)];
    const single = normalizeToBytes({ data: Float32Array.from(values), shape: [1, 3] });
    const double = normalizeToBytes({ data: Float64Array.from(values), shape: [1, 3] });
    // float32: fround(fround(x / 1.7) * 255) = 7 exactly; float64: 6.99999983...
    expect(single.bytes[1]).toBe(7);
    expect(double.bytes[1]).toBe(6);
    expect(single.scaled![1]).toBe(7);
  });

  it('maps constant images to 0, or to the middle when symmetric', () => {
    expect(Array.from(normalizeToBytes({ data: Float32Array.of(3, 3), shape: [1, 2] }).bytes)).toEqual([
      0, 0,
    ]);
    const zero = imgify({ data: new Float32Array(4), shape: [2, 2] }, { symmetric: true });
    expect(Array.from(zero.data.subarray(0, 3))).toEqual(px(palette('bwr'), 127));
  });

  it('applies the palette at level', () => {
    const data = Float32Array.of(-1, -0.3, 0.2, 1);
    const img = imgify({ data, shape: [2, 2] }, { cmap: 'coldnhot', level: 2, symmetric: true });
    const pal = palette('coldnhot', 2);
    const { bytes } = normalizeToBytes({ data, shape: [2, 2] }, { symmetric: true });
    for (let p = 0; p < 4; p++)
      expect(Array.from(img.data.subarray(p * 3, p * 3 + 3))).toEqual(px(pal, bytes[p]!));
  });

  it('takes uint8 RGB as is and moves a leading channel axis to the end', () => {
    const rgb = Uint8Array.of(1, 2, 3, 4, 5, 6);
    expect(Array.from(imgify({ data: rgb, shape: [1, 2, 3] }).data)).toEqual([1, 2, 3, 4, 5, 6]);
    // [C, H, W] = [3, 1, 2]: channel planes r = (1, 4), g = (2, 5), b = (3, 6)
    const chw = Uint8Array.of(1, 4, 2, 5, 3, 6);
    expect(Array.from(imgify({ data: chw, shape: [3, 1, 2] }).data)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('imgify grids', () => {
  const batch = Float32Array.of(0, 1, 2, 3, /* */ 0, 0, 0, 8, /* */ -1, 1, -1, 1);
  it('square grid: floor(sqrt(3)) = 1 column, 3 rows, each image normalised alone', () => {
    const img = imgify({ data: batch, shape: [3, 2, 2] }, { cmap: 'gray', grid: true });
    expect([img.width, img.height]).toEqual([2, 6]);
    const grey = Array.from({ length: 12 }, (_, p) => img.data[p * 3]!);
    expect(grey).toEqual([0, 85, 170, 255, 0, 0, 0, 255, 0, 255, 0, 255]);
  });

  it('[rows, cols] with empty cells filled by the batch minimum or gridfill', () => {
    const img = imgify({ data: batch.subarray(0, 8), shape: [2, 2, 2] }, { cmap: 'gray', grid: [2, 2] });
    expect([img.width, img.height]).toEqual([4, 4]);
    const grey = Array.from({ length: 16 }, (_, p) => img.data[p * 3]!);
    expect(grey).toEqual([0, 85, 0, 0, 170, 255, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0]);
    const filled = imgify(
      { data: batch.subarray(0, 8), shape: [2, 2, 2] },
      { cmap: 'gray', grid: [1, 3], gridfill: 200 },
    );
    expect([filled.width, filled.height]).toEqual([6, 2]);
    const filledGrey = Array.from({ length: 12 }, (_, p) => filled.data[p * 3]!);
    expect(filledGrey).toEqual([0, 85, 0, 0, 200, 200, 170, 255, 0, 255, 200, 200]);
  });

  it('drops images beyond rows * cols', () => {
    const img = imgify({ data: batch, shape: [3, 2, 2] }, { cmap: 'gray', grid: [1, 1] });
    expect(Array.from({ length: 4 }, (_, p) => img.data[p * 3]!)).toEqual([0, 85, 170, 255]);
  });
});

describe('inputs', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('accepts a tf.Tensor, an ndarray (also strided) and { data, shape } alike', () => {
    const values = [0.5, -1, 2, 0.25, 3, -2];
    const plain = imgify({ data: Float32Array.from(values), shape: [2, 3] }, { symmetric: true });
    const tensor = tf.tensor2d(values, [2, 3], 'float32');
    expect(Array.from(imgify(tensor, { symmetric: true }).data)).toEqual(Array.from(plain.data));
    tensor.dispose();
    expect(Array.from(imgify(ndarray(Float32Array.from(values), [2, 3]), { symmetric: true }).data)).toEqual(
      Array.from(plain.data),
    );
    // a transposed view: [3, 2] data read through strides as [2, 3]
    const transposedData = Float32Array.of(0.5, 0.25, -1, 3, 2, -2);
    const view = ndarray(transposedData, [3, 2]).transpose(1, 0);
    expect(Array.from(imgify(view, { symmetric: true }).data)).toEqual(Array.from(plain.data));
  });

  it('reads images for the views: uint8 as is, floats min-max, batch of one squeezed', () => {
    const u8 = toRasterImage({ data: Uint8Array.of(9, 8, 7, 6), shape: [1, 1, 1, 4] });
    expect(u8).toEqual({ width: 1, height: 1, channels: 4, data: Uint8Array.of(9, 8, 7, 6) });
    const float = toRasterImage({ data: Float32Array.of(0, 0.5, 1, 1), shape: [1, 2, 2, 1] });
    expect(Array.from(float.data)).toEqual([0, 127, 255, 255]);
    expect(float.channels).toBe(1);
  });
});

describe('invalid input is a typed error', () => {
  it.each([
    ['NaN', () => imgify({ data: Float32Array.of(0, Number.NaN), shape: [1, 2] }), 'invalid-value'],
    [
      'Inf',
      () => imgify({ data: Float64Array.of(0, Number.POSITIVE_INFINITY), shape: [1, 2] }),
      'invalid-value',
    ],
    ['wrong length', () => imgify({ data: new Float32Array(5), shape: [2, 3] }), 'invalid-shape'],
    ['5 channels', () => imgify({ data: new Float32Array(20), shape: [2, 2, 5] }), 'invalid-shape'],
    ['1-D', () => imgify({ data: new Float32Array(4), shape: [4] }), 'invalid-shape'],
    [
      'grid of 2-D',
      () => imgify({ data: new Float32Array(4), shape: [2, 2] }, { grid: true }),
      'invalid-shape',
    ],
    [
      'vmax <= vmin',
      () => imgify({ data: new Float32Array(4), shape: [2, 2] }, { vmin: 1, vmax: 1 }),
      'invalid-argument',
    ],
    [
      'bad grid',
      () => imgify({ data: new Float32Array(8), shape: [2, 2, 2] }, { grid: [0, 2] }),
      'invalid-argument',
    ],
    [
      'bad gridfill',
      () => imgify({ data: new Float32Array(8), shape: [2, 2, 2] }, { grid: true, gridfill: 300 }),
      'invalid-argument',
    ],
    [
      'bad cmap',
      () => imgify({ data: new Float32Array(4), shape: [2, 2] }, { cmap: 'jet' }),
      'invalid-colormap',
    ],
    ['not an array', () => imgify(42 as never), 'invalid-shape'],
  ])('%s', (_name, fn, expected) => {
    expect(code(fn)).toBe(expected);
  });

  it('says which shapes are valid', () => {
    expect(() => imgify({ data: new Float32Array(20), shape: [2, 2, 5] })).toThrow(
      /expected \[H, W\], \[H, W, C\]/,
    );
  });
});
