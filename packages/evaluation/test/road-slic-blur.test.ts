/**
 * The blur baseline, ROAD's noisy linear imputation and SLIC superpixels by hand and by their invariants (their
 * numbers against Quantus and scikit-image are the conformance kind `evaluation`).
 */

import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  blurAt,
  faithfulnessCorrelation,
  irof,
  noisyLinearImputation,
  road,
  runMetric,
  slic,
} from '../src/index.js';
import { expectCrpErrorAsync, useBackend, useSmallCnnCase } from './helpers.js';

useBackend('cpu');

const small = useSmallCnnCase();
const { labels } = small;

describe('the blur baseline (Quantus baseline_replacement_by_blur)', () => {
  // a 3 x 3 one-channel image 1..9
  const img = () => Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);

  it('kernel 3: the mean of the zero-padded 3 x 3 window, always divided by 9', () => {
    const a = img();
    blurAt(a, [4, 0], 3, 3, 1, 3);
    expect(a[4]).toBeCloseTo(45 / 9, 6);
    expect(a[0]).toBeCloseTo((1 + 2 + 4 + 5) / 9, 6);
    expect(Array.from(a).filter((_, i) => i !== 0 && i !== 4)).toEqual([2, 3, 4, 6, 7, 8, 9]);
  });

  it('reads the array before the call, so neighbouring removed features do not see each other', () => {
    const a = img();
    blurAt(a, [0, 1], 3, 3, 1, 3);
    expect(a[1]).toBeCloseTo((1 + 2 + 3 + 4 + 5 + 6) / 9, 6);
  });

  it('an even kernel reaches k/2 before and k/2 - 1 after; channels are blurred separately', () => {
    const a = img();
    blurAt(a, [4], 3, 3, 1, 2);
    expect(a[4]).toBeCloseTo((1 + 2 + 4 + 5) / 4, 6);
    // two channels: channel 1 is ten times channel 0
    const two = Float32Array.from([1, 10, 2, 20, 3, 30, 4, 40]);
    blurAt(two, [7], 2, 2, 2, 3);
    expect(two[7]).toBeCloseTo(100 / 9, 5);
  });

  it('is refused by a metric that cannot take it, with the ones that can', async () => {
    await expectCrpErrorAsync(
      () => faithfulnessCorrelation(small.input, { perturbBaseline: 'blur', subsetSize: 16 }),
      'invalid-argument',
      "perturbBaseline 'blur' is available for PixelFlipping, RegionPerturbation, Selectivity",
    );
  });
});

describe("ROAD's noisy linear imputation", () => {
  // a linear ramp: every interior pixel is the weighted mean of its 8 neighbours (the weights are symmetric)
  const ramp = (h: number, w: number) =>
    Float32Array.from({ length: h * w }, (_, q) => 2 * Math.floor(q / w) + 3 * (q % w) + 1);

  it('recovers a linear ramp inside a removed block exactly', () => {
    const x = ramp(7, 7);
    const block = [16, 17, 18, 23, 24, 25, 30, 31, 32];
    const out = noisyLinearImputation(x, 7, 7, 1, block, 0, undefined);
    for (const q of block) expect(out[q]).toBeCloseTo(x[q]!, 4);
  });

  it('one removed pixel: the weighted mean of its neighbours (edges 1/6, corners 1/12), plus the noise', () => {
    const x = Float32Array.from([0, 6, 0, 0, 99, 0, 12, 0, 0]);
    const out = noisyLinearImputation(x, 3, 3, 1, [4], 0.5, Float64Array.from([2]));
    expect(out[4]).toBeCloseTo(6 / 6 + 12 / 12 + 0.5 * 2, 6);
    // a corner pixel: only its 3 neighbours count, their weights renormalised by the diagonal (1/6+1/6+1/12)
    const corner = noisyLinearImputation(x, 3, 3, 1, [0], 0, undefined);
    expect(corner[0]).toBeCloseTo((6 / 6 + 99 / 12) / (5 / 12), 5);
  });

  it('ROAD: a 0/1 curve per sample over the percentages, its mean as the score; no tensor leaks', async () => {
    const before = tf.memory().numTensors;
    const r = await road(small.input, { percentages: [0, 10, 50, 90], noise: 0.01 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.curves).toHaveLength(5);
    for (const [i, c] of r.curves!.entries()) {
      expect(c.every((v) => v === 0 || v === 1)).toBe(true);
      expect(r.scores[i]).toBeCloseTo(c.reduce((s, v) => s + v, 0) / 4, 12);
    }
    // 0% imputes nothing: the curve starts at whether the model predicts the label on the input
    const predicted = tf.tidy(
      () => tf.argMax(small.model.predict(small.x) as tf.Tensor, 1).arraySync() as number[],
    );
    expect(r.curves!.map((c) => c[0])).toEqual(predicted.map((p, i) => (p === labels[i] ? 1 : 0)));
    const viaName = await runMetric(
      { name: 'ROAD', options: { percentages: [0, 10, 50, 90] } },
      small.input,
      undefined,
    );
    expect(viaName.scores).toEqual(r.scores);
    await expectCrpErrorAsync(
      () => road(small.input, { percentages: [120] }),
      'invalid-argument',
      'percentages must be a non-empty list of numbers in 0..100',
    );
  });
});

describe('SLIC superpixels (scikit-image slic)', () => {
  it('two flat colours: no superpixel crosses the border; labels 0..S-1, each one connected', () => {
    const h = 20;
    const w = 24;
    const data = new Float32Array(h * w * 3);
    for (let q = 0; q < h * w; q++) data.set(q % w < 10 ? [0.9, 0.1, 0.1] : [0.1, 0.2, 0.9], q * 3);
    const labels = slic({ data, height: h, width: w, channels: 3 }, { nSegments: 12 });
    const count = new Set(labels).size;
    expect([...new Set(labels)].sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, i) => i));
    for (let q = 0; q < h * w; q++) {
      if (q % w === 9) expect(labels[q]).not.toBe(labels[q + 1]);
    }
    // connected: a flood fill from each label's first pixel reaches all of its pixels
    for (let l = 0; l < count; l++) {
      const seen = new Set<number>([labels.indexOf(l)]);
      const queue = [labels.indexOf(l)];
      while (queue.length > 0) {
        const q = queue.pop()!;
        for (const n of [q - w, q + w, q % w > 0 ? q - 1 : -1, q % w < w - 1 ? q + 1 : -1]) {
          if (n >= 0 && n < h * w && labels[n] === l && !seen.has(n)) {
            seen.add(n);
            queue.push(n);
          }
        }
      }
      expect(seen.size).toBe(labels.filter((v) => v === l).length);
    }
  });

  it('a constant image gives the regular grid of seeds; a pixel between two seeds joins the first', () => {
    const labels = slic(
      { data: new Float32Array(16 * 16), height: 16, width: 16, channels: 1 },
      { nSegments: 16 },
    );
    // seeds at 2, 6, 10, 14 on each axis; skimage's strict comparison gives ties to the seed visited first
    const block = [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3];
    expect(Array.from(labels)).toEqual(
      Array.from({ length: 256 }, (_, q) => block[Math.floor(q / 16)]! * 4 + block[q % 16]!),
    );
  });

  it('IROF segments the inputs itself with SLIC when no segments are given', async () => {
    const input = small.input;
    const xs = await small.x.data();
    const segments = Array.from({ length: 5 }, (_, i) =>
      slic({ data: xs.subarray(i * 192, (i + 1) * 192), height: 8, width: 8, channels: 3 }),
    );
    const own = await irof(input, {});
    const given = await irof(input, { segments });
    expect(own.scores).toEqual(given.scores);
    expect(() => slic({ data: new Float32Array(10), height: 2, width: 2, channels: 3 })).toThrow(
      'slic: image of 10 values is not 2 x 2 x 3',
    );
  });
});
