/**
 * Conservation of the two-branch decomposition under epsilon_plus_flat on the slim bottleneck ResNet fixture of
 * @crp/models: a conv reading a residual sum has that sum below it; each of the sum's concepts goes to the same
 * channel of its two branches (the block's conv3 and the previous sum, or the downsample in a stage's first
 * block), which add up to it (zennit's Sum rule splits in proportion to the addends).
 */
import { CondAttribution } from '@crp/core';
import { formulaImage } from '@crp/testing/torch-weights';
import { expect, it } from 'vitest';
import { decompose, layersBelow } from '../src/index.js';
import { childrenOf, predictedClass, slimResNet, topConcept } from './fixtures/joins.js';
import { useWasm } from './helpers.js';

useWasm();

it('a bottleneck sum splits into conv3 and the downsample or the previous sum, conserving each concept', async () => {
  const resnet = await slimResNet('bottleneck');
  const rc = new CondAttribution(resnet, { composite: 'epsilon_plus_flat' });
  const x = formulaImage(1, 32, 33);
  try {
    const g = rc.attributor.graph;
    expect(layersBelow(g, 'layer2.0.conv1')).toEqual(['layer1.0.add']);
    expect(layersBelow(g, 'layer1.0.add')).toEqual(['layer1.0.downsample.0', 'layer1.0.conv3']);
    expect(layersBelow(g, 'layer3.0.conv1')).toEqual(['layer2.1.add']);
    expect(layersBelow(g, 'layer2.1.add')).toEqual(['layer2.0.add', 'layer2.1.conv3']);
    const y = predictedClass(resnet, x);
    for (const [root, sum] of [
      ['layer2.0.conv1', 'layer1.0.add'],
      ['layer3.0.conv1', 'layer2.1.add'],
    ] as const) {
      // the root's most relevant concept for the predicted class
      const { concept } = topConcept(rc, x, y, root);
      const graph = decompose(rc, x, { target: y, layer: root, concept, depth: 2, width: [3, 1000] });
      const level1 = graph.nodes.filter((n) => n.depth === 1);
      expect(level1.map((n) => n.layer)).toEqual([sum, sum, sum]);
      const below = layersBelow(g, sum);
      for (const a of level1) {
        expect(Math.abs(a.relevance)).toBeGreaterThan(1e-6);
        const kids = childrenOf(graph, a);
        expect([...new Set(kids.map((k) => k.layer))]).toEqual(below);
        // element-wise: only the same channel of each branch carries relevance; both add up to the sum's
        for (const k of kids.filter((k) => Math.abs(k.relevance) > 1e-9)) expect(k.concept).toBe(a.concept);
        const total = kids.reduce((s, k) => s + k.relevance, 0);
        expect(Math.abs(total - a.relevance)).toBeLessThan(1e-4 * Math.abs(a.relevance));
      }
    }
  } finally {
    x.dispose();
    rc.dispose();
    resnet.dispose();
  }
}, 60000);
