/**
 * The explorer's decomposition of a residual block (a ResNet's addition) in Node: the slim torchvision ResNet
 * exported by torch.onnx (packages/models/test/fixtures/onnx), opened as the page opens it. Its additions are concept
 * layers, an addition's sub-concepts come from both branches under PyTorch's names, and their heatmaps are the
 * parent's heatmap split: LRP is linear in the relevance, so the heatmaps of every part of the parent's relevance
 * add up to the parent's own conditional heatmap. A sub-concept decomposes in turn (the page's click-through), a
 * plain conv as well as a join reached through a path, with the same conservation at the deeper level.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formulaInput } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Explainer } from '../src/explainer.js';
import { loadModelFromFiles } from '../src/load-model.js';

const ONNX = join(import.meta.dirname, '..', '..', '..', 'packages', 'models', 'test', 'fixtures', 'onnx');

let model: tfl.LayersModel;
let e: Explainer;
let x: tf.Tensor4D;
let y: number;

beforeAll(async () => {
  await tf.setBackend('cpu');
  const name = 'slim-resnet-basic.onnx';
  ({ model } = await loadModelFromFiles([new File([readFileSync(join(ONNX, name))], name)]));
  e = new Explainer(model, 'epsilon_plus_flat', { low: -3, high: 3 });
  x = tf.tidy(() =>
    tf.transpose(tf.tensor4d(formulaInput([1, 3, 32, 32], 32), [1, 3, 32, 32]), [0, 2, 3, 1]),
  );
  const logits = tf.tidy(() => (model.predict(x) as tf.Tensor).arraySync() as number[][])[0]!;
  y = logits.indexOf(Math.max(...logits));
});
afterAll(() => {
  e.dispose();
  model.dispose();
  x.dispose();
});

/** The top concept of `layer` for class y, as the page ranks them. */
function topConcept(layer: string): number {
  return e.explainClass(x, y, layer).concepts[0]!.channel;
}

function sum(a: Float32Array): number {
  return a.reduce((s, v) => s + v, 0);
}

describe('a ResNet block in the explorer', () => {
  it('lists the additions among the concept layers, in graph order, with PyTorch names', () => {
    const names = e.summary.layers.map((l) => l.name);
    for (const add of ['layer1.0.add', 'layer1.1.add', 'layer2.0.add', 'layer4.0.add'])
      expect(names).toContain(add);
    expect(e.summary.layers.find((l) => l.name === 'layer2.0.add')).toMatchObject({
      kind: 'add',
      channels: 12,
    });
    // a block's addition comes after the convs it adds
    expect(names.indexOf('layer2.0.add')).toBeGreaterThan(names.indexOf('layer2.0.conv2'));
    expect(names.indexOf('layer2.0.add')).toBeGreaterThan(names.indexOf('layer2.0.downsample.0'));
    expect([...e.conceptLayersBelow('layer2.0.add')].sort()).toEqual([
      'layer2.0.conv2',
      'layer2.0.downsample.0',
    ]);
    expect([...e.conceptLayersBelow('layer1.1.add')].sort()).toEqual(['layer1.0.add', 'layer1.1.conv2']);
    expect(e.conceptLayersBelow('conv1')).toEqual([]);
  });

  for (const add of ['layer2.0.add', 'layer1.1.add']) {
    it(`${add}: sub-concepts in both branches whose heatmaps add up to the concept's`, () => {
      const c = topConcept(add);
      const subs = e.subConcepts(x, y, [{ layer: add, concept: c }], 3);
      // element-wise: channel c of each branch (whatever its sign), and (zennit's Sum rule) together the concept
      expect(subs.map((n) => n.layer).sort()).toEqual([...e.conceptLayersBelow(add)].sort());
      for (const n of subs) expect(n.concept).toBe(c);
      expect(subs[0]!.share + subs[1]!.share).toBeCloseTo(1, 4);

      const before = tf.memory().numTensors;
      const maps = e.subConceptHeatmaps(x, y, [{ layer: add, concept: c }], subs);
      expect(tf.memory().numTensors).toBe(before);
      const [parent] = e.conditionalHeatmaps(x, [{ y: [y], [add]: [c] }]);
      // linearity: the two parts' heatmaps are the concept's heatmap, pixel by pixel
      const whole = parent!.heatmap.data;
      const scale = Math.max(...whole.map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      let gap = 0;
      for (let p = 0; p < whole.length; p++) {
        gap = Math.max(gap, Math.abs(maps[0]!.heatmap.data[p]! + maps[1]!.heatmap.data[p]! - whole[p]!));
      }
      expect(gap).toBeLessThan(1e-4 * scale);
      // the branch of a conv: the chain condition gives the same map
      const conv = subs.findIndex((n) => n.layer.endsWith('conv2'));
      const [chain] = e.conditionalHeatmaps(x, [{ y: [y], [add]: [c], [subs[conv]!.layer]: [c] }]);
      const convScale = Math.max(...chain!.heatmap.data.map(Math.abs));
      for (let p = 0; p < whole.length; p++) {
        expect(Math.abs(maps[conv]!.heatmap.data[p]! - chain!.heatmap.data[p]!)).toBeLessThan(
          1e-4 * convScale,
        );
      }
      if (add === 'layer1.1.add') {
        // an identity shortcut: the chain { add: c, layer1.0.add: c } would also count what reaches layer1.0.add
        // through the block's convs; the carried map is the shortcut's part alone
        const shortcut = subs.findIndex((n) => n.layer === 'layer1.0.add');
        const [around] = e.conditionalHeatmaps(x, [{ y: [y], [add]: [c], 'layer1.0.add': [c] }]);
        expect(Math.abs(sum(around!.heatmap.data) - sum(maps[shortcut]!.heatmap.data))).toBeGreaterThan(
          1e-3 * Math.abs(sum(whole)),
        );
      }
    });
  }

  /** Largest |sum of `parts` - whole| over the pixels, relative to the largest |whole|. */
  function splitGap(parts: readonly Float32Array[], whole: Float32Array): number {
    const scale = Math.max(...whole.map(Math.abs));
    expect(scale).toBeGreaterThan(0);
    let gap = 0;
    for (let p = 0; p < whole.length; p++) {
      gap = Math.max(gap, Math.abs(parts.reduce((t, m) => t + m[p]!, 0) - whole[p]!));
    }
    return gap / scale;
  }

  it('a sub-concept decomposes in turn: a conv, then a join below it, conserving at the deeper level', () => {
    const c = topConcept('layer2.0.add');
    const top = { layer: 'layer2.0.add', concept: c };
    // level 1 -> 2: the shortcut's conv (a plain layer), whose layer below is the previous stage's output
    const down = { layer: 'layer2.0.downsample.0', concept: c };
    const level2 = e.subConcepts(x, y, [top, down], 3);
    expect(level2.length).toBeGreaterThan(0);
    for (const n of level2) expect(n.layer).toBe('layer1.1.add');
    // the heatmap of the shortcut's conv through the join is what level 1 showed for it
    const [shown] = e.subConceptHeatmaps(x, y, [top], [down]);
    const own = e.pathHeatmap(x, y, [top, down]);
    expect(splitGap([own.heatmap.data], shown!.heatmap.data)).toBeLessThan(1e-6);
    // a conv reached through one branch only feeds its addition: the chain condition gives the same maps
    const maps2 = e.subConceptHeatmaps(x, y, [top, down], level2);
    const chain = e.conditionalHeatmaps(
      x,
      level2.map((n) => ({ y: [y], [top.layer]: [c], [down.layer]: [c], [n.layer]: [n.concept] })),
    );
    maps2.forEach((m, i) => {
      expect(splitGap([m.heatmap.data], chain[i]!.heatmap.data)).toBeLessThan(1e-4);
    });

    // level 2 -> 3: the join, reached through the path; its branches split exactly what reached it
    const join = { layer: 'layer1.1.add', concept: level2[0]!.concept };
    const path = [top, down, join];
    const before = tf.memory().numTensors;
    const level3 = e.subConcepts(x, y, path, 3);
    const maps3 = e.subConceptHeatmaps(x, y, path, level3);
    const whole = e.pathHeatmap(x, y, path);
    expect(tf.memory().numTensors).toBe(before);
    expect(level3.map((n) => n.layer).sort()).toEqual(['layer1.0.add', 'layer1.1.conv2']);
    for (const n of level3) expect(n.concept).toBe(join.concept);
    expect(level3[0]!.share + level3[1]!.share).toBeCloseTo(1, 4);
    // the join's own heatmap is the one level 2 showed for it
    expect(splitGap([whole.heatmap.data], maps2[0]!.heatmap.data)).toBeLessThan(1e-6);
    expect(
      splitGap(
        maps3.map((m) => m.heatmap.data),
        whole.heatmap.data,
      ),
    ).toBeLessThan(1e-4);
    // level 3's shares are of the join's relevance through the path, which its heatmap carries to the input
    const sharesTimesParent = level3.map((n) => n.relevance / n.share);
    expect(sharesTimesParent[0]!).toBeCloseTo(sharesTimesParent[1]!, 5);
    expect(sum(whole.heatmap.data)).not.toBe(0);
  });
});
