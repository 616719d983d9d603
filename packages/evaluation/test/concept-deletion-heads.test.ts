/**
 * Concept deletion with a ViT's attention heads as concepts, on a tiny seeded ViT (8x8 images in 2x2 patches, 1
 * block, 4 heads of 2 features, MLP 12, 3 classes): the orders follow the relevance (most and least relevant
 * first, seeded random permutations of the heads), and every point of every curve is the mean target logit and
 * accuracy of the model whose out_proj ignores the deleted heads' slices (its rows zeroed: the definition of a
 * head's deletion, computed here without the masks). Image by image and in batches give the same numbers.
 */
import { vit } from '@crp/models';
import { setVitWeights } from '@crp/models/internal';
import { tinyVit, tinyVitImages } from '@crp/testing/tiny-vit';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conceptDeletion } from '../src/index.js';
import { expectCrpErrorAsync, useBackend } from './helpers.js';

useBackend('cpu');

const A = 'encoder.layers.encoder_layer_0.self_attention.';
const HEADS = `${A}context`;
const DH = 2;
const N = 6;
const labels = [0, 1, 2, 1, 0, 2];
const relevance = [0.2, -0.5, 1.5, 0.7];

let model: tfl.LayersModel;
let x: tf.Tensor4D;

/** The tiny ViT with 4 heads of 2 features. */
function seeded(): tfl.LayersModel {
  return tinyVit({ vit, setVitWeights }, { numHeads: 4 });
}

/** Mean logit of `target` and accuracy of a fresh copy of the model with out_proj's rows of `heads` zeroed. */
function withoutHeads(heads: readonly number[], target: number): { logit: number; accuracy: number } {
  const m = seeded();
  const out = m.getLayer(`${A}out_proj`);
  const [k, b] = out.getWeights();
  const rows = k!.shape[0]!;
  const keep = tf.tensor2d(
    Array.from({ length: rows }, (_, i) => (heads.includes(Math.floor(i / DH)) ? 0 : 1)),
    [rows, 1],
  );
  const zeroed = tf.mul(k!, keep);
  out.setWeights([zeroed, b!]);
  const y = m.predict(x) as tf.Tensor2D;
  const v = y.arraySync();
  tf.dispose([keep, zeroed, y]);
  m.dispose();
  let logit = 0;
  let correct = 0;
  for (let s = 0; s < N; s++) {
    logit += v[s]![target]!;
    const row = v[s]!;
    if (row.indexOf(Math.max(...row)) === labels[s]) correct++;
  }
  return { logit: logit / N, accuracy: correct / N };
}

beforeAll(() => {
  model = seeded();
  x = tinyVitImages(N);
});
afterAll(() => {
  model.dispose();
  x.dispose();
});

describe('concept deletion over attention heads', () => {
  it('deletes heads in relevance and random orders; each point is the model without those heads', async () => {
    const r = await conceptDeletion(
      model,
      { x, labels },
      { layer: HEADS, target: 1, relevance, randomOrders: 2, seed: 4 },
    );
    expect(r.layer).toBe(HEADS);
    expect(r.curves.map((c) => c.order)).toEqual([
      'most-relevant-first',
      'least-relevant-first',
      'random-1',
      'random-2',
    ]);
    expect(r.curves[0]!.concepts).toEqual([2, 3, 0, 1]);
    expect(r.curves[1]!.concepts).toEqual([1, 0, 3, 2]);
    for (const c of r.curves.slice(2)) expect([...c.concepts].sort()).toEqual([0, 1, 2, 3]);
    for (const c of r.curves) {
      expect(c.logit.length).toBe(5);
      for (let step = 0; step <= 4; step++) {
        const expected = withoutHeads(c.concepts.slice(0, step), 1);
        expect(c.logit[step]).toBeCloseTo(expected.logit, 5);
        expect(c.accuracy[step]).toBe(expected.accuracy);
      }
    }
    // the first and last points do not depend on the order: nothing and every head deleted
    expect(Math.abs(r.curves[0]!.logit[4]! - r.curves[0]!.logit[0]!)).toBeGreaterThan(1e-3);
    for (const c of r.curves) {
      expect(c.logit[0]).toBe(r.curves[0]!.logit[0]);
      expect(c.logit[4]).toBe(r.curves[0]!.logit[4]);
    }
    expect(r.abpc).toBeCloseTo(r.curves[1]!.auc - r.curves[0]!.auc, 12);
  });

  it('gives the same numbers image by image and in batches; a subset of heads; leaves no tensor', async () => {
    const before = tf.memory().numTensors;
    const options = { layer: HEADS, target: 0, relevance, concepts: [3, 1, 2], randomOrders: 1 };
    const one = await conceptDeletion(model, { x, labels }, { ...options, batchSize: 1 });
    const all = await conceptDeletion(model, { x, labels }, { ...options, batchSize: 4 });
    expect(all).toEqual(one);
    expect(one.curves[0]!.concepts).toEqual([2, 3, 1]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('says what is valid: heads of the layer, one relevance per head', async () => {
    await expectCrpErrorAsync(
      () => conceptDeletion(model, { x, labels }, { layer: HEADS, target: 0, relevance: [1, 2] }),
      'invalid-shape',
      `layer '${HEADS}' has 4 heads`,
    );
    await expectCrpErrorAsync(
      () => conceptDeletion(model, { x, labels }, { layer: HEADS, target: 0, relevance, concepts: [4] }),
      'invalid-argument',
      `concept 4 is not a head of '${HEADS}' (0..3)`,
    );
  });
});
