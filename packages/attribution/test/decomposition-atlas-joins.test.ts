/**
 * The decomposition atlas with a join as the parent layer: an addition decomposes into both branches, as
 * `decompose` does (zennit-crp's AttributionGraph follows every input layer).
 *
 * By hand on a tiny residual block with 1x1 convs and no biases (the shape of decomposition-residual.test.ts):
 *
 *   image [3, 3, 2] -> a (1x1, 3, relu) -> b (1x1, 3) -> sum = b + a -> relu -> c (1x1, 2) -> gap -> out (2)
 *
 * Under epsilon_plus_flat the output has the epsilon rule, the average pool spreads by value, c the z+ rule on
 * relu(sum) >= 0, and the sum zennit's Sum rule: channel i of the sum splits into b's and a's channel i in
 * proportion to the addends, b_i(p) / (b_i(p) + a_i(p) + eps), so the two branches' channel i add up to it.
 *
 * Then on the slim basic and bottleneck ResNet fixtures of @crp/models: every number of the atlas against
 * per-image `decompose` of the same concept, and conservation over both branches.
 */
import { join } from 'node:path';
import { CondAttribution } from '@crp/core';
import { readOnnx, readTorchResNet } from '@crp/models/node';
import { referencePath } from '@crp/testing/reference';
import { formulaInput } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  conceptAtlas,
  type DecompositionAtlas,
  decompose,
  decompositionAtlas,
  fromTensors,
  layersBelow,
} from '../src/index.js';
import { expectCrpError, mulberry32, uniform, useWasm } from './helpers.js';

useWasm();

function residualBlock(): tfl.LayersModel {
  const input = tfl.input({ shape: [3, 3, 2], name: 'image' });
  const conv = (name: string, filters: number, activation?: 'relu') =>
    tfl.layers.conv2d({
      name,
      filters,
      kernelSize: 1,
      useBias: false,
      ...(activation ? { activation } : {}),
    });
  const a = conv('a', 3, 'relu').apply(input) as tfl.SymbolicTensor;
  const b = conv('b', 3).apply(a) as tfl.SymbolicTensor;
  const sum = tfl.layers.add({ name: 'sum' }).apply([b, a]) as tfl.SymbolicTensor;
  const r = tfl.layers.reLU({ name: 'relu' }).apply(sum) as tfl.SymbolicTensor;
  const c = conv('c', 2).apply(r) as tfl.SymbolicTensor;
  const gap = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(c) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ name: 'out', units: 2, useBias: false }).apply(gap) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: input, outputs: out });
  const rng = mulberry32(5);
  // a, c and out positive (positive logits, z+ denominators non-zero); b mixed, so the branches split unevenly
  m.getLayer('a').setWeights([tf.tensor4d(uniform(rng, 6, 0.1, 1), [1, 1, 2, 3])]);
  m.getLayer('b').setWeights([tf.tensor4d(uniform(rng, 9, -0.5, 1), [1, 1, 3, 3])]);
  m.getLayer('c').setWeights([tf.tensor4d(uniform(rng, 6, 0.1, 1), [1, 1, 3, 2])]);
  m.getLayer('out').setWeights([tf.tensor2d(uniform(rng, 4, 0.1, 1), [2, 2])]);
  return m;
}

/** Per-channel values of a [1, H, W, C] tensor as [position][channel]. */
function pixels(t: tf.Tensor): number[][] {
  const v = Array.from(t.dataSync());
  const c = t.shape.at(-1)!;
  return Array.from({ length: v.length / c }, (_, p) => v.slice(p * c, (p + 1) * c));
}

/**
 * By hand, for one image and class `y`: per sum channel i, R_sum_i (under { y }) and the parts of b's and a's
 * channel i (the other channels of each branch get nothing from channel i).
 */
function byHand(
  model: tfl.LayersModel,
  image: tf.Tensor,
  y: number,
): { sum: number; b: number; a: number }[] {
  const probe = tfl.model({
    inputs: model.inputs,
    outputs: ['a', 'b', 'c', 'out'].map((n) => model.getLayer(n).output as tfl.SymbolicTensor),
  });
  const [aT, bT, cT, logitsT] = probe.predict(image) as tf.Tensor[];
  const [A, B, C] = [pixels(aT!), pixels(bT!), pixels(cT!)];
  const z = logitsT!.dataSync()[y]!;
  tf.dispose([aT, bT, cT, logitsT]);
  const W = model.getLayer('c').getWeights()[0]!.arraySync() as number[][][][]; // [1, 1, 3, 2]
  const ow = model.getLayer('out').getWeights()[0]!.arraySync() as number[][]; // [2, 2]
  const eps = 1e-6;
  const stab = (x: number) => x + (x >= 0 ? eps : -eps);
  const P = C.length;
  // epsilon on out (no bias); the average pool gives each position its share of the mean
  const gapC = [0, 1].map((k) => C.reduce((s, px) => s + px[k]!, 0) / P);
  const rGap = gapC.map((g, k) => (g * ow[k]![y]! * z) / stab(z));
  const rC = C.map((px) => px.map((v, k) => (v / P / gapC[k]!) * rGap[k]!));
  // z+ on c over relu(sum); the ReLU passes relevance on; the Sum rule splits by the addends
  const S = A.map((a, p) => a.map((ai, i) => Math.max(0, ai + B[p]![i]!)));
  const wp = (i: number, k: number) => Math.max(0, W[0]![0]![i]![k]!);
  return [0, 1, 2].map((i) => {
    const out = { sum: 0, b: 0, a: 0 };
    S.forEach((px, p) => {
      let r = 0;
      for (const k of [0, 1]) {
        const den = px.reduce((d, sj, j) => d + sj * wp(j, k), 0);
        r += den === 0 ? 0 : ((px[i]! * wp(i, k)) / den) * rC[p]![k]!;
      }
      const tot = stab(A[p]![i]! + B[p]![i]!);
      out.sum += r;
      out.b += (B[p]![i]! / tot) * r;
      out.a += (A[p]![i]! / tot) * r;
    });
    return out;
  });
}

describe('decompositionAtlas of an addition, by hand', () => {
  let model: tfl.LayersModel;
  let crp: CondAttribution;
  let images: tf.Tensor4D;

  beforeAll(() => {
    model = residualBlock();
    crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
    images = tf.tensor4d(uniform(mulberry32(9), 3 * 18, 0, 1), [3, 3, 3, 2]);
  });
  afterAll(() => {
    crp.dispose();
    model.dispose();
    images.dispose();
  });

  it('the sum’s channel i splits into b’s and a’s channel i, the two shares adding up to 100%', async () => {
    const y = 1;
    const data = fromTensors(images, [y, y, y], { batchSize: 2 });
    const d = await decompositionAtlas(crp, data, { target: y, layers: ['sum'], concepts: 3, topK: 3 });
    const layer = d.layers.sum!;
    expect(layer.below).toEqual(['b', 'a']);
    expect(layer.concepts.map((c) => c.concept).sort()).toEqual([0, 1, 2]);
    const hand = [0, 1, 2].map((j) => {
      const one = tf.slice(images, j, 1);
      try {
        return byHand(model, one, y);
      } finally {
        one.dispose();
      }
    });
    const mean = (f: (h: { sum: number; b: number; a: number }[]) => number) =>
      hand.reduce((s, h) => s + f(h), 0) / hand.length;
    for (const parent of layer.concepts) {
      const i = parent.concept;
      expect(parent.meanRelevance).toBeCloseTo(
        mean((h) => h[i]!.sum),
        5,
      );
      // only channel i of each branch has relevance from sum channel i (the others are exactly 0: no vote)
      const voters = hand.filter((h) => h[i]!.sum !== 0).length;
      expect(parent.children.map((c) => `${c.layer}:${c.concept}`).sort()).toEqual([`a:${i}`, `b:${i}`]);
      for (const branch of ['b', 'a'] as const) {
        const child = parent.children.find((c) => c.layer === branch)!;
        expect(child.votes).toBe(voters);
        expect(child.meanRelevance).toBeCloseTo(
          mean((h) => h[i]![branch]),
          5,
        );
        expect(child.percent).toBeCloseTo(
          mean((h) => (h[i]!.sum === 0 ? 0 : (100 * h[i]![branch]) / h[i]!.sum)),
          3,
        );
      }
      // zennit's Sum rule conserves: each branch's share of the parent, together 100% (of samples that have it)
      const total = parent.children.reduce((s, c) => s + c.percent, 0);
      expect(total).toBeCloseTo((100 * voters) / hand.length, 3);
      // the branches split unevenly (b's weights are mixed): each branch's own share is reported
      expect(parent.children[0]!.percent).toBeGreaterThanOrEqual(parent.children[1]!.percent);
    }
  });

  it('refuses a layer that does not exist (nearest names) and a layer with nothing below it', async () => {
    const data = fromTensors(images, [1, 1, 1]);
    await expectCrpError(
      () => decompositionAtlas(crp, data, { target: 1, layers: ['summ'] }),
      'unknown-layer',
      /unknown layer 'summ' \(nearest: sum/,
    );
    await expectCrpError(
      () => decompositionAtlas(crp, data, { target: 1, layers: ['a'] }),
      'invalid-argument',
      /layer 'a' has no layer below it to decompose into \(only the input\); choose a higher layer, e.g. b, c$/,
    );
  });
});

/**
 * Every number of `d` against per-image `decompose` of the same concept with every sub-concept kept: the parent's
 * mean relevance, and per layer below each child's votes (top-k by evidence, per branch), mean share and mean
 * relevance. Returns, per layer and concept, the sum of the children's mean relevances over all branches.
 */
function expectAsDecompose(
  crp: CondAttribution,
  images: tf.Tensor4D,
  y: number,
  d: DecompositionAtlas,
  topK: number,
): void {
  const g = crp.attributor.graph;
  const n = images.shape[0];
  const pass = crp.attributor.forward(images);
  const logits = (pass.prediction.arraySync() as number[][]).map((r) => r[y]!);
  pass.dispose();
  for (const layer of d.layerOrder) {
    const { below, concepts } = d.layers[layer]!;
    expect(below).toEqual(layersBelow(g, layer));
    const widths = below.map((b) => g.node(b).outputShape.at(-1) as number);
    for (const parent of concepts) {
      let parentSum = 0;
      const per = below.map((_, bi) => ({
        votes: new Array<number>(widths[bi]!).fill(0),
        shares: new Array<number>(widths[bi]!).fill(0),
        sums: new Array<number>(widths[bi]!).fill(0),
      }));
      for (let i = 0; i < n; i++) {
        const one = tf.slice(images, i, 1);
        const graph = decompose(crp, one, {
          target: y,
          layer,
          concept: parent.concept,
          width: Math.max(...widths),
        });
        one.dispose();
        const root = graph.nodes[0]!;
        parentSum += root.relevance;
        below.forEach((b, bi) => {
          const values = new Array<number>(widths[bi]!).fill(0);
          for (const node of graph.nodes.slice(1))
            if (node.layer === b) values[node.concept] = node.relevance;
          const sign = logits[i]! < 0 ? -1 : 1;
          const order = values.map((_, k) => k).sort((p, q) => sign * (values[q]! - values[p]!) || p - q);
          for (const k of order.slice(0, topK)) if (values[k] !== 0) per[bi]!.votes[k]! += 1;
          values.forEach((v, k) => {
            per[bi]!.sums[k]! += v;
            per[bi]!.shares[k]! += root.relevance === 0 ? 0 : v / root.relevance;
          });
        });
      }
      const scale = Math.max(1e-6, Math.abs(parentSum / n));
      expect(Math.abs(parent.meanRelevance - parentSum / n)).toBeLessThan(1e-5 * scale);
      below.forEach((b, bi) => {
        const kids = parent.children.filter((c) => c.layer === b);
        const voted = per[bi]!.votes.flatMap((v, k) => (v > 0 ? [k] : []));
        expect(kids.map((c) => c.concept).sort((p, q) => p - q)).toEqual(voted);
        for (const child of kids) {
          expect(child.votes).toBe(per[bi]!.votes[child.concept]);
          expect(Math.abs(child.meanRelevance - per[bi]!.sums[child.concept]! / n)).toBeLessThan(
            1e-5 * scale,
          );
          expect(child.percent).toBeCloseTo((100 * per[bi]!.shares[child.concept]!) / n, 3);
        }
      });
      expect(parent.children.every((c) => below.includes(c.layer))).toBe(true);
    }
  }
}

describe.each([
  {
    fixture: 'slim-resnet-basic.pth',
    seed: 32,
    // a stage's first block (downsample branch) and an identity shortcut
    adds: {
      'layer2.0.add': ['layer2.0.conv2', 'layer2.0.downsample.0'],
      'layer1.1.add': ['layer1.1.conv2', 'layer1.0.add'],
    },
  },
  {
    fixture: 'slim-resnet-bottleneck.pth',
    seed: 33,
    adds: {
      'layer1.0.add': ['layer1.0.downsample.0', 'layer1.0.conv3'],
      'layer2.1.add': ['layer2.0.add', 'layer2.1.conv3'],
    },
  },
])('decompositionAtlas of additions on the $fixture fixture', ({ fixture, seed, adds }) => {
  let resnet: tfl.LayersModel;
  let crp: CondAttribution;
  let images: tf.Tensor4D;
  let y = 0;

  beforeAll(async () => {
    const file = join(import.meta.dirname, '..', '..', 'models', 'test', 'fixtures', 'pth', fixture);
    resnet = await readTorchResNet(file, { inputSize: 32 });
    crp = new CondAttribution(resnet, { composite: 'epsilon_plus_flat' });
    images = tf.tidy(() =>
      tf.transpose(tf.tensor4d(formulaInput([3, 3, 32, 32], seed), [3, 3, 32, 32]), [0, 2, 3, 1]),
    );
    // the class the first image predicts
    const logits = tf.tidy(() => (resnet.predict(images) as tf.Tensor).arraySync() as number[][])[0]!;
    y = logits.indexOf(Math.max(...logits));
  });
  afterAll(() => {
    crp.dispose();
    resnet.dispose();
    images.dispose();
  });

  it('children in both branches, each number as decompose gives it, conserving over the branches', async () => {
    const layers = Object.keys(adds);
    const g = crp.attributor.graph;
    for (const [add, below] of Object.entries(adds))
      expect([...layersBelow(g, add)].sort()).toEqual([...below].sort());
    const channels = Math.max(...layers.map((l) => g.node(l).outputShape.at(-1) as number));
    const data = fromTensors(images, [y, y, y], { batchSize: 2 });
    // top-k as wide as the layers: every sub-concept with relevance gets a vote, so the children hold it all
    const d = await decompositionAtlas(crp, data, {
      target: y,
      layers,
      concepts: 2,
      topK: channels,
      batchSize: 2,
    });
    expect(d.layerOrder).toEqual(layers);
    expectAsDecompose(crp, images, y, d, channels);
    for (const layer of layers) {
      for (const parent of d.layers[layer]!.concepts) {
        // zennit's Sum rule conserves: the children of both branches add up to the parent
        const total = parent.children.reduce((s, c) => s + c.meanRelevance, 0);
        expect(Math.abs(parent.meanRelevance)).toBeGreaterThan(1e-6);
        expect(Math.abs(total - parent.meanRelevance)).toBeLessThan(1e-4 * Math.abs(parent.meanRelevance));
        // an addition is element-wise: its channel goes to the same channel of each branch, both listed
        for (const c of parent.children) expect(c.concept).toBe(parent.concept);
        expect(new Set(parent.children.map((c) => c.layer))).toEqual(
          new Set(adds[layer as keyof typeof adds]),
        );
      }
    }

    // batched (every dominant concept one pass per image batch) and one image per pass give the same atlas
    const single = await decompositionAtlas(crp, data, {
      target: y,
      layers,
      concepts: 2,
      topK: channels,
      batchSize: 1,
      atlas: d.atlas,
    });
    for (const layer of layers) {
      expect(single.layers[layer]!.below).toEqual(d.layers[layer]!.below);
      d.layers[layer]!.concepts.forEach((parent, j) => {
        const other = single.layers[layer]!.concepts[j]!;
        expect(other.concept).toBe(parent.concept);
        expect(other.meanRelevance).toBeCloseTo(parent.meanRelevance, 5);
        expect(other.children.map((c) => [c.layer, c.concept, c.votes])).toEqual(
          parent.children.map((c) => [c.layer, c.concept, c.votes]),
        );
        other.children.forEach((c, i) => {
          expect(c.percent).toBeCloseTo(parent.children[i]!.percent, 3);
          expect(c.meanRelevance).toBeCloseTo(parent.children[i]!.meanRelevance, 5);
        });
      });
    }
  });

  it('leaves no tensors behind; the stem conv has nothing below it', async () => {
    const data = fromTensors(images, [y, y, y], { batchSize: 2 });
    const layers = Object.keys(adds);
    const atlas = await conceptAtlas(crp, data, { target: y, layers });
    await decompositionAtlas(crp, data, { target: y, layers, atlas, concepts: 2, topK: 2 });
    const before = tf.memory().numTensors;
    await decompositionAtlas(crp, data, { target: y, layers, atlas, concepts: 2, topK: 2 });
    await decompositionAtlas(crp, data, { target: y, layers, atlas, concepts: 2, topK: 2, batchSize: 1 });
    expect(tf.memory().numTensors).toBe(before);
    await expectCrpError(
      () => decompositionAtlas(crp, data, { target: y, layers: ['conv1'] }),
      'invalid-argument',
      /layer 'conv1' has no layer below it to decompose into \(only the input\); choose a higher layer, e.g. layer1\.0\.conv1, /,
    );
    await expectCrpError(
      () => decompositionAtlas(crp, data, { target: y, layers: ['layer2.0.sum'] }),
      'unknown-layer',
      /nearest: .*layer2\.0\.add/,
    );
  });
});

describe('decompositionAtlas of a concatenation (the DenseNet-like ONNX model of vendor/reference/onnx)', () => {
  it('a channel of the concatenation lies in one part: its children are that part’s same channel, all of it', async () => {
    const file = referencePath('onnx', 'models', 'densenet_like.onnx');
    const m = await readOnnx(file);
    const dc = new CondAttribution(m, { composite: 'epsilon_plus_flat' });
    const x = tf.tidy(() => tf.tensor4d(uniform(mulberry32(3), 3 * 16 * 16 * 3, 0, 1), [3, 16, 16, 3]));
    try {
      const g = dc.attributor.graph;
      const concat = 'features.denseblock1.denselayer1.concat';
      const parts = layersBelow(g, concat);
      const widths = parts.map((p) => g.node(p).outputShape.at(-1) as number);
      const offsets = widths.map((_, i) => widths.slice(0, i).reduce((a, b) => a + b, 0));
      const channels = g.node(concat).outputShape.at(-1) as number;
      expect(widths.reduce((a, b) => a + b, 0)).toBe(channels);
      const d = await decompositionAtlas(dc, fromTensors(x, [0, 0, 0]), {
        target: 0,
        layers: [concat],
        concepts: channels,
        topK: Math.max(...widths),
      });
      expect(d.layers[concat]!.below).toEqual(parts);
      expectAsDecompose(dc, x, 0, d, Math.max(...widths));
      for (const parent of d.layers[concat]!.concepts) {
        if (parent.meanRelevance === 0) continue;
        // the part holding the channel, at the channel's place in it; the other part gets nothing (no vote)
        const part = offsets.findLastIndex((o) => o <= parent.concept);
        expect(parent.children.map((c) => [c.layer, c.concept])).toEqual([
          [parts[part], parent.concept - offsets[part]!],
        ]);
        // a concatenation hands the channel's relevance on unchanged
        expect(parent.children[0]!.meanRelevance).toBeCloseTo(parent.meanRelevance, 6);
        // 100% in each sample where the channel has relevance (those vote for it), 0% in the others
        expect(parent.children[0]!.percent).toBeCloseTo((100 * parent.children[0]!.votes) / d.samples, 4);
      }
    } finally {
      x.dispose();
      dc.dispose();
      m.dispose();
    }
  });
});
