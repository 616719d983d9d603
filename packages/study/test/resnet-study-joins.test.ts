/**
 * The study on a ResNet whose layers include additions (`crp study --layers ... layer2.0.add`): the decomposition
 * atlas decomposes each addition into both branches (the block's last conv and its shortcut: the downsample or the
 * previous block's addition), and the report names those sub-concepts layer:channel, the top-k of each branch.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '@crp/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runResNetStudy, type StudyRun, slimResNet } from './resnet-study-setup.js';

useBackend('wasm');

const JOINS = {
  'layer1.1.add': ['layer1.0.add', 'layer1.1.conv2'],
  'layer2.0.add': ['layer2.0.conv2', 'layer2.0.downsample.0'],
};

let run: StudyRun;
beforeAll(async () => {
  run = await runResNetStudy(slimResNet('basic', 'pth'), {
    layers: ['conv1', 'layer1.1.add', 'layer2.0.conv1', 'layer2.0.add'],
    fineTune: 0,
    pruneLayers: ['layer2.0.conv1'],
    referenceLayers: ['layer2.0.conv1'],
  });
});
afterAll(async () => {
  await run?.cleanup();
});

it('decomposes the additions it is given into both branches, conserving, and names them in the report', async () => {
  const dec = run.result.decomposition;
  // the stem conv has only the input below it; the conv reads the previous block's addition
  expect(dec.layerOrder).toEqual(['layer1.1.add', 'layer2.0.conv1', 'layer2.0.add']);
  expect(dec.layers['layer2.0.conv1']!.below).toEqual(['layer1.1.add']);
  for (const [add, branches] of Object.entries(JOINS)) {
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
