/**
 * IROF through the incremental forward: each step removes one superpixel, cumulatively, so each input differs from
 * the one before in one segment and the incremental forward recomputes only the windows it reaches. The group's
 * baseline (Quantus takes it over all the group's arrays before each step) is the same as in lockstep, so the
 * curves equal the plain path's (to the incremental forward's 1e-5) for every baseline, for a group of several
 * samples, and no tensor is kept.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, vi } from 'vitest';
import { IncrementalForward } from '../src/incremental.js';
import { irof } from '../src/index.js';
import { images, smallCnn, useBackend } from './helpers.js';

useBackend('cpu');

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const tol = 1e-5 * Math.max(1, Math.abs(expected[i]!));
    if (!(Math.abs(actual[i]! - expected[i]!) <= tol)) {
      throw new Error(`${what}: value ${i} is ${actual[i]}, the plain path gives ${expected[i]}`);
    }
  }
}

/** Superpixels of an 8 x 8 image: 2 x 4 blocks, labelled in a shuffled order per sample (8 segments). */
function blocks(shift: number): Int32Array {
  const seg = new Int32Array(64);
  for (let y = 0; y < 8; y++)
    for (let x = 0; x < 8; x++) seg[y * 8 + x] = ((y >> 1) * 2 + (x >> 2) + shift) % 8;
  return seg;
}

describe('IROF through the incremental forward', () => {
  for (const baseline of ['mean', 'black', 'uniform'] as const) {
    it(`${baseline} baseline, 3 samples in one group: the same curves and scores as the plain path`, async () => {
      const model = smallCnn(7);
      const x = images(3, 8, 8, 3, 9);
      const explanation = tf.randomUniform([3, 8, 8], -1, 1, 'float32', 4);
      const input = { model, x, labels: [0, 2, 1], explanation };
      const options = { segments: [blocks(0), blocks(3), blocks(5)], perturbBaseline: baseline };
      const plain = await irof(input, options, { incremental: false, seed: 3 });
      const ran = vi.spyOn(IncrementalForward.prototype, 'features');
      const before = tf.memory().numTensors;
      const inc = await irof(input, options, { incremental: true, seed: 3 });
      expect(tf.memory().numTensors).toBe(before);
      // one incremental pass per step and sample (8 segments each), after one full pass of each unperturbed
      // sample, which also gives IROF's reference output
      expect(ran).toHaveBeenCalledTimes(3 + 24);
      ran.mockRestore();
      inc.curves!.forEach((c, i) => {
        expectClose(c, plain.curves![i]!, `sample ${i}`);
      });
      expectClose(inc.scores, plain.scores, 'scores');
      // the curves move: the comparison is not of constants
      expect(new Set(plain.curves!.flat().map((v) => v.toFixed(6))).size).toBeGreaterThan(10);
      tf.dispose([x, explanation]);
      model.dispose();
    });
  }
});
