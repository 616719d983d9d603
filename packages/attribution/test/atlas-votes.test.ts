import { CondAttribution } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { votedConcepts } from '../src/atlas.js';
import { conceptAtlas, decompositionAtlas, regionAtlas, regionRelevances } from '../src/index.js';
import { useWasm } from './helpers.js';

useWasm();

// Votes by evidence for the class, worked out by hand on a model of 1x1 convolutions (one pixel, so every value
// below is a plain product; Epsilon on the dense layer, ZPlus on c2, both exact up to their 1e-6 stabiliser):
//   x (2 channels) -> c1 = relu(identity): g = x -> c2 = relu: h0 = g0 + g1, h1 = g0, h2 = relu(-g0 - g1) = 0 (dead)
//   -> logit of class 0 = -h0 + 3 h1 + 5 h2.
// Relevance starts as the logit (zennit-crp); at c2 it is each unit's contribution h_j w_j:
//   A: x = [1, 3]: h = [4, 1, 0], logit -1 (negative), R(c2) = [-4, 3, 0]
//   B: x = [2, 1]: h = [3, 2, 0], logit  3 (positive), R(c2) = [-3, 6, 0]
// Evidence for class 0 is relevance times the logit's sign: A [4, -3, 0], B [-3, 6, 0]. With top-2, A votes
// h0 and B votes h1; the dead h2 (relevance exactly 0) votes in neither, though it ranks second in both (on
// signed relevance it got both samples' votes and h0 none).
let model: tfl.LayersModel;
let crp: CondAttribution;
let images: tf.Tensor4D;
const labels = [0, 0];

beforeAll(() => {
  model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [1, 1, 2],
        filters: 2,
        kernelSize: 1,
        useBias: false,
        activation: 'relu',
        name: 'c1',
      }),
      tfl.layers.conv2d({ filters: 3, kernelSize: 1, useBias: false, activation: 'relu', name: 'c2' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 2, useBias: false, name: 'out' }),
    ],
  });
  model.getLayer('c1').setWeights([tf.tensor4d([1, 0, 0, 1], [1, 1, 2, 2])]);
  model.getLayer('c2').setWeights([tf.tensor4d([1, 1, -1, 1, 0, -1], [1, 1, 2, 3])]);
  model.getLayer('out').setWeights([tf.tensor2d([-1, 1, 3, 1, 5, 1], [3, 2])]);
  crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  images = tf.tensor4d([1, 3, 2, 1], [2, 1, 1, 2]);
});
afterAll(() => {
  crp.dispose();
  model.dispose();
  images.dispose();
});

describe('votedConcepts', () => {
  it('ranks by relevance times the sign of the logit and leaves out relevance exactly 0', () => {
    expect(votedConcepts([-4, 3, 0], 2, -1)).toEqual([0]);
    expect(votedConcepts([-3, 6, 0], 2, 3)).toEqual([1]);
    // a positive logit ranks as before; -0 is dead as 0 is
    expect(votedConcepts([0.5, 2, -0, 1], 3, 1)).toEqual([1, 3, 0]);
    expect(votedConcepts([1, -0, 0], 3, -2)).toEqual([0]);
    // ties: the lower concept first, by the ids given
    expect(votedConcepts([1, 1], 1, 1, [7, 4])).toEqual([1]);
  });
});

describe('atlas votes under a negative logit', () => {
  it('the concept atlas votes the evidence for the class and no dead concept', async () => {
    const atlas = await conceptAtlas(crp, { images, labels }, { target: 0, topK: 2 });
    const c2 = atlas.layers.c2!.ranking;
    // votes tie (1, 1); then the larger mean relevance: h1 (3/7 + 2/3) / 2 = 23/42, h0 (-4/7 - 1/3) / 2 = -19/42
    expect(c2.map((e) => [e.concept, e.votes])).toEqual([
      [1, 1],
      [0, 1],
      [2, 0],
    ]);
    expect(c2[0]!.meanRelevance).toBeCloseTo(23 / 42, 5);
    expect(c2[1]!.meanRelevance).toBeCloseTo(-19 / 42, 5);
    // shares are signed relevance over the layer's absolute relevance (abs_norm), in percent
    expect(c2[0]!.percent).toBeCloseTo((100 * 23) / 42, 3);
    expect(c2[1]!.percent).toBeCloseTo((-100 * 19) / 42, 3);
    expect(c2[2]!.percent).toBe(0);
    // c1 (g = x): A R = [-1 + 3, -3] = [2, -3] (h0 splits -4 as 1:3, h1 gives 3 to g0), B R = [-2 + 6, -1] = [4, -1];
    // both non-zero, so with top-2 both samples vote both
    expect(atlas.layers.c1!.ranking.map((e) => [e.concept, e.votes])).toEqual([
      [0, 2],
      [1, 2],
    ]);
  });

  it('the region atlas (the whole pixel as the region) votes as the concept atlas does', async () => {
    const rr = regionRelevances(crp, images, { mask: [1] }, { target: 0, layers: ['c2'] });
    expect(rr.map((r) => r.logit)).toEqual([-1, 3]);
    expect(rr[0]!.layers.c2!.relevance.map((v) => v + 0)).toEqual([
      expect.closeTo(-4, 4),
      expect.closeTo(3, 4),
      0,
    ]);
    for (const method of ['adjoint', 'per-concept'] as const) {
      const atlas = await regionAtlas(
        crp,
        { images, labels },
        {
          target: 0,
          region: { mask: [1] },
          layers: ['c2'],
          topK: 2,
          method,
        },
      );
      expect(
        atlas.layers.c2!.ranking.map((e) => [e.concept, e.votes]),
        method,
      ).toEqual([
        [1, 1],
        [0, 1],
        [2, 0],
      ]);
    }
  });

  it('the decomposition atlas votes sub-concepts by evidence for the class; a dead parent has none', async () => {
    const atlas = await decompositionAtlas(crp, { images, labels }, { target: 0, concepts: 3, topK: 1 });
    const byParent = Object.fromEntries(
      atlas.layers.c2!.concepts.map((c) => [c.concept, c.children.map((s) => [s.concept, s.votes])]),
    );
    // h0 splits its relevance over g as g0 : g1 (A: [-1, -3], B: [-2, -1]); evidence: A [1, 3], B [-2, -1]: g1 twice
    expect(byParent[0]).toEqual([[1, 2]]);
    // h1 = g0: A [3, 0] (evidence [-3, 0]: the best is g1's 0, no vote), B [6, 0]: g0
    expect(byParent[1]).toEqual([[0, 1]]);
    // the dead h2 passes no relevance: no sub-concept gets a vote
    expect(byParent[2]).toEqual([]);
  });

  it('leaks no tensors', async () => {
    await conceptAtlas(crp, { images, labels }, { target: 0, topK: 2 });
    const before = tf.memory().numTensors;
    await conceptAtlas(crp, { images, labels }, { target: 0, topK: 2 });
    regionRelevances(crp, images, { mask: [1] }, { target: 0, layers: ['c2'], method: 'per-concept' });
    await decompositionAtlas(crp, { images, labels }, { target: 0, concepts: 3, topK: 1 });
    expect(tf.memory().numTensors).toBe(before);
  });
});
