/**
 * resetParameters on wasm writes its draws straight into the heap (no JavaScript array, no copy): the same values
 * as the array path of the other backends, tensors the layer can own, and nothing leaked.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { resetParameters } from '../src/index.js';
import { mulberry32, useBackend } from './helpers.js';

useBackend('wasm');

function model(): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [6, 6, 3], filters: 4, kernelSize: 3, name: 'c1' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 5, name: 'fc' }),
    ],
  });
}

describe('resetParameters on wasm (draws in the heap)', () => {
  it('draws mulberry32(seed + 1) over kernel then bias, in +-1/sqrt(fan_in), bit for bit', () => {
    expect(tf.getBackend()).toBe('wasm');
    const m = model();
    for (const [name, fanIn] of [
      ['c1', 3 * 3 * 3],
      ['fc', 4 * 4 * 4],
    ] as const) {
      const fresh = resetParameters(m.getLayer(name), 7);
      // the generator runs on from the kernel into the bias
      const next = mulberry32(8);
      const bound = 1 / Math.sqrt(fanIn);
      for (const t of fresh) {
        const expected = Float32Array.from({ length: t.size }, () => (2 * next() - 1) * bound);
        expect(t.dataSync()).toEqual(expected);
      }
      tf.dispose(fresh);
    }
    m.dispose();
  });

  it('draws a million values bit for bit (the loop runs in the code V8 enters mid-loop)', () => {
    const dense = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [1024], units: 1000 })] });
    const layer = dense.layers[0]!;
    // twice: the second call runs the loop compiled during the first
    for (const seed of [3, 4]) {
      const fresh = resetParameters(layer, seed);
      const next = mulberry32(seed + 1);
      const bound = 1 / Math.sqrt(1024);
      let mismatches = 0;
      let first = -1;
      for (const t of fresh) {
        const values = t.dataSync();
        for (let i = 0; i < values.length; i++) {
          if (!Object.is(values[i], Math.fround((2 * next() - 1) * bound))) {
            mismatches++;
            if (first < 0) first = i;
          }
        }
      }
      expect({ mismatches, first }).toEqual({ mismatches: 0, first: -1 });
      tf.dispose(fresh);
    }
    dense.dispose();
  });

  it('gives tensors a layer can own: set, read back, restored, none leaked', () => {
    const m = model();
    const layer = m.getLayer('fc');
    const original = layer.getWeights().map((w) => w.dataSync().slice());
    const before = tf.memory();
    for (let round = 0; round < 3; round++) {
      const saved = layer.getWeights().map((w) => w.clone());
      const fresh = resetParameters(layer, 42);
      const drawn = fresh.map((t) => t.dataSync().slice());
      layer.setWeights(fresh);
      tf.dispose(fresh);
      // the layer holds the draws after the returned tensors are disposed
      expect(layer.getWeights().map((w) => w.dataSync())).toEqual(drawn);
      layer.setWeights(saved);
      tf.dispose(saved);
      expect(layer.getWeights().map((w) => w.dataSync())).toEqual(original);
    }
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numDataBuffers).toBe(before.numDataBuffers);
    expect(after.numBytes).toBe(before.numBytes);
    m.dispose();
  });
});
