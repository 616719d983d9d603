import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Progress, progressTracker } from '@crp/common';
import { type ImageFolderListOptions, listImageFolder, readImages } from '@crp/models/node';
import { encodePng } from '@crp/vis';
import * as tf from '@tensorflow/tfjs-core';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromIterator, fromLoader, fromTensors, type LabelledBatch, subset } from '../src/index.js';
import { batchesOf } from '../src/internal.js';
import { expectCrpError, useWasm, values } from './helpers.js';

useWasm();

/** An image folder read lazily: listed once by @crp/models/node, each batch read on demand by `fromLoader`. */
async function lazyFolder(
  root: string,
  options: ImageFolderListOptions & { batchSize?: number; inputSize?: [number, number] } = {},
) {
  const { classes, files, labels } = await listImageFolder(root, options);
  const load = (positions: readonly number[]) =>
    readImages(
      positions.map((p) => files[p]!),
      options.inputSize === undefined ? {} : { inputSize: options.inputSize },
    );
  const dataset = fromLoader(
    load,
    labels,
    options.batchSize === undefined ? {} : { batchSize: options.batchSize },
  );
  return { classes, files, dataset };
}

async function collect(
  source: AsyncIterable<LabelledBatch>,
): Promise<{ labels: number[]; indices: number[]; rows: number[][]; sizes: number[] }> {
  const out = {
    labels: [] as number[],
    indices: [] as number[],
    rows: [] as number[][],
    sizes: [] as number[],
  };
  for await (const b of batchesOf(source, 1000)) {
    out.labels.push(...b.labels);
    out.indices.push(...b.indices);
    out.sizes.push(b.labels.length);
    const v = values(b.images);
    const per = v.length / b.labels.length;
    for (let i = 0; i < b.labels.length; i++) out.rows.push(v.slice(i * per, (i + 1) * per));
    if (b.owned) b.images.dispose();
  }
  return out;
}

describe('data sets from tensors', () => {
  it('yields batches in order, subsets by class and range, and leaks nothing', async () => {
    const images = tf.tensor4d(
      Array.from({ length: 7 * 2 }, (_, i) => i),
      [7, 1, 1, 2],
    );
    const labels = [0, 1, 2, 0, 1, 2, 0];
    const before = tf.memory().numTensors;
    const ds = fromTensors(images, labels, { batchSize: 3 });
    expect(ds.size).toBe(7);
    const all = await collect(ds);
    expect(all.sizes).toEqual([3, 3, 1]);
    expect(all.indices).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(all.rows[4]).toEqual([8, 9]);
    const zeros = ds.subset({ classes: [0] });
    expect(zeros.indices).toEqual([0, 3, 6]);
    expect((await collect(zeros)).rows).toEqual([
      [0, 1],
      [6, 7],
      [12, 13],
    ]);
    const ranged = ds.subset({
      classes: [0, 1],
      ranges: [
        [1, 4],
        [6, 9],
      ],
    });
    expect(ranged.indices).toEqual([1, 3, 6]);
    expect(ranged.labels).toEqual([1, 0, 0]);
    // a Dataset of @crp/models is a data set too: as fromTensors(images, labels), and a source as it is
    const fromDataset = fromTensors({ images: images as tf.Tensor4D, labels }, { batchSize: 3 });
    expect((await collect(fromDataset)).rows).toEqual(all.rows);
    expect((await collect(fromIterator([{ images, labels }]))).rows).toEqual(all.rows);
    expect(tf.memory().numTensors).toBe(before);
    images.dispose();
  });

  it('subsets any iterator and reports progress with counts and ETA', async () => {
    const images = tf.tensor4d(
      Array.from({ length: 5 }, (_, i) => i),
      [5, 1, 1, 1],
    );
    const before = tf.memory().numTensors;
    const user = fromIterator([
      { images: tf.slice(images, 0, 3), labels: [0, 1, 0], transient: true },
      { images: tf.slice(images, 3, 2), labels: [1, 0], transient: true },
    ]);
    const only0 = await collect(subset(user, { classes: [0] }) as AsyncIterable<LabelledBatch>);
    expect(only0.indices).toEqual([0, 2, 4]);
    expect(only0.rows).toEqual([[0], [2], [4]]);
    expect(tf.memory().numTensors).toBe(before);
    const seen: Progress[] = [];
    const tick = progressTracker(10, (p) => seen.push(p));
    tick(4);
    tick(6);
    expect(seen.map((p) => [p.done, p.total])).toEqual([
      [4, 10],
      [10, 10],
    ]);
    expect(seen[0]!.etaMs).toBeGreaterThanOrEqual(0);
    expect(seen[1]!.etaMs).toBe(0);
    images.dispose();
  });

  it('rejects mismatched labels and bad ranges', async () => {
    const images = tf.zeros([2, 1, 1, 1]);
    await expectCrpError(() => fromTensors(images, [0]), 'invalid-argument', /2 rows but 1 labels/);
    await expectCrpError(
      () => fromTensors(images, [0, 1]).subset({ ranges: [[3, 1]] }),
      'invalid-argument',
      /start <= end/,
    );
    await expectCrpError(
      () => fromTensors(images, [0, 1], { batchSize: 0 }),
      'invalid-argument',
      /positive integer/,
    );
    images.dispose();
  });
});

describe('data sets from an image folder', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'crp-folder-'));
    // cats: two PNGs 4x4 (one grey), dogs: one RGB PNG and one JPEG 4x4, plus noise files
    await mkdir(join(root, 'dogs'));
    await mkdir(join(root, 'cats'));
    await mkdir(join(root, 'empty'));
    const rgb = (v: number) => ({
      width: 4,
      height: 4,
      channels: 3 as const,
      data: new Uint8Array(48).fill(v),
    });
    await writeFile(join(root, 'cats', 'b.png'), encodePng(rgb(51)));
    await writeFile(
      join(root, 'cats', 'a.png'),
      encodePng({ width: 4, height: 4, channels: 1, data: new Uint8Array(16).fill(255) }),
    );
    await writeFile(join(root, 'cats', 'notes.txt'), 'not an image');
    await writeFile(join(root, 'dogs', 'x.png'), encodePng(rgb(102)));
    const rgba = new Uint8Array(64).fill(255);
    await writeFile(
      join(root, 'dogs', 'y.jpg'),
      new Uint8Array(jpeg.encode({ width: 4, height: 4, data: rgba }, 100).data),
    );
    await writeFile(
      join(root, 'dogs', 'big.png'),
      encodePng({ width: 8, height: 6, channels: 3, data: new Uint8Array(144).fill(0) }),
    );
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('lists classes and files in sorted order and decodes PNG and JPEG to [0, 1]', async () => {
    const folder = await lazyFolder(root, { batchSize: 2, inputSize: [4, 4], allowEmpty: true });
    const ds = folder.dataset;
    expect(folder.classes).toEqual(['cats', 'dogs', 'empty']);
    expect(folder.files.map((f) => f.slice(root.length + 1))).toEqual([
      'cats/a.png',
      'cats/b.png',
      'dogs/big.png',
      'dogs/x.png',
      'dogs/y.jpg',
    ]);
    expect(ds.labels).toEqual([0, 0, 1, 1, 1]);
    const before = tf.memory().numTensors;
    const got = await collect(ds);
    expect(got.sizes).toEqual([2, 2, 1]);
    expect(got.rows[0]!.every((v) => v === 1)).toBe(true);
    expect(got.rows[1]!.every((v) => Math.abs(v - 0.2) < 1e-6)).toBe(true);
    expect(got.rows[2]!.every((v) => v === 0)).toBe(true); // 8x6 resized to 4x4
    expect(got.rows[4]!.every((v) => v > 0.98)).toBe(true); // JPEG white
    expect(tf.memory().numTensors).toBe(before);
    const dogs = ds.subset({ classes: [1], ranges: [[3, 10]] });
    expect(dogs.indices).toEqual([3, 4]);
  });

  it('says how to fix mixed sizes and unknown classes', async () => {
    const ds = (await lazyFolder(root, { batchSize: 8, classes: ['dogs'] })).dataset;
    expect(ds.labels).toEqual([0, 0, 0]);
    await expectCrpError(() => ds.slice(0, 2), 'invalid-shape', /4x4.*8x6.*inputSize: \[height, width\]/);
    await expectCrpError(
      () => lazyFolder(root, { classes: ['birds'] }),
      'invalid-argument',
      /cats, dogs, empty/,
    );
    await expectCrpError(() => lazyFolder(join(root, 'nope')), 'not-found', /cannot read/);
  });
});
