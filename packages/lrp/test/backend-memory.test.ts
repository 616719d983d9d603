/**
 * Float32 tensors written in place (MPRT's draws, the max-pool gradient's masks, LAMB's weights): on wasm straight
 * into the heap, elsewhere into a new array; the same values either way, and no heap memory kept when the writer
 * fails before a tensor holds it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { readFloat32, wasmHeapBytes, writeFloat32 } from '../src/internal.js';
import { switchBackend } from './helpers.js';

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`writeFloat32 / readFloat32 (${backend})`, () => {
    test('writes the values into a tensor the caller owns, read back as written', async () => {
      await switchBackend(backend);
      expect(wasmHeapBytes() === undefined).toBe(backend !== 'wasm');
      const before = tf.memory().numTensors;
      const t = writeFloat32([2, 3], (v) => {
        for (let i = 0; i < v.length; i++) v[i] = i * 0.5 - 1;
      });
      expect(t.shape).toEqual([2, 3]);
      expect(Array.from(readFloat32(t))).toEqual([-1, -0.5, 0, 0.5, 1, 1.5]);
      expect(Array.from(await t.data())).toEqual([-1, -0.5, 0, 0.5, 1, 1.5]);
      t.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    test('a writer that throws leaves no tensor and no backend data behind', async () => {
      await switchBackend(backend);
      const before = { tensors: tf.memory().numTensors, data: tf.backend().numDataIds() };
      expect(() =>
        writeFloat32([1000], () => {
          throw new Error('writer failed');
        }),
      ).toThrow('writer failed');
      expect(tf.memory().numTensors).toBe(before.tensors);
      expect(tf.backend().numDataIds()).toBe(before.data);
    });
  });
}
