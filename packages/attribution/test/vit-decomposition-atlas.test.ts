/**
 * The many-image decomposition atlas over a ViT's concept layers, on the tiny ViT of vit-concepts.test.ts (8x8
 * images in 2x2 patches, 1 block, 2 heads, width 8, MLP 12, 3 classes, seeded weights, AttnLRP): heads as upper
 * concepts (decomposed into the block input's d_model channels) and as lower concepts (the sub-concepts of MLP
 * neurons), and MLP neurons under the block output. Every vote, mean share and mean relevance is summed by hand
 * from one conditional backward pass per sample and concept (`decompose`, itself hand-checked on this ViT), and the
 * heads' own relevance from HeadConcept's sum over tokens and features; one image per pass (all dominant concepts
 * in one backward pass) gives the same atlas; no tensor is left.
 */
import { CondAttribution, disposeCondResult, HeadConcept } from '@crp/core';
import { attnLrp } from '@crp/lrp';
import { vit } from '@crp/models';
import { setVitWeights } from '@crp/models/internal';
import { tinyVit, tinyVitImages } from '@crp/testing/tiny-vit';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conceptLayerBelow, decompose, decompositionAtlas, fromTensors } from '../src/index.js';
import { useWasm } from './helpers.js';

useWasm();

const B = 'encoder.layers.encoder_layer_0.';
const HEADS = `${B}self_attention.context`;
const MLP = `${B}mlp.0`;
const OUT = `${B}add_2`;
const labels = [0, 1, 0, 2, 0, 0];
const TARGET = 0;

let model: tfl.LayersModel;
let crp: CondAttribution;
let images: tf.Tensor4D;

beforeAll(() => {
  model = tinyVit({ vit, setVitWeights });
  crp = new CondAttribution(model, { composite: attnLrp() });
  images = tinyVitImages(labels.length);
});
afterAll(() => {
  crp.dispose();
  model.dispose();
  images.dispose();
});

describe('decompositionAtlas over heads', () => {
  it('heads above (into the block input) and below (under MLP neurons): every number summed by hand', async () => {
    const ds = fromTensors(images, labels, { batchSize: 4 });
    const layers = [OUT, MLP, HEADS];
    const d = await decompositionAtlas(crp, ds, {
      target: TARGET,
      layers,
      concepts: 2,
      topK: 2,
      batchSize: 3,
    });
    const graph = crp.attributor.graph;
    expect(d.layerOrder).toEqual(layers);
    expect(d.layers[OUT]!.below).toEqual([MLP]);
    expect(d.layers[MLP]!.below).toEqual([HEADS]);
    const blockInput = conceptLayerBelow(graph, HEADS)!;
    expect(d.layers[HEADS]!.below).toEqual([blockInput]);
    expect(graph.node(blockInput).outputShape).toEqual([5, 8]); // tokens x d_model
    const class0 = labels.flatMap((l, i) => (l === TARGET ? [i] : []));
    expect(d.samples).toBe(class0.length);
    const heads = new HeadConcept();
    for (const layer of layers) {
      const [below] = d.layers[layer]!.below as [string];
      const { concepts } = d.layers[layer]!;
      const count = below === HEADS ? 2 : (graph.node(below).outputShape.at(-1) as number);
      expect(concepts.map((c) => c.concept)).toEqual(
        d.atlas.layers[layer]!.ranking.slice(0, 2).map((e) => e.concept),
      );
      for (const parent of concepts) {
        const votes = new Array<number>(count).fill(0);
        const shares = new Array<number>(count).fill(0);
        const sums = new Array<number>(count).fill(0);
        let parentSum = 0;
        for (const i of class0) {
          const one = tf.slice(images, i, 1);
          const g = decompose(crp, one, { target: TARGET, layer, concept: parent.concept, width: count });
          // a head's own relevance under { y }: its relevance summed over tokens and features, by hand
          if (layer === HEADS) {
            const r = crp.run(one, [{ y: [TARGET] }], { recordLayers: [HEADS], heatmap: false });
            const R = r.relevances[HEADS]!.dataSync();
            let own = 0;
            for (let k = parent.concept * 20; k < (parent.concept + 1) * 20; k++) own += R[k]!;
            const s = heads.attribute(r.relevances[HEADS]!);
            expect(s.dataSync()[parent.concept]).toBeCloseTo(own, 5);
            s.dispose();
            disposeCondResult(r);
            expect(g.nodes[0]!.relevance).toBeCloseTo(own, 5);
          }
          const logits = model.predict(one) as tf.Tensor;
          const sign = logits.dataSync()[TARGET]! < 0 ? -1 : 1;
          tf.dispose([logits, one]);
          const root = g.nodes[0]!;
          parentSum += root.relevance;
          const values = new Array<number>(count).fill(0);
          for (const n of g.nodes.slice(1)) values[n.concept] = n.relevance;
          const order = values.map((_, k) => k).sort((a, b) => sign * (values[b]! - values[a]!) || a - b);
          for (const k of order.slice(0, 2)) if (values[k] !== 0) votes[k]! += 1;
          values.forEach((v, k) => {
            sums[k]! += v;
            shares[k]! += root.relevance === 0 ? 0 : v / root.relevance;
          });
        }
        expect(parent.meanRelevance).toBeCloseTo(parentSum / class0.length, 5);
        expect(Math.abs(parent.meanRelevance)).toBeGreaterThan(1e-4);
        const voted = votes.flatMap((v, k) => (v > 0 ? [k] : []));
        expect(parent.children.map((c) => c.concept).sort((a, b) => a - b)).toEqual(voted);
        for (const child of parent.children) {
          expect(child.votes).toBe(votes[child.concept]);
          expect(child.percent).toBeCloseTo((100 * shares[child.concept]!) / class0.length, 3);
          expect(child.meanRelevance).toBeCloseTo(sums[child.concept]! / class0.length, 5);
        }
      }
    }
    // one image per pass: all dominant concepts of a layer in one backward pass, the same atlas
    const single = await decompositionAtlas(crp, ds, {
      target: TARGET,
      layers,
      concepts: 2,
      topK: 2,
      batchSize: 1,
      atlas: d.atlas,
    });
    for (const layer of layers) {
      d.layers[layer]!.concepts.forEach((parent, j) => {
        const other = single.layers[layer]!.concepts[j]!;
        expect(other.children.map((c) => [c.concept, c.votes])).toEqual(
          parent.children.map((c) => [c.concept, c.votes]),
        );
        other.children.forEach((c, k) => {
          expect(c.percent).toBeCloseTo(parent.children[k]!.percent, 3);
        });
      });
    }
  });

  it('decomposes every ViT concept layer by default and leaves no tensor behind', async () => {
    const ds = fromTensors(images, labels, { batchSize: 4 });
    const d = await decompositionAtlas(crp, ds, { target: TARGET, concepts: 1, topK: 1, batchSize: 2 });
    expect(d.layerOrder).toEqual([HEADS, MLP, `${B}mlp.3`, OUT]);
    const before = tf.memory().numTensors;
    await decompositionAtlas(crp, ds, { target: TARGET, atlas: d.atlas, concepts: 1, topK: 1, batchSize: 2 });
    expect(tf.memory().numTensors).toBe(before);
  });
});
