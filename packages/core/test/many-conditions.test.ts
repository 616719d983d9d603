import type { Progress } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { CondAttribution, type Condition, disposeCondResult } from '../src/index.js';
import { buildModel, C_IN, CONV_CHANNELS, H, maxAbs, mulberry32, uniform, useWasm, W } from './helpers.js';

useWasm();

describe('thousands of conditions', () => {
  it('run in bounded chunks with progress, and equal the one-by-one results', () => {
    const model = buildModel(3);
    const image = tf.tensor4d(uniform(mulberry32(9), H * W * C_IN), [1, H, W, C_IN]);
    const withoutAttribution = tf.memory().numTensors;
    const crp = new CondAttribution(model);
    const conditions: Condition[] = Array.from({ length: 2000 }, (_, i) => ({
      y: [i % 3],
      conv2: [i % CONV_CHANNELS],
    }));
    const progress: Progress[] = [];
    // the first runs cache derived weights in the attributor (W+, flipped kernels, and a dense layer's W^T on its
    // first product of more than 16 rows): count after them
    disposeCondResult(crp.run(image, conditions.slice(0, 1)));
    disposeCondResult(crp.run(image, conditions.slice(0, 32)));
    // the 12 distinct conditions computed alone: the heatmap and prediction every duplicate must give
    const alone = new Map<string, { heatmap: Float32Array; prediction: Float32Array }>();
    for (let y = 0; y < 3; y++) {
      for (let k = 0; k < CONV_CHANNELS; k++) {
        const r = crp.run(image, [{ y: [y], conv2: [k] }]);
        alone.set(`${y}/${k}`, {
          heatmap: r.heatmap!.dataSync() as Float32Array,
          prediction: r.prediction.dataSync() as Float32Array,
        });
        disposeCondResult(r);
      }
    }
    const before = tf.memory().numTensors;
    const seen = new Array<number>(conditions.length).fill(0);
    let rows = 0;
    let largest = 0;
    let worst = 0;
    for (const chunk of crp.chunks(image, conditions, {
      chunkSize: 128,
      onProgress: (p) => progress.push(p),
    })) {
      expect(chunk.offset).toBe(rows);
      largest = Math.max(largest, chunk.rows.length);
      const heat = chunk.heatmap!.dataSync();
      const pred = chunk.prediction.dataSync();
      expect(heat.length).toBe(chunk.rows.length * H * W);
      chunk.rows.forEach((r, k) => {
        const c = conditions[r.condition]!;
        seen[r.condition]!++;
        const ref = alone.get(`${c.y![0]}/${c.conv2![0]}`)!;
        // every row, duplicates included, element by element against its condition computed alone
        const scale = Math.max(1e-7, maxAbs(ref.heatmap));
        for (let i = 0; i < H * W; i++) {
          worst = Math.max(worst, Math.abs(heat[k * H * W + i]! - ref.heatmap[i]!) / scale);
        }
        expect(Array.from(pred.slice(k * 3, k * 3 + 3))).toEqual(Array.from(ref.prediction));
      });
      rows += chunk.rows.length;
      disposeCondResult(chunk);
    }
    expect(rows).toBe(2000);
    expect(seen.every((n) => n === 1)).toBe(true);
    expect(largest).toBe(128);
    expect(progress.at(-1)).toMatchObject({ done: 2000, total: 2000 });
    expect(progress.every((p, i) => i === 0 || p.done > progress[i - 1]!.done)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    expect(worst).toBeLessThanOrEqual(1e-5);
    crp.dispose();
    // and the attributor frees what it cached
    expect(tf.memory().numTensors).toBe(withoutAttribution);
    image.dispose();
    model.dispose();
  });
});
