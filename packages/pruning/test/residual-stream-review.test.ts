/**
 * Residual-stream removal on cases the stream tests do not build: a stage of three blocks (the stem's stream),
 * a second stage of two blocks whose stream starts at a downsample, masks on both streams at once together with
 * inner convs of the same blocks, and a mask on the middle sum of a stream. The model: a slim torchvision
 * ResNet(BasicBlock, [3, 2]) (stem 8, stage widths 6 / 10, stage channels 8 / 12), seeded formula weights.
 */
import { graphFromLayersModel } from '@crp/lrp';
import { type StateDict, torchResNetFromStateDict, torchResNetShapes } from '@crp/models';
import { formulaInput, formulaStateDict } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChannelMask,
  compareCost,
  exportPruned,
  MaskedModel,
  removableLayers,
  streamSums,
  sumSources,
} from '../src/index.js';
import { expectCrpError, useBackend } from './helpers.js';

useBackend('wasm');

function predict(model: tfl.LayersModel, x: tf.Tensor): Float32Array {
  const y = model.predict(x) as tf.Tensor;
  const v = y.dataSync() as Float32Array;
  y.dispose();
  return v;
}

function expectClose(got: Float32Array, want: Float32Array): void {
  expect(got.length).toBe(want.length);
  const scale = Math.max(...Array.from(want, Math.abs));
  expect(scale).toBeGreaterThan(0);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-5 * scale);
}

const kernel = (m: tfl.LayersModel, layer: string) => m.getLayer(layer).getWeights()[0]!.shape;

describe('residual streams of a three-block stage and a downsampled stage', () => {
  let model: tfl.LayersModel;
  let x: tf.Tensor;
  beforeAll(() => {
    const shapes = torchResNetShapes({
      block: 'basic',
      layers: [3, 2],
      classes: 3,
      stemChannels: 8,
      stageWidths: [6, 10],
      stageChannels: [8, 12],
    });
    model = torchResNetFromStateDict(formulaStateDict(shapes, 21) as StateDict, { inputSize: 16 });
    x = tf.tidy(() =>
      tf.transpose(tf.tensor4d(formulaInput([2, 3, 16, 16], 4), [2, 3, 16, 16]), [0, 2, 3, 1]),
    );
  });
  afterAll(() => {
    model.dispose();
    x.dispose();
  });

  it('the stem stream holds all three sums of layer1; layer2’s starts at its downsample', () => {
    const graph = graphFromLayersModel(model);
    try {
      const stage1 = ['layer1.0.add', 'layer1.1.add', 'layer1.2.add'];
      for (const s of stage1) {
        expect(streamSums(graph, s)).toEqual(stage1);
        expect(sumSources(graph, s).sort()).toEqual([
          'conv1',
          'layer1.0.conv2',
          'layer1.1.conv2',
          'layer1.2.conv2',
        ]);
      }
      for (const s of ['layer2.0.add', 'layer2.1.add']) {
        expect(streamSums(graph, s)).toEqual(['layer2.0.add', 'layer2.1.add']);
        expect(sumSources(graph, s).sort()).toEqual([
          'layer2.0.conv2',
          'layer2.0.downsample.0',
          'layer2.1.conv2',
        ]);
      }
    } finally {
      graph.dispose();
    }
    expect(removableLayers(model)).toEqual([
      'layer1.0.conv1',
      'layer1.0.add',
      'layer1.1.conv1',
      'layer1.1.add',
      'layer1.2.conv1',
      'layer1.2.add',
      'layer2.0.conv1',
      'layer2.0.add',
      'layer2.1.conv1',
      'layer2.1.add',
    ]);
  });

  it('a mask on the middle sum zeroes the channel before the first block and after each of the three', async () => {
    const masked = await MaskedModel.create(model, ChannelMask.of({ 'layer1.1.add': [5] }));
    const probe = ['maxpool', 'layer1.0.relu', 'layer1.1.relu', 'layer1.2.relu'];
    const outputs = tfl.model({
      inputs: masked.model.inputs,
      outputs: probe.map((l) => masked.model.getLayer(l).output as tfl.SymbolicTensor),
    });
    const ys = outputs.predict(x) as tf.Tensor[];
    for (const [k, y] of ys.entries()) {
      const v = y.dataSync();
      let nonzero = 0;
      for (let i = 0; i < v.length; i++) {
        if (i % 8 === 5) expect(v[i], `${probe[k]} at ${i}`).toBe(0);
        else if (v[i] !== 0) nonzero++;
      }
      expect(nonzero).toBeGreaterThan(0);
    }
    tf.dispose(ys);
    masked.dispose();
  });

  it('exports masks on both streams and inner convs of the same blocks: the masked model’s logits, cost = model', async () => {
    const mask = ChannelMask.of({
      'layer1.2.add': [3],
      'layer1.0.add': [0],
      'layer2.1.add': [0, 11],
      'layer1.1.conv1': [2],
      'layer2.0.conv1': [4, 9],
      'layer2.1.conv1': [1],
    });
    const masked = await MaskedModel.create(model, mask);
    const before = tf.memory().numTensors;
    const pruned = await exportPruned(model, mask);
    // stream 1 loses 2 of 8 channels: the stem, each block's conv2 (outputs), each block's conv1, layer2.0's
    // conv1 and downsample (inputs)
    expect(kernel(pruned, 'conv1')).toEqual([7, 7, 3, 6]);
    for (const b of ['layer1.0', 'layer1.1', 'layer1.2']) {
      expect(kernel(pruned, `${b}.conv2`).at(-1)).toBe(6);
      expect(pruned.getLayer(`${b}.bn2`).getWeights()[0]!.shape).toEqual([6]);
    }
    expect(kernel(pruned, 'layer1.0.conv1')).toEqual([3, 3, 6, 6]);
    expect(kernel(pruned, 'layer1.0.conv2')).toEqual([3, 3, 6, 6]);
    // an inner conv masked too: it loses its own output and its stream input
    expect(kernel(pruned, 'layer1.1.conv1')).toEqual([3, 3, 6, 5]);
    expect(kernel(pruned, 'layer1.1.conv2')).toEqual([3, 3, 5, 6]);
    expect(kernel(pruned, 'layer1.2.conv1')).toEqual([3, 3, 6, 6]);
    // stream 2 loses 2 of 12: its downsample reads stream 1 and writes stream 2
    expect(kernel(pruned, 'layer2.0.downsample.0')).toEqual([1, 1, 6, 10]);
    expect(kernel(pruned, 'layer2.0.conv1')).toEqual([3, 3, 6, 8]);
    expect(kernel(pruned, 'layer2.0.conv2')).toEqual([3, 3, 8, 10]);
    expect(kernel(pruned, 'layer2.1.conv1')).toEqual([3, 3, 10, 9]);
    expect(kernel(pruned, 'layer2.1.conv2')).toEqual([3, 3, 9, 10]);
    expect(kernel(pruned, 'fc')).toEqual([10, 3]);
    expectClose(predict(pruned, x), predict(masked.model, x));
    expect(compareCost(model, mask).after.params).toBe(pruned.countParams());
    pruned.dispose();
    expect(tf.memory().numTensors).toBe(before);
    masked.dispose();
  });

  it('refuses emptying the three-block stream through its first and last sums', async () => {
    await expectCrpError(
      async () =>
        MaskedModel.create(
          model,
          ChannelMask.of({ 'layer1.0.add': [0, 1, 2, 3], 'layer1.2.add': [4, 5, 6, 7] }),
        ),
      'invalid-argument',
      "the mask prunes all 8 channels of the residual stream of 'layer1.0.add'",
    );
  });
});
