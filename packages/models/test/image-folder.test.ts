import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrpError } from '@crp/common';
import { writePng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import { imageFolder } from '../src/node.js';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dataset, disposeDataset, gatherDataset, splitDataset } from '../src/index.js';

let root: string;

/** An image of one colour. */
function flat(width: number, height: number, channels: 1 | 3 | 4, value: number[]) {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = value[i % channels]!;
  return { width, height, channels, data };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'crp-models-folder-'));
  const set = join(root, 'set');
  for (const c of ['dog', 'cat', 'bird']) await mkdir(join(set, c), { recursive: true });
  await writePng(join(set, 'cat', 'b.png'), flat(6, 4, 3, [255, 0, 0]));
  await writePng(join(set, 'cat', 'a.png'), flat(6, 4, 1, [51]));
  await writePng(join(set, 'dog', 'x.PNG'), flat(6, 4, 4, [0, 255, 0, 0])); // transparent: white
  await copyFile(join(import.meta.dirname, 'fixtures', 'blue-4x6.jpg'), join(set, 'bird', 'photo.jpg'));
  await writeFile(join(set, 'bird', 'notes.txt'), 'not an image');
  await mkdir(join(set, '.hidden'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function pixel(data: Dataset, i: number): Promise<number[]> {
  const x = tf.slice(data.images, [i, 0, 0, 0], [1, 1, 1, data.images.shape[3]]);
  const v = Array.from(await x.data());
  x.dispose();
  return v;
}

describe('imageFolder', () => {
  it('reads classes and files in name order with labels and sources', async () => {
    const before = tf.memory().numTensors;
    const progress: number[] = [];
    const data = await imageFolder(join(root, 'set'), { onProgress: (p) => progress.push(p.done) });
    expect(data.classes).toEqual(['bird', 'cat', 'dog']);
    expect(data.images.shape).toEqual([4, 4, 6, 3]);
    expect(data.labels).toEqual([0, 1, 1, 2]);
    expect(data.sources!.map((s) => s.slice(root.length + 5))).toEqual([
      'bird/photo.jpg',
      'cat/a.png',
      'cat/b.png',
      'dog/x.PNG',
    ]);
    expect(progress).toEqual([1, 2, 3, 4]);
    const jpeg = await pixel(data, 0);
    // JPEG is lossy: within 5 of the colour it was made from
    for (const [c, v] of [20, 60, 200].entries()) expect(Math.abs(jpeg[c]! * 255 - v)).toBeLessThan(5);
    expect(await pixel(data, 1)).toEqual([0.2, 0.2, 0.2].map((v) => Math.fround(v)));
    expect(await pixel(data, 2)).toEqual([1, 0, 0]);
    expect(await pixel(data, 3)).toEqual([1, 1, 1]);
    disposeDataset(data);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('resizes, converts to grey, normalises, picks and limits classes', async () => {
    const data = await imageFolder(join(root, 'set'), {
      inputSize: [2, 3],
      channels: 1,
      classes: ['dog', 'cat'],
      limitPerClass: 1,
      mean: [0.5],
      std: [0.25],
    });
    expect(data.classes).toEqual(['dog', 'cat']);
    expect(data.images.shape).toEqual([2, 2, 3, 1]);
    expect(data.labels).toEqual([0, 1]);
    expect((await pixel(data, 0))[0]).toBeCloseTo((1 - 0.5) / 0.25, 5);
    expect((await pixel(data, 1))[0]).toBeCloseTo((0.2 - 0.5) / 0.25, 5);
    disposeDataset(data);
  });

  it('says what is wrong', async () => {
    await expect(imageFolder(join(root, 'nope'))).rejects.toThrow(
      /cannot read the image folder .*one sub-folder of images per class/,
    );
    await expect(imageFolder(join(root, 'set', 'cat'))).rejects.toThrow(/has no class sub-folders/);
    await expect(imageFolder(join(root, 'set'), { classes: ['cow'] })).rejects.toThrow(
      /'cow'.*valid: bird, cat, dog/,
    );
    await expect(imageFolder(join(root, 'set'), { channels: 2 as never })).rejects.toThrow(
      /channels must be 1 or 3/,
    );
    const mixed = join(root, 'mixed');
    await mkdir(join(mixed, 'a'), { recursive: true });
    await writePng(join(mixed, 'a', '1.png'), flat(4, 4, 3, [1, 2, 3]));
    await writePng(join(mixed, 'a', '2.png'), flat(5, 4, 3, [1, 2, 3]));
    const err = await imageFolder(mixed).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CrpError);
    expect((err as Error).message).toMatch(/is 5x4 but .* is 4x4; give the option inputSize/);
    await writeFile(join(mixed, 'a', '3.png'), 'garbage');
    await expect(imageFolder(mixed, { inputSize: [4, 4] })).rejects.toThrow(
      /3\.png' is not a readable image/,
    );
    await mkdir(join(mixed, 'empty'));
    await expect(imageFolder(mixed, { classes: ['empty'] })).rejects.toThrow(
      /has no images with the extensions/,
    );
  });
});

describe('splitDataset and gatherDataset', () => {
  function labelled(labels: number[]): Dataset {
    const n = labels.length;
    return {
      images: tf.tensor4d(
        Array.from({ length: n }, (_, i) => i),
        [n, 1, 1, 1],
      ),
      labels,
      classes: ['a', 'b'],
    };
  }

  it('splits disjointly, stratified and seeded', async () => {
    const data = labelled([...Array(30).fill(0), ...Array(10).fill(1)]);
    const a = splitDataset(data, { validation: 0.25, seed: 3 });
    const b = splitDataset(data, { validation: 10, seed: 3 });
    const c = splitDataset(data, { validation: 10, seed: 4 });
    const ids = async (d: Dataset) => Array.from(await d.images.data());
    expect(await ids(a.validation)).toEqual(await ids(b.validation));
    expect(await ids(a.validation)).not.toEqual(await ids(c.validation));
    const all = [...(await ids(a.train)), ...(await ids(a.validation))].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const valLabels = a.validation.labels;
    // 10 * 10/40 = 2.5 and 10 * 30/40 = 7.5: the tie of remainders goes to the first class
    expect(valLabels.filter((l) => l === 1).length).toBe(2);
    for (const d of [data, a.train, a.validation, b.train, b.validation, c.train, c.validation])
      disposeDataset(d);
  });

  it('gathers samples and rejects bad arguments', async () => {
    const data = labelled([0, 1, 0, 1]);
    const s = gatherDataset(data, [3, 0]);
    expect(Array.from(await s.images.data())).toEqual([3, 0]);
    expect(s.labels).toEqual([1, 0]);
    expect(() => gatherDataset(data, [4])).toThrow(/index 4 is outside \[0, 3\]/);
    expect(() => splitDataset(data, { validation: 4 })).toThrow(/whole number in \[1, 3\] for 4 images/);
    disposeDataset(s);
    disposeDataset(data);
  });
});
