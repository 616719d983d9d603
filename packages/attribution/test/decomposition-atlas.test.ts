/**
 * The decomposition atlas: each layer's dominant concepts (the global atlas's most voted) decomposed into the
 * layer below, voted over samples. Checked against `decompose` (one conditional backward pass per concept and
 * image) on every sample, and the atlas's new `percent` against a hand computation.
 */
import { ChannelConcept, CondAttribution, disposeCondResult } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conceptAtlas, decompose, decompositionAtlas, formatVotes, fromTensors } from '../src/index.js';
import { expectCrpError, tinyImages, tinyModel, useWasm } from './helpers.js';

useWasm();

let model: tfl.LayersModel;
let crp: CondAttribution;
let images: tf.Tensor4D;
const labels = [1, 1, 0, 1, 2, 1, 1];

beforeAll(() => {
  model = tinyModel(9);
  crp = new CondAttribution(model);
  images = tinyImages(labels.length, 23);
});
afterAll(() => {
  crp.dispose();
  model.dispose();
  images.dispose();
});

describe('decompositionAtlas', () => {
  it('equals per-sample decompositions: votes, mean shares and mean relevances of every sub-concept', async () => {
    const ds = fromTensors(images, labels, { batchSize: 2 });
    const d = await decompositionAtlas(crp, ds, { target: 1, concepts: 2, topK: 2, batchSize: 3 });
    expect(d.samples).toBe(5);
    expect(d.layerOrder).toEqual(['c2', 'd1']);
    expect(d.layers.c2!.below).toEqual(['c1']);
    expect(d.layers.d1!.below).toEqual(['c2']);
    const class1 = labels.flatMap((l, i) => (l === 1 ? [i] : []));
    for (const layer of d.layerOrder) {
      const [below] = d.layers[layer]!.below as [string];
      const { concepts } = d.layers[layer]!;
      // the dominant concepts are the atlas's top 2 by votes
      expect(concepts.map((c) => c.concept)).toEqual(
        d.atlas.layers[layer]!.ranking.slice(0, 2).map((e) => e.concept),
      );
      for (const parent of concepts) {
        const channels = model.getLayer(below).outputShape.at(-1) as number;
        const votes = new Array<number>(channels).fill(0);
        const shares = new Array<number>(channels).fill(0);
        const sums = new Array<number>(channels).fill(0);
        let parentSum = 0;
        for (const i of class1) {
          const one = tf.slice(images, i, 1);
          const g = decompose(crp, one, { target: 1, layer, concept: parent.concept, width: channels });
          const logits = model.predict(one) as tf.Tensor;
          const sign = logits.dataSync()[1]! < 0 ? -1 : 1;
          logits.dispose();
          one.dispose();
          const root = g.nodes[0]!;
          parentSum += root.relevance;
          const values = new Array<number>(channels).fill(0);
          for (const n of g.nodes.slice(1)) values[n.concept] = n.relevance;
          // top 2 by evidence for the class (relevance times the logit's sign), never a relevance of exactly 0
          const order = values.map((_, k) => k).sort((a, b) => sign * (values[b]! - values[a]!) || a - b);
          for (const k of order.slice(0, 2)) if (values[k] !== 0) votes[k]! += 1;
          values.forEach((v, k) => {
            sums[k]! += v;
            shares[k]! += root.relevance === 0 ? 0 : v / root.relevance;
          });
        }
        expect(parent.meanRelevance).toBeCloseTo(parentSum / class1.length, 5);
        const voted = votes.flatMap((v, k) => (v > 0 ? [k] : []));
        expect(parent.children.map((c) => c.concept).sort()).toEqual(voted.sort());
        for (const child of parent.children) expect(child.layer).toBe(below);
        for (const child of parent.children) {
          expect(child.votes).toBe(votes[child.concept]);
          expect(child.percent).toBeCloseTo((100 * shares[child.concept]!) / class1.length, 3);
          expect(child.meanRelevance).toBeCloseTo(sums[child.concept]! / class1.length, 5);
        }
        // most votes first
        for (let j = 1; j < parent.children.length; j++) {
          expect(parent.children[j - 1]!.votes).toBeGreaterThanOrEqual(parent.children[j]!.votes);
        }
      }
    }
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
    // one image per pass (all dominant concepts of a layer in one backward pass) gives the same atlas
    const single = await decompositionAtlas(crp, ds, { target: 1, concepts: 2, topK: 2, batchSize: 1 });
    for (const layer of d.layerOrder) {
      d.layers[layer]!.concepts.forEach((parent, j) => {
        const other = single.layers[layer]!.concepts[j]!;
        expect(other.concept).toBe(parent.concept);
        expect(other.children.map((c) => [c.concept, c.votes])).toEqual(
          parent.children.map((c) => [c.concept, c.votes]),
        );
        other.children.forEach((c, i) => {
          expect(c.percent).toBeCloseTo(parent.children[i]!.percent, 4);
        });
      });
    }
  });

  it('takes a given atlas, and refuses bad layers and an atlas of another class', async () => {
    const ds = fromTensors(images, labels, { batchSize: 4 });
    const atlas = await conceptAtlas(crp, ds, { target: 1 });
    const d = await decompositionAtlas(crp, ds, { target: 1, atlas, layers: ['d1'], concepts: 1 });
    expect(d.layerOrder).toEqual(['d1']);
    expect(d.atlas).toBe(atlas);
    await expectCrpError(
      () => decompositionAtlas(crp, ds, { target: 0, atlas }),
      'invalid-argument',
      /class 1, not the target 0/,
    );
    await expectCrpError(
      () => decompositionAtlas(crp, ds, { target: 1, layers: ['c1'] }),
      'invalid-argument',
      /no layer below it to decompose into \(only the input\)/,
    );
    await expectCrpError(
      () => decompositionAtlas(crp, ds, { target: 1, layers: ['zz'] }),
      'unknown-layer',
      /zz/,
    );
    await expectCrpError(() => decompositionAtlas(crp, ds, { target: 7 }), 'invalid-target', /0\.\.2/);
  });

  it('leaves no tensors behind', async () => {
    const ds = fromTensors(images, labels, { batchSize: 4 });
    const atlas = await conceptAtlas(crp, ds, { target: 1 });
    await decompositionAtlas(crp, ds, { target: 1, atlas });
    const before = tf.memory().numTensors;
    await decompositionAtlas(crp, ds, { target: 1, atlas, batchSize: 2 });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('atlas entries report votes as k/n and percent of the layer relevance', () => {
  it('percent is 100 R_c / sum |R| of the layer, averaged over samples', async () => {
    const ds = fromTensors(images, labels, { batchSize: 4 });
    const atlas = await conceptAtlas(crp, ds, { target: 1, absNorm: false });
    const class1 = labels.flatMap((l, i) => (l === 1 ? [i] : []));
    const concept = new ChannelConcept();
    for (const layer of atlas.layerOrder) {
      const expected = new Map<number, number>();
      for (const i of class1) {
        const one = tf.slice(images, i, 1);
        const r = crp.run(one, [{ y: [1] }], { recordLayers: [layer], heatmap: false });
        one.dispose();
        const s = concept.attribute(r.relevances[layer]!);
        const v = Array.from(s.dataSync());
        s.dispose();
        disposeCondResult(r);
        const abs = v.reduce((a, x) => a + Math.abs(x), 0);
        v.forEach((x, k) => {
          expected.set(k, (expected.get(k) ?? 0) + (100 * x) / abs / class1.length);
        });
      }
      for (const e of atlas.layers[layer]!.ranking)
        expect(e.percent).toBeCloseTo(expected.get(e.concept)!, 3);
      const top = atlas.layers[layer]!.ranking[0]!;
      expect(formatVotes(top, atlas)).toBe(`${top.votes}/5`);
    }
  });
});
