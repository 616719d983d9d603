/**
 * ViT concepts through every analysis, on a tiny ViT (8x8 images in 2x2 patches of 4 pixels, 1 block, 2 heads,
 * width 8, MLP 12, 3 classes, seeded weights, AttnLRP): the concept layers found by structure; the atlas's head
 * and MLP-neuron scores summed by hand from the recorded relevance; region relevance of heads, MLP neurons and
 * output dimensions (adjoint) equal to zennit-crp's definition (per concept) and to the conditional heatmap summed
 * by hand over the region's pixels, for a region of whole patches and for one that cuts a patch in half;
 * decomposition of the MLP output into MLP neurons; reference images of MLP neurons (tokens as a T x 1 map, the
 * whole image as receptive field, cropped to the relevance) and of heads (ranked by hand, localised by the head's
 * own heatmap); no tensor left behind.
 */
import {
  ChannelConcept,
  type Concept,
  CondAttribution,
  defaultConcept,
  disposeCondResult,
  HeadConcept,
} from '@crp/core';
import { attnLrp } from '@crp/lrp';
import { vit } from '@crp/models';
import { setVitWeights } from '@crp/models/internal';
import { tinyVit, tinyVitImages } from '@crp/testing/tiny-vit';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  conceptAtlas,
  conceptLayers,
  decompose,
  fromTensors,
  maximization,
  patchEmbedding,
  type Region,
  receptiveFieldBox,
  receptiveFieldGeometry,
  referenceImages,
  regionRelevances,
  transformerBlocks,
} from '../src/index.js';
import { tinyModel, useWasm } from './helpers.js';

useWasm();

const B = 'encoder.layers.encoder_layer_0.';
const HEADS = `${B}self_attention.context`;
const MLP = `${B}mlp.0`;
const MLP_OUT = `${B}mlp.3`;
const OUT = `${B}add_2`;

let model: tfl.LayersModel;
let crp: CondAttribution;
let images: tf.Tensor4D;
const labels = [0, 0, 1, 0];

beforeAll(() => {
  model = tinyVit({ vit, setVitWeights });
  crp = new CondAttribution(model, { composite: attnLrp() });
  images = tinyVitImages(4);
});
afterAll(() => {
  crp.dispose();
  model.dispose();
  images.dispose();
});

/** [rows, ...] relevance of one layer for `{ y: [target] }` on every image. */
function recorded(layer: string, target: number): { data: Float32Array; shape: number[] } {
  const r = crp.run(
    images,
    labels.map(() => ({ y: [target] })),
    { recordLayers: [layer], heatmap: false },
  );
  try {
    return { data: r.relevances[layer]!.dataSync() as Float32Array, shape: r.relevances[layer]!.shape };
  } finally {
    disposeCondResult(r);
  }
}

describe('the concept layers of a ViT', () => {
  it('are found by structure: heads, MLP neurons, MLP output and block output of each block', () => {
    expect(transformerBlocks(crp.attributor.graph)).toEqual([
      { heads: HEADS, mlpNeurons: MLP, mlpOutput: MLP_OUT, output: OUT },
    ]);
    expect(conceptLayers(crp.attributor.graph)).toEqual([HEADS, MLP, MLP_OUT, OUT]);
    expect(defaultConcept(crp.attributor.graph, HEADS)).toBeInstanceOf(HeadConcept);
    expect(defaultConcept(crp.attributor.graph, MLP).name).toBe('ChannelConcept');
    expect(patchEmbedding(crp.attributor.graph)).toEqual({ layer: 'conv_proj', grid: [2, 2], patch: [4, 4] });
    const cnn = new CondAttribution(tinyModel());
    expect(transformerBlocks(cnn.attributor.graph)).toEqual([]);
    expect(patchEmbedding(cnn.attributor.graph)).toBeUndefined();
    expect(conceptLayers(cnn.attributor.graph)).toEqual(['c1', 'c2', 'd1']);
    cnn.dispose();
  });
});

describe('concept atlas on a ViT', () => {
  it('scores heads (summed over tokens and dimensions) and MLP neurons (summed over tokens) as summed by hand', async () => {
    const atlas = await conceptAtlas(crp, fromTensors(images, labels), {
      target: 0,
      layers: [HEADS, MLP],
      topK: 1,
      absNorm: false,
    });
    const samples = labels.flatMap((l, i) => (l === 0 ? [i] : []));
    expect(atlas.samples).toBe(3);
    const logits = tf.tidy(() => (model.predict(images) as tf.Tensor).arraySync() as number[][]);
    const sign = logits.map((row) => (row[0]! < 0 ? -1 : 1));
    // heads: R at the context layer is [rows, heads 2, tokens 5, d 4]
    const heads = recorded(HEADS, 0);
    expect(heads.shape).toEqual([4, 2, 5, 4]);
    const perHead = (row: number, h: number) => {
      let s = 0;
      for (let t = 0; t < 5; t++)
        for (let k = 0; k < 4; k++) s += heads.data[((row * 2 + h) * 5 + t) * 4 + k]!;
      return s;
    };
    for (const h of [0, 1]) {
      const e = atlas.layers[HEADS]!.ranking.find((x) => x.concept === h)!;
      const mean = samples.reduce((s, i) => s + perHead(i, h), 0) / 3;
      expect(e.meanRelevance).toBeCloseTo(mean, 5);
      // a sample votes for the head with more evidence for the class: relevance times the sign of its target
      // logit (relevance starts from the logit, as in zennit-crp)
      const votes = samples.filter((i) => {
        const [a, b] = [sign[i]! * perHead(i, h), sign[i]! * perHead(i, 1 - h)];
        return a !== 0 && (a > b || (a === b && h === 0));
      }).length;
      expect(e.votes).toBe(votes);
    }
    expect(atlas.layers[HEADS]!.concepts).toBe(2);
    // MLP neurons: R at mlp.0 is [rows, tokens 5, 12], the class token included
    const mlp = recorded(MLP, 0);
    expect(mlp.shape).toEqual([4, 5, 12]);
    expect(atlas.layers[MLP]!.concepts).toBe(12);
    for (const e of atlas.layers[MLP]!.ranking) {
      let sum = 0;
      for (const i of samples) for (let t = 0; t < 5; t++) sum += mlp.data[(i * 5 + t) * 12 + e.concept]!;
      expect(e.meanRelevance).toBeCloseTo(sum / 3, 5);
    }
  });
});

describe('region relevance on a ViT', () => {
  // the region is pixels, as for a CNN: a patch counts with the relevance of its pixels inside the region, so a
  // patch cut in half contributes what its inside half carries (not its token's relevance times the area share)
  const regions: [string, Region][] = [
    ['the top-left patch (whole)', { boxes: [{ x: 0, y: 0, width: 4, height: 4 }] }],
    ['the left half of the top-right patch', { boxes: [{ x: 4, y: 0, width: 2, height: 4 }] }],
  ];
  for (const [what, region] of regions) {
    it(`of heads, MLP neurons and output dimensions equals the conditional heatmap summed over ${what}`, () => {
      const layers = [HEADS, MLP, OUT];
      const adjoint = regionRelevances(crp, images, region, { target: 2, layers });
      const perConcept = regionRelevances(crp, images, region, { target: 2, layers, method: 'per-concept' });
      const box = (region as { boxes: { x: number; y: number; width: number; height: number }[] }).boxes[0]!;
      let largest = 0;
      for (const layer of layers) {
        const count = layer === HEADS ? 2 : layer === MLP ? 12 : 8;
        // by hand: one image, every concept's conditional heatmap, summed over the box's pixels
        for (const image of [0, 3]) {
          const one = tf.slice(images, image, 1);
          const r = crp.run(
            one,
            Array.from({ length: count }, (_, k) => ({ y: [2], [layer]: [k] })),
          );
          const heat = r.heatmap!.dataSync();
          for (let k = 0; k < count; k++) {
            let s = 0;
            for (let y = box.y; y < box.y + box.height; y++)
              for (let x = box.x; x < box.x + box.width; x++) s += heat[k * 64 + y * 8 + x]!;
            const scale = Math.max(1e-6, ...Array.from(heat, Math.abs));
            largest = Math.max(largest, Math.abs(s));
            expect(Math.abs(adjoint[image]!.layers[layer]!.relevance[k]! - s) / scale).toBeLessThan(1e-4);
            expect(Math.abs(perConcept[image]!.layers[layer]!.relevance[k]! - s) / scale).toBeLessThan(1e-4);
          }
          disposeCondResult(r);
          one.dispose();
        }
      }
      expect(largest).toBeGreaterThan(1e-3);
    });
  }

  it('of the four patches adds up to the whole image, per concept', () => {
    const quarter = (x: number, y: number): Region => ({ boxes: [{ x, y, width: 4, height: 4 }] });
    const whole = regionRelevances(
      crp,
      images,
      { boxes: [{ x: 0, y: 0, width: 8, height: 8 }] },
      { target: 1, layers: [HEADS] },
    );
    const parts = [quarter(0, 0), quarter(4, 0), quarter(0, 4), quarter(4, 4)].map((q) =>
      regionRelevances(crp, images, q, { target: 1, layers: [HEADS] }),
    );
    for (let i = 0; i < 4; i++) {
      for (const h of [0, 1]) {
        const sum = parts.reduce((s, p) => s + p[i]!.layers[HEADS]!.relevance[h]!, 0);
        expect(sum).toBeCloseTo(whole[i]!.layers[HEADS]!.relevance[h]!, 5);
      }
      expect(parts.reduce((s, p) => s + p[i]!.total, 0)).toBeCloseTo(whole[i]!.total, 5);
    }
  });
});

describe('decomposition and reference images on a ViT', () => {
  it('decomposes an MLP output dimension into MLP neurons with their conditional relevance', () => {
    const one = tf.slice(images, 1, 1);
    const graph = decompose(crp, one, { layer: MLP_OUT, concept: 3, target: 0, width: 2 });
    const children = graph.edges.filter((e) => e.from === 'n0');
    expect(children.length).toBe(2);
    const r = crp.run(one, [{ y: [0], [MLP_OUT]: [3] }], { recordLayers: [MLP], heatmap: false });
    const rel = r.relevances[MLP]!.dataSync();
    const perNeuron = Array.from({ length: 12 }, (_, k) => {
      let s = 0;
      for (let t = 0; t < 5; t++) s += rel[t * 12 + k]!;
      return s;
    });
    disposeCondResult(r);
    one.dispose();
    const best = perNeuron
      .map((v, k) => [v, k] as const)
      .sort((a, b) => b[0] - a[0])
      .slice(0, 2);
    const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
    children.forEach((e, i) => {
      const child = nodes.get(e.to)!;
      expect(child.layer).toBe(MLP);
      expect(child.concept).toBe(best[i]![1]);
      expect(child.relevance).toBeCloseTo(best[i]![0], 5);
    });
  });

  it('decomposes a block output into MLP neurons, MLP neurons into heads, heads into the block input (summed by hand)', () => {
    const one = tf.slice(images, 2, 1);
    const EMBEDDED = 'encoder.pos_embedding';
    // the conditional relevance of every concept layer under a condition, summed per concept by hand
    const sums = (condition: Record<string, number[]>, layer: string, heads: boolean) => {
      const r = crp.run(one, [condition], { recordLayers: [layer], heatmap: false });
      const v = r.relevances[layer]!.dataSync();
      const shape = r.relevances[layer]!.shape;
      disposeCondResult(r);
      if (heads) {
        const [, h, t, d] = shape as number[];
        return Array.from({ length: h! }, (_, k) => {
          let s = 0;
          for (let i = 0; i < t! * d!; i++) s += v[k * t! * d! + i]!;
          return s;
        });
      }
      const [, t, c] = shape as number[];
      return Array.from({ length: c! }, (_, k) => {
        let s = 0;
        for (let i = 0; i < t!; i++) s += v[i * c! + k]!;
        return s;
      });
    };
    const top = (v: number[], n: number) =>
      v
        .map((x, k) => [x, k] as const)
        .sort((a, b) => b[0] - a[0] || a[1] - b[1])
        .slice(0, n);
    const graph = decompose(crp, one, { layer: OUT, concept: 5, target: 0, depth: 3, width: 2 });
    const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
    const childrenOf = (id: string) => graph.edges.filter((e) => e.from === id).map((e) => nodes.get(e.to)!);
    // level 1: MLP neurons of { y: 0, add_2: 5 }
    const c0 = { y: [0], [OUT]: [5] };
    expect(graph.nodes[0]!.relevance).toBeCloseTo(sums({ y: [0] }, OUT, false)[5]!, 5);
    const level1 = childrenOf('n0');
    const want1 = top(sums(c0, MLP, false), 2);
    expect(level1.map((n) => [n.layer, n.concept])).toEqual(want1.map(([, k]) => [MLP, k]));
    level1.forEach((n, i) => {
      expect(n.relevance).toBeCloseTo(want1[i]![0], 5);
    });
    // level 2: the heads under { y: 0, add_2: 5, mlp.0: k }, summed over tokens and features
    const first = level1[0]!;
    const level2 = childrenOf(first.id);
    const want2 = top(sums({ ...c0, [MLP]: [first.concept] }, HEADS, true), 2);
    expect(level2.map((n) => [n.layer, n.concept])).toEqual(want2.map(([, k]) => [HEADS, k]));
    level2.forEach((n, i) => {
      expect(n.relevance).toBeCloseTo(want2[i]![0], 5);
    });
    // level 3: the d_model channels of the block's input (the embedded tokens) under the whole chain
    const head = level2[0]!;
    const level3 = childrenOf(head.id);
    const want3 = top(sums({ ...c0, [MLP]: [first.concept], [HEADS]: [head.concept] }, EMBEDDED, false), 2);
    expect(level3.map((n) => [n.layer, n.concept])).toEqual(want3.map(([, k]) => [EMBEDDED, k]));
    level3.forEach((n, i) => {
      expect(n.relevance).toBeCloseTo(want3[i]![0], 5);
    });
    // a head as the root: its relevance summed over tokens and features; heads out of range name the heads
    const rootHead = decompose(crp, one, { layer: HEADS, concept: 1, target: 0, width: 8 });
    expect(rootHead.nodes[0]!.relevance).toBeCloseTo(sums({ y: [0] }, HEADS, true)[1]!, 5);
    expect(rootHead.edges.length).toBe(8);
    expect(() => decompose(crp, one, { layer: HEADS, concept: 2, target: 0 })).toThrow(
      /concept 2 is out of range .* it has 2 heads \(valid: 0\.\.1\)/,
    );
    one.dispose();
  });

  it('shows MLP neurons: the strongest token ranks, the receptive field is the whole image, the crop follows the heatmap', async () => {
    const source = fromTensors(images, labels);
    const max = await maximization(crp, source, { layers: [MLP], topK: 2 });
    const table = max.relevance[MLP]!;
    expect(table.mapSize).toEqual([5, 1]);
    expect(table.top[0]!.every((t) => t.argmaxPosition >= 0 && t.argmaxPosition < 5)).toBe(true);
    const geometry = receptiveFieldGeometry(crp.attributor.graph, MLP);
    expect(geometry.spatial).toBe(false);
    expect(receptiveFieldBox(geometry, 3)).toEqual({ x: 0, y: 0, width: 8, height: 8 });
    const whole = await referenceImages(crp, source, max, {
      layer: MLP,
      channels: [0, 5],
      topK: 2,
      crop: 'receptive-field',
    });
    for (const s of whole.channels[5]!) expect(s.box).toEqual({ x: 0, y: 0, width: 8, height: 8 });
    const cropped = await referenceImages(crp, source, max, { layer: MLP, channels: [0, 5], topK: 2 });
    for (const s of cropped.channels[0]!) {
      expect(s.box.width * s.box.height).toBeGreaterThan(0);
      expect(s.box.x + s.box.width).toBeLessThanOrEqual(8);
      expect(s.heatmapShareInBox).toBeGreaterThan(0);
    }
  });

  it("ranks heads (each sample for its label, summed over tokens and features, as HeadConcept) and shows them cropped to the head's own heatmap", async () => {
    const source = fromTensors(images, labels);
    const max = await maximization(crp, source, { layers: [HEADS], topK: 2, absNorm: false });
    const table = max.relevance[HEADS]!;
    expect([table.channels, table.mapSize]).toEqual([2, [5, 1]]);
    // by hand: R at the context layer [rows, 2, 5, 4] of each sample for its own label
    const byTarget = [recorded(HEADS, 0), recorded(HEADS, 1)];
    const perToken = (i: number, h: number, t: number) => {
      let s = 0;
      for (let k = 0; k < 4; k++) s += byTarget[labels[i]!]!.data[((i * 2 + h) * 5 + t) * 4 + k]!;
      return s;
    };
    for (const h of [0, 1]) {
      const scores = labels.map((_, i) => [0, 1, 2, 3, 4].reduce((s, t) => s + perToken(i, h, t), 0));
      const order = [0, 1, 2, 3].sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, 2);
      expect(table.top[h]!.map((t) => t.sample)).toEqual(order);
      table.top[h]!.forEach((t, r) => {
        expect(t.score).toBeCloseTo(scores[order[r]!]!, 5);
        const tokens = [0, 1, 2, 3, 4].map((k) => perToken(t.sample, h, k));
        expect(t.argmaxPosition).toBe(tokens.indexOf(Math.max(...tokens)));
      });
    }
    // references: the heatmap of the head (HeadConcept from the layer), not of feature h of its last axis
    const refs = await referenceImages(crp, source, max, { layer: HEADS, topK: 2 });
    for (const h of [0, 1]) {
      expect(refs.channels[h]!.map((s) => s.sample)).toEqual(table.top[h]!.map((t) => t.sample));
      for (const ref of refs.channels[h]!) {
        const one = tf.slice(images, ref.sample, 1);
        const heat = (maskMap: Record<string, Concept>) => {
          const r = crp.run(one, [{ [HEADS]: [h] }], { startLayer: HEADS, excludeParallel: false, maskMap });
          const v = Array.from(r.heatmap!.dataSync());
          disposeCondResult(r);
          return v;
        };
        const head = heat({ [HEADS]: new HeadConcept() });
        const feature = heat({ [HEADS]: new ChannelConcept() });
        one.dispose();
        const share = (v: number[]) => {
          let inside = 0;
          let all = 0;
          v.forEach((x, p) => {
            const [y, xx] = [Math.floor(p / 8), p % 8];
            const b = ref.box;
            all += Math.abs(x);
            if (y >= b.y && y < b.y + b.height && xx >= b.x && xx < b.x + b.width) inside += Math.abs(x);
          });
          return inside / all;
        };
        expect(ref.heatmapShareInBox).toBeCloseTo(share(head), 6);
        expect(head.some((x, p) => Math.abs(x - feature[p]!) > 1e-6)).toBe(true);
      }
    }
  });

  it('leaves no tensor behind', async () => {
    await conceptAtlas(crp, fromTensors(images, labels), { target: 0, layers: [HEADS, MLP, OUT] });
    regionRelevances(crp, images, { centerSquare: 4 }, { target: 0, layers: [HEADS, MLP] });
    await maximization(crp, fromTensors(images, labels), { layers: [HEADS], topK: 1 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      await maximization(crp, fromTensors(images, labels), { layers: [HEADS], topK: 1 });
      await conceptAtlas(crp, fromTensors(images, labels), { target: 0, layers: [HEADS, MLP, OUT] });
      regionRelevances(crp, images, { centerSquare: 4 }, { target: 0, layers: [HEADS, MLP] });
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
