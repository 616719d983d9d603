import { CondAttribution, disposeCondResult } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConceptAtlas,
  compareAtlases,
  conceptAtlas,
  fromTensors,
  regionAtlas,
  regionMask,
  regionRelevance,
} from '../src/index.js';
import { expectCrpError, tinyImages, tinyModel, useWasm } from './helpers.js';

useWasm();

let model: tfl.LayersModel;
let crp: CondAttribution;
let images: tf.Tensor4D;
const labels = [1, 1, 0, 1, 2, 1];

beforeAll(() => {
  model = tinyModel(9);
  crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  images = tinyImages(labels.length, 21);
});
afterAll(() => {
  crp.dispose();
  model.dispose();
  images.dispose();
});

/** Region sum of one conditional heatmap, by a single crp.run. */
function handRegionSum(i: number, condition: Record<string, number[]>, mask: Float32Array): number {
  const one = tf.slice(images, i, 1);
  const r = crp.run(one, [condition]);
  one.dispose();
  const hm = r.heatmap!.dataSync();
  disposeCondResult(r);
  let s = 0;
  for (let p = 0; p < mask.length; p++) s += hm[p]! * mask[p]!;
  return s;
}

describe('regions', () => {
  it('builds masks from boxes, a centred square and explicit values', () => {
    const sq = regionMask({ centerSquare: 2 }, 4, 5);
    expect(Array.from(sq)).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    const boxes = regionMask(
      {
        boxes: [
          { x: -1, y: 0, width: 2, height: 1 },
          { x: 3, y: 3, width: 5, height: 5 },
        ],
      },
      4,
      5,
    );
    expect(Array.from(boxes)).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    expect(Array.from(regionMask({ mask: [1, 0, 0, 1] }, 2, 2))).toEqual([1, 0, 0, 1]);
  });

  it('rejects bad regions saying what is valid', async () => {
    await expectCrpError(() => regionMask({ centerSquare: 9 }, 8, 8), 'invalid-argument', /1\.\.8/);
    await expectCrpError(() => regionMask({ mask: [1, 0] }, 2, 2), 'invalid-argument', /give 4/);
    await expectCrpError(
      () => regionMask({ boxes: [{ x: 0, y: 0, width: 0, height: 1 }] }, 2, 2),
      'invalid-argument',
      /width, height >= 1/,
    );
    const one = tf.slice(images, 0, 1);
    await expectCrpError(
      () => regionRelevance(crp, one, { centerSquare: 4 }, { target: 1, concepts: { c2: [6] } }),
      'invalid-argument',
      /0\.\.5/,
    );
    await expectCrpError(
      () => regionRelevance(crp, images, { centerSquare: 4 }, { target: 1 }),
      'invalid-shape',
      /one image/,
    );
    one.dispose();
  });
});

describe('region-restricted attribution', () => {
  it('equals the region sum of each conditional heatmap and adds up to the class heatmap', () => {
    const mask = regionMask({ centerSquare: 4 }, 8, 8);
    const one = tf.slice(images, 3, 1);
    regionRelevance(crp, one, { centerSquare: 4 }, { target: 1 }); // warm-up: the attributor caches rule weights
    const before = tf.memory().numTensors;
    const r = regionRelevance(crp, one, { centerSquare: 4 }, { target: 1, batchSize: 5 });
    expect(tf.memory().numTensors).toBe(before);
    one.dispose();
    expect(Object.keys(r.layers)).toEqual(['c1', 'c2', 'd1']);
    expect(r.total).toBeCloseTo(handRegionSum(3, { y: [1] }, mask), 5);
    expect(Math.abs(r.total)).toBeGreaterThan(1e-3);
    for (const [layer, { concepts, relevance }] of Object.entries(r.layers)) {
      concepts.forEach((k, i) => {
        expect(relevance[i]!).toBeCloseTo(handRegionSum(3, { y: [1], [layer]: [k] }, mask), 5);
      });
      // invariant: all concepts of a layer together give the class heatmap's region sum
      const sum = relevance.reduce((s, x) => s + x, 0);
      expect(Math.abs(sum - r.total)).toBeLessThan(1e-5 * Math.max(1, Math.abs(r.total)));
    }
    // the whole image: region relevance is the concept's full heatmap sum
    const full = regionRelevance(
      crp,
      tf.slice(images, 3, 1),
      { mask: new Float32Array(64).fill(1) },
      { target: 1, layers: ['c2'] },
    );
    expect(full.layers.c2!.relevance[2]!).toBeCloseTo(
      handRegionSum(3, { y: [1], c2: [2] }, new Float32Array(64).fill(1)),
      5,
    );
  });

  it('a region atlas over the whole image ranks like the global atlas; prefilter and comparison', async () => {
    const ds = fromTensors(images, labels, { batchSize: 2 });
    const global = await conceptAtlas(crp, ds, { target: 1, topK: 2 });
    const whole = await regionAtlas(crp, ds, { target: 1, region: { centerSquare: 8 }, topK: 2 });
    // with flat first-layer rules, heatmap sums equal the relevance reaching c1 (and deeper layers, up to bias)
    expect(whole.samples).toBe(4);
    expect(whole.layers.c1!.ranking.map((e) => [e.concept, e.votes])).toEqual(
      global.layers.c1!.ranking.map((e) => [e.concept, e.votes]),
    );
    const centre = await regionAtlas(crp, ds, { target: 1, region: { centerSquare: 4 }, topK: 2 });
    expect(centre.evaluated.c2).toEqual([0, 1, 2, 3, 4, 5]);
    const filtered = await regionAtlas(crp, ds, {
      target: 1,
      region: { centerSquare: 4 },
      topK: 2,
      absNorm: false,
      prefilter: { atlas: global, topN: 3 },
    });
    expect(filtered.evaluated.c2).toEqual(global.layers.c2!.ranking.slice(0, 3).map((e) => e.concept));
    expect(filtered.layers.c2!.ranking.map((e) => e.concept).sort()).toEqual(
      [...filtered.evaluated.c2!].sort(),
    );
    expect(filtered.layers.c2!.ranking.reduce((s, e) => s + e.votes, 0)).toBe(8);
    const unfiltered = await regionAtlas(crp, ds, {
      target: 1,
      region: { centerSquare: 4 },
      topK: 2,
      absNorm: false,
    });
    for (const e of filtered.layers.c2!.ranking) {
      const same = unfiltered.layers.c2!.ranking.find((u) => u.concept === e.concept)!;
      expect(e.meanRelevance).toBeCloseTo(same.meanRelevance, 6);
    }
    expect(JSON.parse(JSON.stringify(filtered))).toEqual(filtered);

    const cmp = compareAtlases(global, centre);
    expect(cmp.map((c) => c.layer)).toEqual(['c1', 'c2', 'd1']);
    for (const c of cmp) {
      const a = new Set(global.layers[c.layer]!.ranking.slice(0, 2).map((e) => e.concept));
      const b = new Set(centre.layers[c.layer]!.ranking.slice(0, 2).map((e) => e.concept));
      const inter = [...a].filter((k) => b.has(k)).length;
      expect(c.jaccard).toBeCloseTo(inter / new Set([...a, ...b]).size, 12);
      expect(c.rankCorrelation).not.toBeNull();
      expect(c.rankCorrelation!).toBeGreaterThanOrEqual(-1);
      expect(c.rankCorrelation!).toBeLessThanOrEqual(1);
    }
    const self = compareAtlases(global, global);
    expect(self.every((c) => c.jaccard === 1 && c.rankCorrelation === 1)).toBe(true);
  });

  it('rank correlation and Jaccard by hand', () => {
    const atlas = (order: number[]): ConceptAtlas => ({
      target: 0,
      topK: 2,
      absNorm: true,
      samples: 1,
      layerOrder: ['L'],
      layers: {
        L: {
          layer: 'L',
          concepts: 4,
          ranking: order.map((concept) => ({
            concept,
            votes: 0,
            meanRelevance: 0,
            shareOfSamples: 0,
            percent: 0,
          })),
        },
      },
    });
    const [c] = compareAtlases(atlas([0, 1, 2, 3]), atlas([1, 0, 3, 2]));
    expect(c!.jaccard).toBe(1);
    // d = [1, 1, 1, 1]: 1 - 6 * 4 / (4 * 15) = 0.6
    expect(c!.rankCorrelation).toBeCloseTo(0.6, 12);
    const [d] = compareAtlases(atlas([0, 1, 2, 3]), atlas([3, 2, 1, 0]), { topK: 3 });
    expect(d!.jaccard).toBeCloseTo(2 / 4, 12);
    expect(d!.shared).toEqual([1, 2]);
    expect(d!.rankCorrelation).toBeCloseTo(-1, 12);
  });
});
