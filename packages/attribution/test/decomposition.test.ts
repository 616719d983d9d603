import { CondAttribution } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AttributionGraph, decompose, layerBelow, toMermaid, toSvg } from '../src/index.js';
import { expectCrpError, tinyImages, tinyModel, useWasm } from './helpers.js';

useWasm();

let model: tfl.LayersModel;
let crp: CondAttribution;
let image: tf.Tensor4D;

beforeAll(() => {
  model = tinyModel(13);
  crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  image = tinyImages(1, 17);
});
afterAll(() => {
  crp.dispose();
  model.dispose();
  image.dispose();
});

function oneHot(c: number, k: number, rank: number): tf.Tensor {
  const m = new Float32Array(c);
  m[k] = 1;
  return tf.tensor(m, [...new Array<number>(rank - 1).fill(1), c]);
}

function sums(t: tf.Tensor): number[] {
  const v = t.dataSync();
  const c = t.shape[t.rank - 1]!;
  const out = new Array<number>(c).fill(0);
  for (let i = 0; i < v.length; i++) out[i % c]! += v[i]!;
  return out;
}

/** The chain by hand with the engine: output -> layers[0] (mask concepts[0]) -> layers[1] (mask concepts[1]) ... */
function handChain(
  y: number,
  layers: string[],
  concepts: number[],
): { rootRelevance: number; below: number[] } {
  const a = crp.attributor;
  const pass = a.forward(image);
  try {
    const logits = pass.output(a.graph.outputId);
    let r = tf.mul(logits, oneHot(3, y, 2));
    let from = a.graph.outputId;
    let rootRelevance = Number.NaN;
    for (let i = 0; i < layers.length; i++) {
      const out = a.backward(pass, { from, relevance: r, stopAt: [layers[i]!] });
      r.dispose();
      const at = out.get(layers[i]!)!;
      if (i === 0) rootRelevance = sums(at)[concepts[0]!]!;
      if (i === layers.length - 1) {
        const s = sums(at);
        at.dispose();
        return { rootRelevance, below: s };
      }
      const mask = oneHot(at.shape[at.rank - 1]!, concepts[i]!, at.rank);
      r = tf.mul(at, mask);
      mask.dispose();
      at.dispose();
      from = layers[i]!;
    }
    throw new Error('unreachable');
  } finally {
    pass.dispose();
  }
}

describe('decomposition into sub-concepts', () => {
  it('finds the conv/dense layer below', () => {
    const g = crp.attributor.graph;
    expect(layerBelow(g, 'd1')).toBe('c2');
    expect(layerBelow(g, 'c2')).toBe('c1');
    expect(layerBelow(g, 'c1')).toBeUndefined();
    expect(layerBelow(g, 'out')).toBe('d1');
  });

  it('shares equal the hand-chained backward passes, two levels deep', () => {
    const graph = decompose(crp, image, { target: 2, layer: 'd1', concept: 1, depth: 2, width: 2 });
    const root = graph.nodes[0]!;
    const level1 = handChain(2, ['d1', 'c2'], [1]);
    expect(Math.abs(level1.rootRelevance)).toBeGreaterThan(1e-3);
    expect(root).toMatchObject({ id: 'n0', layer: 'd1', concept: 1, depth: 0 });
    expect(root.relevance).toBeCloseTo(level1.rootRelevance, 5);
    const children = graph.edges.filter((e) => e.from === 'n0');
    const expectedOrder = level1.below
      .map((_, k) => k)
      .sort((a, b) => level1.below[b]! - level1.below[a]! || a - b);
    expect(children.map((e) => graph.nodes.find((n) => n.id === e.to)!.concept)).toEqual(
      expectedOrder.slice(0, 2),
    );
    for (const e of children) {
      const child = graph.nodes.find((n) => n.id === e.to)!;
      expect(child.layer).toBe('c2');
      expect(e.relevance).toBeCloseTo(level1.below[child.concept]!, 5);
      expect(e.share).toBeCloseTo(level1.below[child.concept]! / level1.rootRelevance, 5);
      // level 2: the chain d1[1] -> c2[child] down to c1
      const level2 = handChain(2, ['d1', 'c2', 'c1'], [1, child.concept]);
      const grand = graph.edges.filter((g) => g.from === child.id);
      expect(grand).toHaveLength(2);
      for (const g of grand) {
        const gc = graph.nodes.find((n) => n.id === g.to)!;
        expect(gc).toMatchObject({ layer: 'c1', depth: 2 });
        expect(g.relevance).toBeCloseTo(level2.below[gc.concept]!, 5);
        expect(g.share).toBeCloseTo(level2.below[gc.concept]! / child.relevance, 4);
      }
    }
    expect(graph.nodes).toHaveLength(7);
    expect(JSON.parse(JSON.stringify(graph))).toEqual(graph);
  });

  it('stopping at the layer below gives the same numbers as a full backward pass', () => {
    const early = decompose(crp, image, { target: 0, layer: 'c2', concept: 3, depth: 1, width: 4 });
    const full = decompose(crp, image, {
      target: 0,
      layer: 'c2',
      concept: 3,
      depth: 1,
      width: 4,
      fullPass: true,
    });
    expect(early).toEqual(full);
    // epsilon-plus below c2 (z+ rule) conserves relevance from c2 to c1 up to c2's bias: shares sum near 1
    const all = decompose(crp, image, { target: 0, layer: 'c2', concept: 3, width: 4 });
    const total = all.edges.reduce((s, e) => s + e.share, 0);
    expect(total).toBeGreaterThan(0.3);
    expect(total).toBeLessThan(1.0001);
    // stops at the input: depth beyond c1 adds nothing
    const deep = decompose(crp, image, { target: 0, layer: 'c2', concept: 3, depth: 5, width: 1 });
    expect(deep.nodes.map((n) => n.layer)).toEqual(['c2', 'c1']);
  });

  it('exports Mermaid text and an SVG picture', () => {
    const graph: AttributionGraph = {
      target: 0,
      root: 'n0',
      nodes: [
        { id: 'n0', layer: 'c2', concept: 3, relevance: 0.5, depth: 0 },
        { id: 'n1', layer: 'c1', concept: 1, relevance: 0.4, depth: 1 },
        { id: 'n2', layer: 'c1', concept: 0, relevance: -0.05, depth: 1 },
      ],
      edges: [
        { from: 'n0', to: 'n1', relevance: 0.4, share: 0.8 },
        { from: 'n0', to: 'n2', relevance: -0.05, share: -0.1 },
      ],
    };
    expect(toMermaid(graph)).toBe(
      [
        'flowchart TD',
        '  n0["c2 #3<br/>R = 0.500"]',
        '  n1["c1 #1<br/>R = 0.400"]',
        '  n2["c1 #0<br/>R = -0.0500"]',
        '  n0 -->|"80.0%"| n1',
        '  n0 -->|"-10.0%"| n2',
        '',
      ].join('\n'),
    );
    const svg = toSvg(graph);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<rect /g)).toHaveLength(4); // background + 3 nodes
    expect(svg.match(/<line /g)).toHaveLength(2);
    expect(svg).toContain('stroke="#2b59c3"'); // the negative edge
    expect(svg).toContain('80.0%');
    expect(() => toSvg({ ...graph, edges: [{ from: 'n0', to: 'n9', relevance: 0, share: 0 }] })).toThrow(
      /n9/,
    );
  });

  it('rejects bad requests with the valid values and leaks no tensors', async () => {
    await expectCrpError(
      () => decompose(crp, image, { target: 0, layer: 'c2', concept: 6 }),
      'invalid-argument',
      /0\.\.5/,
    );
    await expectCrpError(
      () => decompose(crp, image, { target: 5, layer: 'c2', concept: 0 }),
      'invalid-target',
      /0\.\.2/,
    );
    await expectCrpError(
      () => decompose(crp, image, { target: 0, layer: 'cx', concept: 0 }),
      'unknown-layer',
      /c1, c2/,
    );
    await expectCrpError(
      () => decompose(crp, image, { target: 0, layer: 'c2', concept: 0, depth: 0 }),
      'invalid-argument',
      /depth/,
    );
    decompose(crp, image, { target: 1, layer: 'd1', concept: 0, depth: 2 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++)
      decompose(crp, image, { target: 1, layer: 'd1', concept: i, depth: 2, width: 2, chunkSize: 3 });
    expect(tf.memory().numTensors).toBe(before);
  });
});
