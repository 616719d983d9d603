/**
 * decompose below a join conserves at every depth. A node reached through an addition's branch has the relevance
 * that reaches it through that branch alone; its children must split exactly that, not the node's full conditional
 * relevance (which also holds what comes down the block's own convs).
 *
 * By hand on two residual blocks with 1x1 convs and no biases:
 *
 *   image [3, 3, 2] -> a (1x1, 3, relu) -> b1 (1x1, 3) -> s1 = b1 + a -> relu -> b2 (1x1, 3) -> s2 = b2 + relu(s1)
 *   -> relu -> c (1x1, 2) -> gap -> out (2)
 *
 * Root: concept 0 of c. Level 1: the channels of s2. Level 2: b2 and s1 (the identity shortcut). Level 3: s1's
 * channel i into b1's and a's channel i. s1 also feeds b2, so its recorded relevance under the chain condition holds
 * what comes down b2 as well; its node relevance (and its children) must be the shortcut's part only.
 */
import { CondAttribution, disposeCondResult } from '@crp/core';
import { formulaImage } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import type { AttributionGraph, AttributionGraphNode } from '../src/index.js';
import { decompose } from '../src/index.js';
import {
  childrenOf,
  joinImage,
  joinModel,
  pixels,
  predictedClass,
  slimResNet,
  topConcept,
} from './fixtures/joins.js';
import { useWasm } from './helpers.js';

useWasm();

function twoBlockModel(): tfl.LayersModel {
  // a, c, out positive (units alive, z+ denominators non-zero); b1, b2 mostly positive so the sums stay positive
  return joinModel(
    11,
    (input, conv) => {
      const a = conv('a', 3, 'relu').apply(input) as tfl.SymbolicTensor;
      const b1 = conv('b1', 3).apply(a) as tfl.SymbolicTensor;
      const s1 = tfl.layers.add({ name: 's1' }).apply([b1, a]);
      const r1 = tfl.layers.reLU({ name: 'r1' }).apply(s1) as tfl.SymbolicTensor;
      const b2 = conv('b2', 3).apply(r1) as tfl.SymbolicTensor;
      const s2 = tfl.layers.add({ name: 's2' }).apply([b2, r1]);
      const r2 = tfl.layers.reLU({ name: 'r2' }).apply(s2);
      return conv('c', 2).apply(r2) as tfl.SymbolicTensor;
    },
    { a: [0.1, 1], b1: [-0.2, 1], b2: [-0.2, 1], c: [0.1, 1], out: [0.1, 1] },
  );
}

/** Every node with children: all its children (every concept of every layer below kept; a join's branches together)
 * add up to it; a node with relevance 0 has children 0. Returns how many nodes were checked. */
function expectConserving(graph: AttributionGraph, which: (n: AttributionGraphNode) => boolean): number {
  let checked = 0;
  for (const n of graph.nodes.filter(which)) {
    const kids = childrenOf(graph, n);
    if (kids.length === 0) continue;
    const total = kids.reduce((s, k) => s + k.relevance, 0);
    if (n.relevance === 0) {
      for (const k of kids) expect(Math.abs(k.relevance)).toBeLessThan(1e-9);
    } else {
      expect(Math.abs(total - n.relevance)).toBeLessThanOrEqual(1e-4 * Math.abs(n.relevance) + 1e-9);
    }
    checked++;
  }
  return checked;
}

describe('decompose below a join, by hand on two residual blocks', () => {
  it('a shortcut node keeps the shortcut’s relevance and its children add up to it (depth 3)', () => {
    const model = twoBlockModel();
    const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
    const image = joinImage(4);
    try {
      const options = { target: 1, layer: 'c', concept: 0, depth: 3, width: 3 };
      const graph = decompose(crp, image, options);
      // the first run prepares the engine's cached weights; a second allocates nothing that stays
      const before = tf.memory().numTensors;
      expect(decompose(crp, image, options)).toEqual(graph);
      expect(tf.memory().numTensors).toBe(before);

      // by hand: activations and R_c[0](p) (epsilon on out, gap spreads evenly, no biases)
      const probe = tfl.model({
        inputs: model.inputs,
        outputs: ['a', 'b1', 'b2', 'c', 'out'].map((n) => model.getLayer(n).output as tfl.SymbolicTensor),
      });
      const outs = probe.predict(image) as tf.Tensor[];
      const [A, B1, B2, C] = outs.slice(0, 4).map(pixels) as [number[][], number[][], number[][], number[][]];
      const logits = Array.from(outs[4]!.dataSync());
      tf.dispose(outs);
      const W = model.getLayer('c').getWeights()[0]!.arraySync() as number[][][][];
      const ow = model.getLayer('out').getWeights()[0]!.arraySync() as number[][];
      const eps = 1e-6;
      const stab = (x: number) => x + (x >= 0 ? eps : -eps);
      const P = C.length;
      const gapC = [0, 1].map((k) => C.reduce((s, px) => s + px[k]!, 0) / P);
      const z = logits[1]!;
      const rGap0 = (gapC[0]! * ow[0]![1]! * z) / stab(z);
      const rC0 = C.map((px) => (px[0]! / P / gapC[0]!) * rGap0);
      const S1 = A.map((a, p) => a.map((ai, i) => Math.max(0, ai + B1[p]![i]!)));
      const S2 = S1.map((s, p) => s.map((si, i) => Math.max(0, si + B2[p]![i]!)));
      const wc = [0, 1, 2].map((j) => Math.max(0, W[0]![0]![j]![0]!));
      // z+ on c: relevance of s2's channel i at each position
      const rS2 = S2.map((px, p) => {
        const den = px.reduce((d, sj, j) => d + sj * wc[j]!, 0);
        return px.map((si, i) => ((si * wc[i]!) / den) * rC0[p]!);
      });
      // zennit's Sum rule on s2 then s1: each addend's share x / (sum + eps sign)
      const s1Part = (i: number) => rS2.map((r, p) => (S1[p]![i]! / stab(S1[p]![i]! + B2[p]![i]!)) * r[i]!);
      const share = (x: number[][], i: number) => {
        const part = s1Part(i);
        return part.reduce((s, r, p) => s + (x[p]![i]! / stab(A[p]![i]! + B1[p]![i]!)) * r, 0);
      };

      const shortcut = graph.nodes.filter((n) => n.depth === 2 && n.layer === 's1');
      expect(shortcut.length).toBeGreaterThan(0);
      for (const n of shortcut) {
        const own = graph.edges.find((e) => e.to === n.id)!;
        const parentChannel = graph.nodes.find((k) => k.id === own.from)!.concept;
        const i = n.concept;
        const hand = i === parentChannel ? s1Part(i).reduce((s, v) => s + v, 0) : 0;
        expect(n.relevance).toBeCloseTo(hand, 5);
        const kids = childrenOf(graph, n);
        const rel = (layer: string, k: number) =>
          kids.find((x) => x.layer === layer && x.concept === k)!.relevance;
        for (const k of [0, 1, 2]) {
          expect(rel('b1', k)).toBeCloseTo(k === i && hand !== 0 ? share(B1, i) : 0, 5);
          expect(rel('a', k)).toBeCloseTo(k === i && hand !== 0 ? share(A, i) : 0, 5);
        }
      }
      // no biases: z+ on c and b2 conserves too, so every node with children: the root, 3 of s2, 3 x (3 of b2 + 3 of s1)
      expect(expectConserving(graph, () => true)).toBe(1 + 3 + 18);
    } finally {
      crp.dispose();
      model.dispose();
      image.dispose();
    }
  });
});

describe('decompose below a join on the slim ResNet fixture of @crp/models', () => {
  it('every addition node’s children add up to it at depth 3, and a node of relevance 0 has none', async () => {
    const resnet = await slimResNet('basic');
    const rc = new CondAttribution(resnet, { composite: 'epsilon_plus_flat' });
    const x = formulaImage(1, 32, 32);
    try {
      const y = predictedClass(resnet, x);
      const { concept } = topConcept(rc, x, y, 'layer2.0.conv1');
      // the fixture's layer1 and stem have 8 channels: widths 64 keep every one, so children are complete sums
      const options = { target: y, layer: 'layer2.0.conv1', concept, depth: 3, width: [1, 64, 64] };
      const graph = decompose(rc, x, options);
      const before = tf.memory().numTensors;
      decompose(rc, x, options);
      expect(tf.memory().numTensors).toBe(before);

      const adds = graph.nodes.filter((n) => n.depth === 2 && n.layer === 'layer1.0.add');
      expect(adds.length).toBe(8);
      expect(adds.some((n) => n.relevance === 0)).toBe(true);
      expect(expectConserving(graph, (n) => n.layer.endsWith('.add'))).toBe(1 + 8);
      // a conv reached through a branch only feeds its addition, so its chain condition is exact: its children
      // (carried down from its branch's tensor) equal a conditional run under the whole chain
      const add = graph.nodes.find((n) => n.depth === 1)!;
      for (const n of graph.nodes.filter((k) => k.depth === 2 && k.layer === 'layer1.1.conv2')) {
        const cond = {
          y: [y],
          'layer2.0.conv1': [concept],
          'layer1.1.add': [add.concept],
          'layer1.1.conv2': [n.concept],
        };
        const run = rc.run(x, [cond], { recordLayers: ['layer1.1.conv1'], heatmap: false });
        const want = tf.tidy(
          () => tf.sum(run.relevances['layer1.1.conv1']!, [0, 1, 2]).arraySync() as number[],
        );
        disposeCondResult(run);
        for (const k of childrenOf(graph, n)) expect(k.relevance).toBeCloseTo(want[k.concept]!, 6);
      }
    } finally {
      x.dispose();
      rc.dispose();
      resnet.dispose();
    }
  });
});
