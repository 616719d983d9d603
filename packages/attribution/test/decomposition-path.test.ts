/**
 * decompose with a `path`: a concept decomposed as the node it is in a deeper attribution graph (what the explorer
 * does when a sub-concept is clicked), and `pathRelevance`, that node's relevance tensor. On the slim ResNet fixture
 * of @crp/models, the whole depth-3 graph of a conv (a chain, then a join, then both branches) and of an addition is
 * computed once; every inner node, decomposed again from its path alone, must have the graph's relevance and the
 * graph's children (the chain part computed by conditional runs, the path by carried tensors: the same numbers up to
 * float32 rounding).
 */
import { CondAttribution } from '@crp/core';
import { expectCrpError } from '@crp/testing';
import { formulaImage } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttributionGraph, AttributionGraphNode, ConceptStep } from '../src/index.js';
import { decompose, pathRelevance } from '../src/index.js';
import { childrenOf, predictedClass, slimResNet, topConcept } from './fixtures/joins.js';
import { useWasm } from './helpers.js';

useWasm();

let resnet: tfl.LayersModel;
let crp: CondAttribution;
let x: tf.Tensor;
let y: number;
beforeAll(async () => {
  resnet = await slimResNet('basic');
  crp = new CondAttribution(resnet, { composite: 'epsilon_plus_flat' });
  x = formulaImage(1, 32, 32);
  y = predictedClass(resnet, x);
});
afterAll(() => {
  x.dispose();
  crp.dispose();
  resnet.dispose();
});

/** The steps from the graph's root down to `n`, `n` excluded. */
function ancestors(graph: AttributionGraph, n: AttributionGraphNode): ConceptStep[] {
  const steps: ConceptStep[] = [];
  let id = n.id;
  for (;;) {
    const edge = graph.edges.find((e) => e.to === id);
    if (edge === undefined) return steps;
    const parent = graph.nodes.find((k) => k.id === edge.from)!;
    steps.unshift({ layer: parent.layer, concept: parent.concept });
    id = parent.id;
  }
}

/** Relevances of a node's children, per layer, largest first. */
function childValues(graph: AttributionGraph, n: AttributionGraphNode): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const k of childrenOf(graph, n)) out[k.layer] = [...(out[k.layer] ?? []), k.relevance];
  for (const v of Object.values(out)) v.sort((a, b) => b - a);
  return out;
}

describe('decompose from a path on the slim ResNet', () => {
  for (const root of ['layer2.0.conv1', 'layer2.0.add']) {
    it(`every inner node of ${root}'s depth-3 graph, decomposed from its path, is the graph's node`, () => {
      const { concept } = topConcept(crp, x, y, root);
      const graph = decompose(crp, x, { target: y, layer: root, concept, depth: 3, width: 2 });
      const inner = graph.nodes.filter((n) => n.depth > 0 && childrenOf(graph, n).length > 0);
      expect(inner.length).toBeGreaterThan(4);
      const layers = new Set(inner.map((n) => n.layer));
      // a chain step, a join and the branches below it are all among them
      expect([...layers].some((l) => l.endsWith('.add'))).toBe(true);
      expect([...layers].some((l) => l.includes('conv'))).toBe(true);
      for (const n of inner) {
        const path = ancestors(graph, n);
        const width = 2;
        const again = decompose(crp, x, { target: y, layer: n.layer, concept: n.concept, path, width });
        const scale = Math.abs(graph.nodes[0]!.relevance);
        const at = `${path.map((s) => `${s.layer}:${s.concept}`).join(' > ')} > ${n.layer}:${n.concept}`;
        expect(Math.abs(again.nodes[0]!.relevance - n.relevance), at).toBeLessThan(1e-5 * scale);
        const want = childValues(graph, n);
        const got = childValues(again, again.nodes[0]!);
        expect(Object.keys(got).sort(), at).toEqual(Object.keys(want).sort());
        for (const [l, v] of Object.entries(want)) {
          v.forEach((r, i) => {
            expect(Math.abs(got[l]![i]! - r), `${at} -> ${l}`).toBeLessThan(1e-5 * scale);
          });
        }
        // the node's tensor: masked to its concept, and its sum is the node's relevance
        const t = pathRelevance(crp, x, {
          target: y,
          path: [...path, { layer: n.layer, concept: n.concept }],
        });
        const total = tf.tidy(() => tf.sum(t).dataSync()[0]!);
        const own = tf.tidy(() => tf.sum(tf.abs(t), [0, 1, 2]).arraySync() as number[]);
        t.dispose();
        expect(Math.abs(total - n.relevance), at).toBeLessThan(1e-5 * scale);
        own.forEach((v, k) => {
          if (k !== n.concept) expect(v).toBe(0);
        });
      }
    });
  }

  it('leaves no tensor behind', () => {
    const { concept } = topConcept(crp, x, y, 'layer2.0.add');
    const path = [{ layer: 'layer2.0.add', concept }];
    const options = { target: y, layer: 'layer2.0.downsample.0', concept, path, depth: 2, width: 2 };
    decompose(crp, x, options);
    const before = tf.memory().numTensors;
    decompose(crp, x, options);
    pathRelevance(crp, x, { target: y, path: [...path, { layer: 'layer2.0.conv2', concept }] }).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a path that does not go down the graph, naming the layers below; a concept out of range', () => {
    const before = tf.memory().numTensors;
    expectCrpError(
      () =>
        decompose(crp, x, {
          target: y,
          layer: 'layer1.1.conv1',
          concept: 0,
          path: [{ layer: 'layer2.0.add', concept: 0 }],
        }),
      'invalid-argument',
      /'layer1.1.conv1' is not a layer below 'layer2.0.add'; the layers below it: layer2.0.conv2, layer2.0.downsample.0|the layers below it: layer2.0.downsample.0, layer2.0.conv2/,
    );
    expectCrpError(
      () => pathRelevance(crp, x, { target: y, path: [{ layer: 'layer2.0.add', concept: 99 }] }),
      'invalid-argument',
      /channel 99 is out of range for layer 'layer2.0.add': it has 12 channels/,
    );
    expectCrpError(() => pathRelevance(crp, x, { target: y, path: [] }), 'invalid-argument', /path/);
    expectCrpError(
      () => pathRelevance(crp, x, { target: y, path: [{ layer: 'layer9', concept: 0 }] }),
      'unknown-layer',
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});
