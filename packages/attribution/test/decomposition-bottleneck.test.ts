/**
 * Conservation of the two-branch decomposition under epsilon_plus_flat on the slim bottleneck ResNet fixture of
 * @crp/models: a conv reading a residual sum has that sum below it; each of the sum's concepts goes to the same
 * channel of its two branches (the block's conv3 and the previous sum, or the downsample in a stage's first
 * block), which add up to it (zennit's Sum rule splits in proportion to the addends).
 */
import { join } from 'node:path';
import { CondAttribution, disposeCondResult } from '@crp/core';
import { readTorchResNet } from '@crp/models/node';
import { formulaInput } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { decompose, layersBelow } from '../src/index.js';
import { useWasm } from './helpers.js';

useWasm();

it('a bottleneck sum splits into conv3 and the downsample or the previous sum, conserving each concept', async () => {
  const file = join(
    import.meta.dirname,
    '..',
    '..',
    'models',
    'test',
    'fixtures',
    'pth',
    'slim-resnet-bottleneck.pth',
  );
  const resnet = await readTorchResNet(file, { inputSize: 32 });
  const rc = new CondAttribution(resnet, { composite: 'epsilon_plus_flat' });
  const x = tf.tidy(() =>
    tf.transpose(tf.tensor4d(formulaInput([1, 3, 32, 32], 33), [1, 3, 32, 32]), [0, 2, 3, 1]),
  );
  try {
    const g = rc.attributor.graph;
    expect(layersBelow(g, 'layer2.0.conv1')).toEqual(['layer1.0.add']);
    expect(layersBelow(g, 'layer1.0.add')).toEqual(['layer1.0.downsample.0', 'layer1.0.conv3']);
    expect(layersBelow(g, 'layer3.0.conv1')).toEqual(['layer2.1.add']);
    expect(layersBelow(g, 'layer2.1.add')).toEqual(['layer2.0.add', 'layer2.1.conv3']);
    const logits = tf.tidy(() => (resnet.predict(x) as tf.Tensor).arraySync() as number[][])[0]!;
    const y = logits.indexOf(Math.max(...logits));
    for (const [root, sum] of [
      ['layer2.0.conv1', 'layer1.0.add'],
      ['layer3.0.conv1', 'layer2.1.add'],
    ] as const) {
      // the root's most relevant concept for the predicted class
      const r = rc.run(x, [{ y: [y] }], { recordLayers: [root], heatmap: false });
      const sums = tf.tidy(() => tf.sum(r.relevances[root]!, [0, 1, 2]).arraySync() as number[]);
      disposeCondResult(r);
      const concept = sums.indexOf(Math.max(...sums));
      const graph = decompose(rc, x, { target: y, layer: root, concept, depth: 2, width: [3, 1000] });
      const level1 = graph.nodes.filter((n) => n.depth === 1);
      expect(level1.map((n) => n.layer)).toEqual([sum, sum, sum]);
      const below = layersBelow(g, sum);
      for (const a of level1) {
        expect(Math.abs(a.relevance)).toBeGreaterThan(1e-6);
        const kids = graph.edges
          .filter((e) => e.from === a.id)
          .map((e) => graph.nodes.find((n) => n.id === e.to)!);
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
