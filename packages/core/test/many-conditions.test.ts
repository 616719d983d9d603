import type { Progress } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { CondAttribution, type Condition, disposeCondResult } from '../src/index.js';
import { buildModel, C_IN, CONV_CHANNELS, H, mulberry32, uniform, useWasm, W } from './helpers.js';

useWasm();

describe('thousands of conditions', () => {
  it('run in bounded chunks with progress, and equal the one-by-one results', () => {
    const model = buildModel(3);
    const crp = new CondAttribution(model);
    const image = tf.tensor4d(uniform(mulberry32(9), H * W * C_IN), [1, H, W, C_IN]);
    const conditions: Condition[] = Array.from({ length: 2000 }, (_, i) => ({
      y: [i % 3],
      conv2: [i % CONV_CHANNELS],
    }));
    const progress: Progress[] = [];
    // the first run caches derived weights (W+, flipped kernels) in the attributor: count after it
    disposeCondResult(crp.run(image, conditions.slice(0, 1)));
    const before = tf.memory().numTensors;
    // per (class, channel): the sum of the heatmap, from the chunked run
    const sums = new Map<string, number>();
    let rows = 0;
    let largest = 0;
    for (const chunk of crp.chunks(image, conditions, {
      chunkSize: 128,
      onProgress: (p) => progress.push(p),
    })) {
      expect(chunk.offset).toBe(rows);
      largest = Math.max(largest, chunk.rows.length);
      const summed = tf.sum(chunk.heatmap!, [1, 2]);
      const heat = summed.dataSync();
      summed.dispose();
      chunk.rows.forEach((r, k) => {
        const c = conditions[r.condition]!;
        sums.set(`${c.y![0]}/${c.conv2![0]}`, heat[k]!);
      });
      rows += chunk.rows.length;
      disposeCondResult(chunk);
    }
    expect(rows).toBe(2000);
    expect(largest).toBe(128);
    expect(progress.at(-1)).toMatchObject({ done: 2000, total: 2000 });
    expect(progress.every((p, i) => i === 0 || p.done > progress[i - 1]!.done)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    // the 12 distinct conditions, computed alone, give the same sums
    for (let y = 0; y < 3; y++) {
      for (let k = 0; k < CONV_CHANNELS; k++) {
        const alone = crp.run(image, [{ y: [y], conv2: [k] }]);
        const total = tf.sum(alone.heatmap!);
        const s = total.dataSync()[0]!;
        total.dispose();
        expect(Math.abs(s - sums.get(`${y}/${k}`)!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(s)));
        disposeCondResult(alone);
      }
    }
    image.dispose();
    crp.dispose();
    model.dispose();
  });
});
