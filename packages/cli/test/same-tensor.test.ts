import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromLoader } from '@crp/attribution';
import { IMAGENET } from '@crp/models';
import { imageFolder, listImageFolder, readImages } from '@crp/models/node';
import type { RasterImage } from '@crp/vis';
import { writePng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelInput } from '../src/images.js';

/**
 * One PNG, one tensor: the CLI's image loader, @crp/models' imageFolder and a folder read lazily through
 * @crp/attribution's fromLoader (listImageFolder + readImages) all go through preprocess of @crp/models, so they must agree to the last bit, for RGB, RGBA (alpha over
 * white), grey (repeated, or kept for one-channel models) and an image that needs resizing.
 */
let root: string;
const files: string[] = [];

const image = (width: number, height: number, channels: 1 | 3 | 4, seed: number): RasterImage => ({
  width,
  height,
  channels,
  data: Uint8Array.from({ length: width * height * channels }, (_, i) => (i * 37 + seed * 101) % 256),
});

beforeAll(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'crp-same-tensor-'));
  // sorted by name within the class, as the folder readers list them
  const images: [string, RasterImage][] = [
    ['1-rgb.png', image(4, 4, 3, 1)],
    ['2-rgba.png', image(4, 4, 4, 2)],
    ['3-grey.png', image(4, 4, 1, 3)],
    ['4-resize.png', image(7, 5, 3, 4)],
  ];
  await mkdir(join(root, 'class'));
  for (const [name, im] of images) {
    const path = join(root, 'class', name);
    await writePng(path, im);
    files.push(path);
  }
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Per image, the values of a [N, H, W, C] tensor. */
function rows(x: tf.Tensor): number[][] {
  const n = x.shape[0]!;
  const v = Array.from(x.dataSync());
  const per = v.length / n;
  return Array.from({ length: n }, (_, i) => v.slice(i * per, (i + 1) * per));
}

describe('the same PNG gives the same tensor in the CLI, @crp/models and @crp/attribution', () => {
  for (const channels of [3, 1] as const) {
    it(`${channels} channel(s), 4x4 input, ImageNet normalisation`, async () => {
      const before = tf.memory().numTensors;
      const options = { inputSize: [4, 4] as const, channels, ...IMAGENET };
      const mean = channels === 1 ? [IMAGENET.mean[0]] : IMAGENET.mean;
      const std = channels === 1 ? [IMAGENET.std[0]] : IMAGENET.std;

      const models = await imageFolder(root, { ...options, mean, std });
      const fromModels = rows(models.images);
      models.images.dispose();

      const listing = await listImageFolder(root);
      const dataset = fromLoader(
        (p) =>
          readImages(
            p.map((i) => listing.files[i]!),
            { ...options, mean, std },
          ),
        listing.labels,
      );
      const batch = await dataset.slice(0, files.length);
      const fromAttribution = rows(batch.images);
      batch.images.dispose();

      const fromCli: number[][] = [];
      for (const path of files) {
        const input = await readModelInput(path, [4, 4, channels], { mean, std });
        fromCli.push(...rows(input.tensor));
        input.tensor.dispose();
      }

      expect(fromModels.length).toBe(4);
      expect(fromModels[0]!.length).toBe(4 * 4 * channels);
      expect(fromAttribution).toEqual(fromModels);
      expect(fromCli).toEqual(fromModels);
      // and it is what the documented pipeline gives by hand for the opaque RGB image (no resize)
      const rgb = image(4, 4, 3, 1).data;
      const byHand = Array.from({ length: 16 }, (_, p) => {
        const [r, g, b] = [rgb[p * 3]!, rgb[p * 3 + 1]!, rgb[p * 3 + 2]!];
        const values = channels === 3 ? [r, g, b] : [0.299 * r + 0.587 * g + 0.114 * b];
        return values.map((v, c) => (v / 255 - mean[c]!) / std[c]!);
      }).flat();
      fromModels[0]!.forEach((v, i) => {
        expect(v).toBeCloseTo(byHand[i]!, 5);
      });
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});
