import { CrpError } from '@crp/common';
import type { RasterImage } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { IMAGENET, preprocess } from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const f = Math.fround;

/** The values and shape of preprocess(...), freeing the tensor. */
function run(
  images: RasterImage | RasterImage[],
  options: Parameters<typeof preprocess>[1] = {},
): { shape: number[]; values: number[] } {
  const x = preprocess(images, options);
  const out = { shape: x.shape, values: Array.from(x.dataSync()) };
  x.dispose();
  return out;
}

describe('preprocess: the one definition of image file -> model input', () => {
  it('blends alpha over white, repeats grey to RGB and scales to [0, 1]', () => {
    // one RGBA pixel (255, 0, 0, 128): r = 255 * 128/255 + 255 * 127/255 = 255, g = b = 255 * 127/255 = 127
    const rgba: RasterImage = {
      width: 2,
      height: 1,
      channels: 4,
      data: Uint8Array.of(255, 0, 0, 128, 10, 20, 30, 255),
    };
    expect(run(rgba)).toEqual({
      shape: [1, 1, 2, 3],
      values: [1, 127 / 255, 127 / 255, 10 / 255, 20 / 255, 30 / 255].map(f),
    });
    const grey: RasterImage = { width: 1, height: 1, channels: 1, data: Uint8Array.of(51) };
    expect(run(grey)).toEqual({ shape: [1, 1, 1, 3], values: [0.2, 0.2, 0.2].map(f) });
    expect(run(grey, { channels: 1 })).toEqual({ shape: [1, 1, 1, 1], values: [f(0.2)] });
  });

  it('turns RGB into grey by luminance (0.299 R + 0.587 G + 0.114 B) for one-channel models', () => {
    const rgb: RasterImage = { width: 1, height: 1, channels: 3, data: Uint8Array.of(200, 100, 50) };
    expect(run(rgb, { channels: 1 }).values).toEqual([f((0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255)]);
  });

  it('resizes bilinearly with half-pixel centres, only when the size differs', () => {
    // a row [0, 255] to width 4: sources (x + 0.5) * 2/4 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped
    // to the last pixel) give 0, 0.25, 0.75, 1
    const row: RasterImage = { width: 2, height: 1, channels: 1, data: Uint8Array.of(0, 255) };
    expect(run(row, { channels: 1, inputSize: [1, 4] })).toEqual({
      shape: [1, 1, 4, 1],
      values: [0, 0.25, 0.75, 1],
    });
    // a row [a, b, c, d] to width 2: sources 0.5 and 2.5, the means of neighbours (no antialiasing needed here)
    const four: RasterImage = { width: 4, height: 1, channels: 1, data: Uint8Array.of(0, 100, 200, 250) };
    expect(run(four, { channels: 1, inputSize: [1, 2] }).values).toEqual([f(50 / 255), f(225 / 255)]);
    // the same size: no resampling at all, the exact scaled values
    expect(run(four, { channels: 1, inputSize: [1, 4] }).values).toEqual(
      [0, 100, 200, 250].map((v) => f(v / 255)),
    );
  });

  it('normalises with mean and std after scaling (IMAGENET is torchvision’s)', () => {
    const px: RasterImage = { width: 1, height: 1, channels: 3, data: Uint8Array.of(255, 0, 51) };
    const expected = [1, 0, 0.2].map((v, c) => (v - IMAGENET.mean[c]!) / IMAGENET.std[c]!);
    const got = run(px, { ...IMAGENET }).values;
    got.forEach((v, c) => {
      expect(v).toBeCloseTo(expected[c]!, 6);
    });
    expect(IMAGENET).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  });

  it('batches images; different sizes need inputSize; bad options say what is valid; no tensor leaks', () => {
    const before = tf.memory().numTensors;
    const a: RasterImage = { width: 2, height: 2, channels: 3, data: new Uint8Array(12).fill(255) };
    const b: RasterImage = { width: 4, height: 4, channels: 1, data: new Uint8Array(16) };
    expect(run([a, b], { inputSize: [2, 2] })).toEqual({
      shape: [2, 2, 2, 3],
      values: [...new Array(12).fill(1), ...new Array(12).fill(0)],
    });
    expect(() => preprocess([a, b])).toThrow(/image 1 is 4x4 but image 0 is 2x2; give inputSize/);
    expect(() => preprocess([a, b])).toThrow(expect.objectContaining({ code: 'invalid-shape' }));
    expect(() => preprocess(a, { channels: 2 as never })).toThrow(CrpError);
    expect(() => preprocess(a, { mean: [0.5, 0.5] })).toThrow(/1 or 3 values/);
    expect(() => preprocess(a, { std: [0] })).toThrow(/std > 0/);
    expect(() => preprocess(a, { inputSize: [0, 2] })).toThrow(/inputSize must be/);
    expect(tf.memory().numTensors).toBe(before);
  });
});
