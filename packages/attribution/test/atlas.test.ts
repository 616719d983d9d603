import type { Progress } from '@crp/common';
import { ChannelConcept, CondAttribution, disposeCondResult } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conceptAtlas, conceptLayers, fromTensors } from '../src/index.js';
import { expectCrpError, tinyImages, tinyModel, useWasm } from './helpers.js';

useWasm();

let model: tfl.LayersModel;
let crp: CondAttribution;
let images: tf.Tensor4D;
const labels = [0, 1, 1, 2, 1, 0, 1, 1, 2];

beforeAll(() => {
  model = tinyModel(3);
  crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  images = tinyImages(labels.length, 5);
});
afterAll(() => {
  crp.dispose();
  model.dispose();
  images.dispose();
});

/** The concepts a sample votes for, in plain JS: its top k by relevance times the sign of its target logit,
 * less those whose relevance is exactly 0. */
function handVotes(scores: number[], logit: number, k: number): number[] {
  const sign = logit < 0 ? -1 : 1;
  const order = scores.map((_, j) => j).sort((a, b) => sign * (scores[b]! - scores[a]!) || a - b);
  return order.slice(0, k).filter((j) => scores[j] !== 0);
}

/** The atlas by hand: one full (heatmap) pass per sample, channel sums, absNorm and top-k in plain JS. */
function handAtlas(classId: number, rows: number[], layers: string[], k: number, absNorm: boolean) {
  const out: Record<string, { votes: number[]; sums: number[] }> = {};
  for (const i of rows) {
    const one = tf.slice(images, i, 1);
    const r = crp.run(one, [{ y: [classId] }], { recordLayers: layers });
    one.dispose();
    const logit = r.prediction.dataSync()[classId]!;
    for (const layer of layers) {
      const rel = r.relevances[layer]!;
      const c = rel.shape[rel.rank - 1]!;
      const v = rel.dataSync();
      const s = new Array<number>(c).fill(0);
      for (let j = 0; j < v.length; j++) s[j % c]! += v[j]!;
      const norm = absNorm ? s.reduce((a, x) => a + Math.abs(x), 0) + 1e-10 : 1;
      const scores = s.map((x) => x / norm);
      out[layer] ??= { votes: new Array<number>(c).fill(0), sums: new Array<number>(c).fill(0) };
      const e = out[layer]!;
      for (const j of handVotes(scores, logit, k)) e.votes[j]! += 1;
      scores.forEach((x, j) => {
        e.sums[j]! += x;
      });
    }
    disposeCondResult(r);
  }
  return out;
}

describe('concept atlas', () => {
  it('defaults to every conv and dense layer below the output', () => {
    expect(conceptLayers(crp.attributor.graph)).toEqual(['c1', 'c2', 'd1']);
  });

  it('votes each sample’s top-k concepts as computed by hand', async () => {
    const progress: Progress[] = [];
    // batches are the atlas's own batchSize, on the shard grid (the data set's batchSize only paces iteration)
    const atlas = await conceptAtlas(crp, fromTensors(images, labels, { batchSize: 4 }), {
      target: 1,
      topK: 2,
      batchSize: 4,
      onProgress: (p) => progress.push(p),
    });
    const rows = labels.flatMap((y, i) => (y === 1 ? [i] : []));
    expect(atlas.samples).toBe(rows.length);
    expect(progress.map((p) => p.done)).toEqual([4, 5]);
    expect(progress.at(-1)!.total).toBe(5);
    const hand = handAtlas(1, rows, ['c1', 'c2', 'd1'], 2, true);
    expect(atlas.layerOrder).toEqual(['c1', 'c2', 'd1']);
    for (const layer of ['c1', 'c2', 'd1']) {
      const got = atlas.layers[layer]!;
      const h = hand[layer]!;
      expect(got.concepts).toBe(h.votes.length);
      const byConcept = [...got.ranking].sort((a, b) => a.concept - b.concept);
      expect(byConcept.map((e) => e.votes)).toEqual(h.votes);
      byConcept.forEach((e, k) => {
        expect(e.meanRelevance).toBeCloseTo(h.sums[k]! / rows.length, 5);
        expect(e.shareOfSamples).toBeCloseTo(h.votes[k]! / rows.length, 12);
      });
      // ranked by votes, then mean relevance; at most k votes per sample
      for (let i = 1; i < got.ranking.length; i++) {
        const [a, b] = [got.ranking[i - 1]!, got.ranking[i]!];
        expect(a.votes > b.votes || (a.votes === b.votes && a.meanRelevance >= b.meanRelevance)).toBe(true);
      }
      expect(got.ranking.reduce((s, e) => s + e.votes, 0)).toBe(h.votes.reduce((s, v) => s + v, 0));
      expect(got.ranking.reduce((s, e) => s + e.votes, 0)).toBeLessThanOrEqual(2 * rows.length);
      // abs-normalised: mean |relevance| sums to at most 1
      expect(got.ranking.reduce((s, e) => s + Math.abs(e.meanRelevance), 0)).toBeLessThanOrEqual(1 + 1e-6);
    }
    expect(JSON.parse(JSON.stringify(atlas))).toEqual(atlas);
  });

  it('is independent of the batch size; samples: all explains every sample for the class', async () => {
    const a = await conceptAtlas(
      crp,
      { images, labels },
      { target: 2, samples: 'all', batchSize: 9, absNorm: false },
    );
    const b = await conceptAtlas(crp, fromTensors(images, labels, { batchSize: 2 }), {
      target: 2,
      samples: 'all',
      batchSize: 1,
      absNorm: false,
    });
    expect(a.samples).toBe(9);
    expect(a.target).toBe(2);
    for (const layer of a.layerOrder) {
      expect(b.layers[layer]!.ranking.map((e) => [e.concept, e.votes])).toEqual(
        a.layers[layer]!.ranking.map((e) => [e.concept, e.votes]),
      );
      b.layers[layer]!.ranking.forEach((e, i) => {
        expect(e.meanRelevance).toBeCloseTo(a.layers[layer]!.ranking[i]!.meanRelevance, 5);
      });
    }
    // without absNorm, the mean of the dense layer's unit relevances sums to the mean relevance reaching d1
    const hand = handAtlas(
      2,
      labels.map((_, i) => i),
      ['d1'],
      5,
      false,
    );
    const sum = a.layers.d1!.ranking.reduce((s, e) => s + e.meanRelevance, 0);
    expect(sum).toBeCloseTo(hand.d1!.sums.reduce((s, x) => s + x, 0) / 9, 5);
  });

  it('rejects bad options with the valid values and leaks no tensors', async () => {
    await expectCrpError(
      () => conceptAtlas(crp, { images, labels }, { target: 3 }),
      'invalid-target',
      /0\.\.2/,
    );
    await expectCrpError(
      () => conceptAtlas(crp, { images, labels }, { target: 0, layers: ['nope'] }),
      'unknown-layer',
      /c1, c2/,
    );
    await expectCrpError(
      () => conceptAtlas(crp, { images, labels }, { target: 0, topK: 0 }),
      'invalid-argument',
      /positive integer/,
    );
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++)
      await conceptAtlas(crp, fromTensors(images, labels, { batchSize: 3 }), { target: 0, samples: 'all' });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('matches ChannelConcept.attribute with absNorm for a single sample', async () => {
    const one = tf.slice(images, 0, 1);
    const atlas = await conceptAtlas(
      crp,
      { images: one, labels: [0] },
      { target: 0, layers: ['c2'], topK: 1 },
    );
    const r = crp.run(one, [{ y: [0] }], { recordLayers: ['c2'] });
    const s = new ChannelConcept().attribute(r.relevances.c2!, { absNorm: true });
    const v = Array.from(s.dataSync());
    const logit = r.prediction.dataSync()[0]!;
    s.dispose();
    disposeCondResult(r);
    one.dispose();
    const top = atlas.layers.c2!.ranking[0]!;
    expect(top.votes).toBe(1);
    // the most evidence for the class: the largest relevance, or the most negative one under a negative logit
    const best = logit < 0 ? Math.min(...v) : Math.max(...v);
    expect(top.concept).toBe(v.indexOf(best));
    expect(top.meanRelevance).toBeCloseTo(best, 6);
  });
});
