/**
 * The layer below on a residual graph (layersBelow) and decomposition across an addition, checked by hand on a
 * tiny residual block with 1x1 convs and no biases:
 *
 *   image [3, 3, 2] -> a (1x1, 3, relu) -> b (1x1, 3) -> sum = b + a -> relu -> c (1x1, 2) -> gap -> out (2)
 *
 * Under epsilon_plus_flat, c has the z+ rule and reads relu(sum) >= 0: a concept k of c sends
 * R_sum[i] = sum_p s_i(p) c_ik+ / (sum_j s_j(p) c_jk+) R_c[k](p) to the sum's channels, which add up to R_c[k]
 * exactly (no bias). The addition has zennit's Sum rule: channel i of the sum splits into b's and a's channel i in
 * proportion to the addends, b_i(p) / (b_i(p) + a_i(p) + eps), so the two branches' channel i add up to R_sum[i].
 * a's share is what reaches a through the sum alone: a also feeds b, so the relevance recorded at a's output would
 * hold what comes down through b as well.
 *
 * Then the same on real graphs: the slim ResNet fixture of @crp/models (conservation through the residual sums), and
 * the DenseNet-like and squeeze-excitation ONNX models of the reference cases (a concatenation, a gated product).
 */
import { CondAttribution } from '@crp/core';
import { readOnnx } from '@crp/models/node';
import { referencePath } from '@crp/testing/reference';
import { formulaImage } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  conceptLayers,
  decompose,
  decompositionAtlas,
  fromTensors,
  layerBelow,
  layersBelow,
} from '../src/index.js';
import {
  childrenOf,
  joinImage,
  joinModel,
  pixels,
  predictedClass,
  slimResNet,
  topConcept,
} from './fixtures/joins.js';
import { expectCrpError, mulberry32, uniform, useWasm } from './helpers.js';

useWasm();

let model: tfl.LayersModel;
let crp: CondAttribution;
let image: tf.Tensor4D;

beforeAll(() => {
  // a and c positive (every unit alive, z+ denominators non-zero); b mixed, so the branches split unevenly
  model = joinModel(
    5,
    (input, conv) => {
      const a = conv('a', 3, 'relu').apply(input) as tfl.SymbolicTensor;
      const b = conv('b', 3).apply(a) as tfl.SymbolicTensor;
      const sum = tfl.layers.add({ name: 'sum' }).apply([b, a]);
      const r = tfl.layers.reLU({ name: 'relu' }).apply(sum);
      return conv('c', 2).apply(r) as tfl.SymbolicTensor;
    },
    { a: [0.1, 1], b: [-0.5, 1], c: [0.1, 1], out: [0.1, 1] },
  );
  crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  image = joinImage(9);
});
afterAll(() => {
  crp.dispose();
  model.dispose();
  image.dispose();
});

describe('the layer below on a residual graph', () => {
  it('a conv reading a sum has the sum below it; the sum has both branches; the first conv none', () => {
    const g = crp.attributor.graph;
    expect(layersBelow(g, 'c')).toEqual(['sum']);
    expect(layerBelow(g, 'c')).toBe('sum');
    expect(layersBelow(g, 'sum')).toEqual(['b', 'a']);
    expect(layerBelow(g, 'b')).toBe('a');
    expect(layersBelow(g, 'a')).toEqual([]);
    expect(layerBelow(g, 'a')).toBeUndefined();
    expectCrpError(() => layerBelow(g, 'sum'), 'invalid-argument', /joins several branches.*\(b, a\)/);
  });

  it('decomposes a concept of c into the sum’s channels and each of those into both branches, by hand', () => {
    const graph = decompose(crp, image, { target: 1, layer: 'c', concept: 0, depth: 2, width: 3 });
    // the first run prepares the engine's cached weights; a second run allocates nothing that stays
    const before = tf.memory().numTensors;
    expect(decompose(crp, image, { target: 1, layer: 'c', concept: 0, depth: 2, width: 3 })).toEqual(graph);
    expect(tf.memory().numTensors).toBe(before);

    // by hand: the activations, R_c[0](p) from the output (epsilon on out, gap spreads evenly)
    const probe = tfl.model({
      inputs: model.inputs,
      outputs: ['a', 'b', 'c', 'out'].map((n) => model.getLayer(n).output as tfl.SymbolicTensor),
    });
    const [aT, bT, cT, logitsT] = probe.predict(image) as tf.Tensor[];
    const [A, B, C] = [pixels(aT!), pixels(bT!), pixels(cT!)];
    const logits = Array.from(logitsT!.dataSync());
    const [cw] = model.getLayer('c').getWeights();
    const W = cw!.arraySync() as number[][][][]; // [1, 1, 3, 2]
    const ow = model.getLayer('out').getWeights()[0]!.arraySync() as number[][]; // [2, 2]
    tf.dispose([aT, bT, cT, logitsT]);
    const eps = 1e-6;
    const P = C.length;
    const gapC = [0, 1].map((k) => C.reduce((s, px) => s + px[k]!, 0) / P);
    const z = logits[1]!;
    // epsilon rule on out (no bias): R_gap[k] = gap_k * w_k1 * R_out / (z + eps sign z); gap shares evenly by value
    const rGap = gapC.map((g, k) => (g * ow[k]![1]! * z) / (z + (z >= 0 ? eps : -eps)));
    const rC0 = C.map((px) => (gapC[0] === 0 ? 0 : (px[0]! / P / gapC[0]!) * rGap[0]!));
    const S = A.map((a, p) => a.map((ai, i) => Math.max(0, ai + B[p]![i]!)));
    const rSum = [0, 1, 2].map((i) =>
      S.reduce((s, px, p) => {
        const den = px.reduce((d, sj, j) => d + sj * Math.max(0, W[0]![0]![j]![0]!), 0);
        return s + (den === 0 ? 0 : ((px[i]! * Math.max(0, W[0]![0]![i]![0]!)) / den) * rC0[p]!);
      }, 0),
    );
    const root = graph.nodes[0]!;

    const rootHand = rC0.reduce((s, v) => s + v, 0);
    expect(root.relevance).toBeCloseTo(rootHand, 5);

    // level 1: the three channels of the sum, relevances by hand, adding up to the root (z+: conservative)
    const level1 = childrenOf(graph, root);
    expect(level1.map((n) => n.layer)).toEqual(['sum', 'sum', 'sum']);
    for (const n of level1) expect(n.relevance).toBeCloseTo(rSum[n.concept]!, 5);
    expect(level1.reduce((s, n) => s + n.relevance, 0)).toBeCloseTo(root.relevance, 5);

    // level 2: sum channel i into b's and a's channel i (the others carry nothing), Sum rule shares by hand
    for (const parent of level1) {
      const i = parent.concept;
      const kids = childrenOf(graph, parent);
      expect(kids.map((n) => n.layer)).toEqual(['b', 'b', 'b', 'a', 'a', 'a']);
      const rel = (layer: string, k: number) =>
        kids.find((n) => n.layer === layer && n.concept === k)!.relevance;
      // relevance of sum channel i at each position, under the condition: the z+ share of R_c[0]
      const rSumP = S.map((px, p) => {
        const den = px.reduce((d, sj, j) => d + sj * Math.max(0, W[0]![0]![j]![0]!), 0);
        return den === 0 ? 0 : ((px[i]! * Math.max(0, W[0]![0]![i]![0]!)) / den) * rC0[p]!;
      });
      // the ReLU after the sum passes relevance on; zennit's Sum: R_x = x / (a + b + eps sign) R
      const split = (x: number[][]) =>
        rSumP.reduce((s, r, p) => {
          const tot = A[p]![i]! + B[p]![i]!;
          return s + (x[p]![i]! / (tot + (tot >= 0 ? eps : -eps))) * r;
        }, 0);
      expect(rel('b', i)).toBeCloseTo(split(B), 5);
      expect(rel('a', i)).toBeCloseTo(split(A), 5);
      for (const k of [0, 1, 2].filter((k) => k !== i)) {
        expect(rel('b', k)).toBeCloseTo(0, 6);
        expect(rel('a', k)).toBeCloseTo(0, 6);
      }
      // conservation through the sum: both branches' channel i add up to the sum's channel i
      expect(rel('b', i) + rel('a', i)).toBeCloseTo(parent.relevance, 5);
    }
  });
});

describe('decomposition on the slim ResNet fixture of @crp/models', () => {
  it('goes from a block’s conv1 into the previous addition, and from there into both branches, conserving', async () => {
    const resnet = await slimResNet('basic');
    const rc = new CondAttribution(resnet, { composite: 'epsilon_plus_flat' });
    const x = formulaImage(1, 32, 32);
    try {
      const g = rc.attributor.graph;
      expect(layersBelow(g, 'layer2.0.conv1')).toEqual(['layer1.1.add']);
      expect(layersBelow(g, 'layer2.0.downsample.0')).toEqual(['layer1.1.add']);
      // an identity shortcut: the block's last conv (its batch norm passed) and the previous block's addition
      // (in the addition's input order, which is the importer's)
      expect(layersBelow(g, 'layer1.1.add').sort()).toEqual(['layer1.0.add', 'layer1.1.conv2']);
      // layer1.0: its shortcut is the stem's pooled map
      expect(layersBelow(g, 'layer1.0.add').sort()).toEqual(['conv1', 'layer1.0.conv2']);
      // every conv has a layer below but the stem's
      const convs = g.nodes.filter((n) => n.kind === 'conv2d').map((n) => n.id);
      expect(convs.filter((c) => layersBelow(g, c).length !== 1)).toEqual(['conv1']);

      // the predicted class (a positive logit) and its most relevant channel of layer2.0.conv1
      const y = predictedClass(resnet, x);
      const { concept, relevance } = topConcept(rc, x, y, 'layer2.0.conv1');
      expect(relevance).toBeGreaterThan(0);
      const graph = decompose(rc, x, {
        target: y,
        layer: 'layer2.0.conv1',
        concept,
        depth: 2,
        width: [2, 8],
      });
      const adds = graph.nodes.filter((n) => n.depth === 1);
      expect(adds.map((n) => n.layer)).toEqual(['layer1.1.add', 'layer1.1.add']);
      for (const a of adds) {
        const kids = childrenOf(graph, a);
        expect([...new Set(kids.map((k) => k.layer))].sort()).toEqual(['layer1.0.add', 'layer1.1.conv2']);
        // the addition is element-wise: its channel goes to the same channel of each branch, and zennit's Sum rule
        // conserves it (all 8 channels of each branch kept, the others carry 0)
        for (const k of kids.filter((k) => Math.abs(k.relevance) > 1e-9)) expect(k.concept).toBe(a.concept);
        expect(Math.abs(a.relevance)).toBeGreaterThan(1e-6);
        const total = kids.reduce((s, k) => s + k.relevance, 0);
        expect(Math.abs(total - a.relevance)).toBeLessThan(1e-4 * Math.abs(a.relevance));
      }
    } finally {
      x.dispose();
      rc.dispose();
      resnet.dispose();
    }
  });
});

describe('the layer below in concatenating and gated ONNX graphs (vendor/reference/onnx)', () => {
  const onnx = (name: string) => readOnnx(referencePath('onnx', 'models', `${name}.onnx`));

  it('a DenseNet layer’s conv reads the concatenation; the decomposition atlas takes every conv but the first', async () => {
    const m = await onnx('densenet_like');
    const dc = new CondAttribution(m, { composite: 'epsilon_plus_flat' });
    const x = tf.tidy(() => tf.tensor4d(uniform(mulberry32(3), 2 * 16 * 16 * 3, 0, 1), [2, 16, 16, 3]));
    try {
      const g = dc.attributor.graph;
      const below = Object.fromEntries(conceptLayers(g).map((l) => [l, layersBelow(g, l)]));
      expect(below).toEqual({
        'features.conv0': [],
        'features.denseblock1.denselayer1.conv1': ['features.conv0'],
        'features.denseblock1.denselayer2.conv1': ['features.denseblock1.denselayer1.concat'],
        'features.transition1.conv': ['features.denseblock1.denselayer2.concat'],
      });
      // a concatenation has one layer below per part: the previous features and the new layer's conv
      expect(layersBelow(g, 'features.denseblock1.denselayer1.concat').sort()).toEqual([
        'features.conv0',
        'features.denseblock1.denselayer1.conv1',
      ]);
      const d = await decompositionAtlas(dc, fromTensors(x, [0, 0]), { target: 0, concepts: 2, topK: 2 });
      expect(d.layerOrder).toEqual(Object.keys(below).filter((l) => l !== 'features.conv0'));
    } finally {
      x.dispose();
      dc.dispose();
      m.dispose();
    }
  });

  it('a layer after a squeeze-excitation block reads the gated product', async () => {
    const m = await onnx('se_net');
    const sc = new CondAttribution(m, { composite: 'epsilon_plus_flat' });
    try {
      const g = sc.attributor.graph;
      expect(layersBelow(g, 'classifier.0')).toEqual(['features.6.mul']);
      // the product's two factors: the feature map and the gate (which gets no relevance under PassToFeature)
      expect(layersBelow(g, 'features.6.mul')).toEqual(['features.3', 'features.6.fc2']);
    } finally {
      sc.dispose();
      m.dispose();
    }
  });
});
