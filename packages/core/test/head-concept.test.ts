/**
 * HeadConcept: attention heads (axis 0 of a per-sample [heads, tokens, d] output) as concepts: masks, the range
 * check, relevance per head. A CRP run conditioned on a head of a ViT is checked against LXT in the conformance
 * suite (kind `vit`).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { CrpError } from '@crp/common';
import { describe, expect, test } from 'vitest';
import { HeadConcept } from '../src/index.js';

describe('HeadConcept', () => {
  const concept = new HeadConcept();

  test('a mask keeps the chosen heads at every token and dimension', () => {
    expect(concept.count([3, 5, 4])).toBe(3);
    const m = concept.mask([0, 2], [3, 5, 4]);
    expect(Array.from(m.data)).toEqual([1, 0, 1]);
    expect(m.shape).toEqual([3, 1, 1]);
  });

  test('indices out of range, and layers that are not [heads, tokens, d], are refused with the valid range', () => {
    expect(() => concept.validate([3], [3, 5, 4], 'ctx')).toThrowError(
      /head 3 is out of range for layer 'ctx': it has 3 heads \(valid: 0\.\.2\)/,
    );
    expect(() => concept.validate([0], [5, 4], 'tokens')).toThrowError(CrpError);
    expect(() => concept.validate([0], [5, 4], 'tokens')).toThrowError(
      /\[heads, tokens, d\].*'tokens' has \[5, 4\]/,
    );
  });

  test('relevance per head: summed over tokens and dimensions, optionally normalised per row', async () => {
    await tf.setBackend('cpu');
    // rows 2, heads 2, tokens 2, d 2
    const r = tf.tensor4d([1, 2, 3, 4, -1, -1, 0, 2, 0, 0, 0, 1, 5, 0, 0, 0], [2, 2, 2, 2]);
    const plain = concept.attribute(r);
    expect(Array.from(plain.dataSync())).toEqual([10, 0, 1, 5]);
    const norm = concept.attribute(r, { absNorm: true });
    const n = Array.from(norm.dataSync());
    expect(n[0]).toBeCloseTo(10 / (10 + 1e-10), 6);
    expect(n[2]).toBeCloseTo(1 / 6, 6);
    expect(n[3]).toBeCloseTo(5 / 6, 6);
    for (const t of [r, plain, norm]) t.dispose();
  });
});
