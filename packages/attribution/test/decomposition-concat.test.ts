/**
 * The layer below and the branch decomposition on a concatenation of a concatenation (DenseNet-style, where the
 * inner concatenation also feeds the conv whose output the outer one appends):
 *
 *   image [3, 3, 2] -> a (1x1, 3, relu) -> c1 = concat(image, a) [5] -> b (1x1, 2, relu) -> c2 = concat(c1, b) [7]
 *     -> d (1x1, 2) -> gap -> out (2)
 *
 * A concatenation only routes: channel k of c2 is channel k of c1 (k < 5) or channel k - 5 of b, so a concept of
 * c2 goes whole to one branch, at its index there, and nothing to the other. The input has no layer below, so c1's
 * layers below are `a` alone.
 */
import { CondAttribution } from '@crp/core';
import type * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompose, layersBelow } from '../src/index.js';
import { childrenOf, joinImage, joinModel } from './fixtures/joins.js';
import { useWasm } from './helpers.js';

useWasm();

let model: tfl.LayersModel;
let crp: CondAttribution;
let image: tf.Tensor4D;

beforeAll(() => {
  // positive weights and image: every unit alive, every channel of c2 gets relevance
  model = joinModel(
    17,
    (input, conv) => {
      const a = conv('a', 3, 'relu').apply(input) as tfl.SymbolicTensor;
      const c1 = tfl.layers.concatenate({ name: 'c1' }).apply([input, a]) as tfl.SymbolicTensor;
      const b = conv('b', 2, 'relu').apply(c1) as tfl.SymbolicTensor;
      const c2 = tfl.layers.concatenate({ name: 'c2' }).apply([c1, b]);
      return conv('d', 2).apply(c2) as tfl.SymbolicTensor;
    },
    { a: [0.1, 1], b: [0.1, 1], d: [0.1, 1], out: [0.1, 1] },
  );
  crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  image = joinImage(19, 0.1);
});
afterAll(() => {
  crp.dispose();
  model.dispose();
  image.dispose();
});

describe('a concatenation of a concatenation', () => {
  it('has the inner concatenation and the new conv below it; the inner one the conv only (the input is none)', () => {
    const g = crp.attributor.graph;
    expect(layersBelow(g, 'd')).toEqual(['c2']);
    expect(layersBelow(g, 'c2')).toEqual(['c1', 'b']);
    expect(layersBelow(g, 'b')).toEqual(['c1']);
    expect(layersBelow(g, 'c1')).toEqual(['a']);
  });

  it('sends each concept of the outer concatenation whole to its branch, at its index there', () => {
    const graph = decompose(crp, image, { target: 0, layer: 'd', concept: 1, depth: 2, width: [7, 5] });
    const root = graph.nodes[0]!;
    const level1 = childrenOf(graph, root);
    expect(level1.map((n) => n.layer)).toEqual(Array(7).fill('c2'));
    // z+ on d, no bias: the channels of c2 add up to d's concept
    expect(root.relevance).toBeGreaterThan(0);
    expect(level1.reduce((s, n) => s + n.relevance, 0)).toBeCloseTo(root.relevance, 5);
    for (const parent of level1) {
      expect(parent.relevance).toBeGreaterThan(0);
      const kids = childrenOf(graph, parent);
      // width 5 in each branch: all of c1's channels, both of b's
      expect(kids.map((n) => n.layer)).toEqual([...Array(5).fill('c1'), ...Array(2).fill('b')]);
      const [layer, index] = parent.concept < 5 ? ['c1', parent.concept] : ['b', parent.concept - 5];
      for (const k of kids) {
        if (k.layer === layer && k.concept === index) expect(k.relevance).toBeCloseTo(parent.relevance, 6);
        else expect(k.relevance).toBeCloseTo(0, 9);
      }
    }
  });
});
