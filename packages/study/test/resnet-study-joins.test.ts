/**
 * The study on a ResNet with its default layers (`crp study --model resnet.pth` without `--layers`): besides every
 * conv, each stage's output, the last addition of torchvision's `layer1` ... `layer4`, is a concept layer, and the
 * decomposition atlas splits each of its concepts into the last block's residual branch (conv2) and its shortcut (the
 * previous block's addition, or the stage's downsample): zennit's Sum rule conserves, so where both branches are
 * listed they add up to the parent. The report names those sub-concepts layer:channel, the top-k of each branch.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '@crp/testing';
import { expect, it } from 'vitest';
import { BASIC_LAYERS, BASIC_STAGE_OUTPUTS, slimResNet, useResNetStudy } from './resnet-study-setup.js';

useBackend('wasm');

const run = useResNetStudy(slimResNet('basic', 'pth'), {
  fineTune: 0,
  pruneLayers: ['layer2.0.conv1'],
  referenceLayers: ['layer2.0.conv1'],
});

it('decomposes each stage’s output into both branches by default, conserving, and names them in the report', async () => {
  const dec = run.result.decomposition;
  expect(run.result.options.layers).toEqual(BASIC_LAYERS);
  // every layer but the stem conv, which has only the input below it; a block's conv1 reads the previous addition
  expect(dec.layerOrder).toEqual(BASIC_LAYERS.slice(1));
  expect(dec.layers['layer2.0.conv1']!.below).toEqual(['layer1.1.add']);
  for (const [add, branches] of Object.entries(BASIC_STAGE_OUTPUTS)) {
    const layer = dec.layers[add]!;
    expect([...layer.below].sort()).toEqual(branches);
    expect(layer.concepts).toHaveLength(3);
    let both = 0;
    for (const parent of layer.concepts) {
      // an addition is element-wise: channel c of the sum has children at channel c of each branch only
      for (const c of parent.children) expect(c.concept).toBe(parent.concept);
      expect(parent.children.every((c) => branches.includes(c.layer))).toBe(true);
      // a branch's child is listed when a sample votes for it: its relevance is evidence for the class (a branch
      // whose addend works against the sum in every sample has none); where both are listed, zennit's Sum rule
      // conserves: together they are the parent
      if (new Set(parent.children.map((c) => c.layer)).size < 2) continue;
      both += 1;
      const total = parent.children.reduce((s, c) => s + c.meanRelevance, 0);
      expect(Math.abs(parent.meanRelevance)).toBeGreaterThan(1e-6);
      expect(Math.abs(total - parent.meanRelevance)).toBeLessThan(1e-4 * Math.abs(parent.meanRelevance));
    }
    expect(both).toBeGreaterThan(0);
  }
  const report = await readFile(join(run.out, 'report.html'), 'utf8');
  const top = dec.layers['layer2.0.add']!.concepts[0]!.concept;
  expect(report).toContain(`${dec.layers['layer2.0.add']!.below.join(', ')}`);
  expect(report).toContain(`layer2.0.downsample.0:${top} (`);
  expect(report).toContain(`layer2.0.conv2:${top} (`);
  expect(report).toContain('An addition or concatenation has one layer below per branch');
});
