/**
 * Removing channels of a residual stream physically. A mask on an addition (`layer1.0.add`) is a channel of the
 * stream of its stage: zeroed in every layer that writes to the stream (the stem's conv1 or the stage's first
 * downsample, each block's last conv, their batch norms), so every layer that reads the stream (the blocks' conv1,
 * the next stage's conv1 and downsample, fc after the pool) reads zero there, and the export removes the channel
 * from all of them. The model: torchvision's ResNet(BasicBlock, [2, 1], num_classes=3), seeded formula weights.
 */
import { graphFromLayersModel } from '@crp/lrp';
import {
  encodeTorchStateDict,
  parseStateDict,
  type StateDict,
  torchResNetFromStateDict,
  torchResNetShapes,
  torchStateDictOf,
} from '@crp/models';
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
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-5 * scale);
}

const kernel = (m: tfl.LayersModel, layer: string) => m.getLayer(layer).getWeights()[0]!.shape;

describe('removing channels of a residual stream', () => {
  let model: tfl.LayersModel;
  let x: tf.Tensor;
  beforeAll(() => {
    const shapes = torchResNetShapes({ block: 'basic', layers: [2, 1], classes: 3 });
    model = torchResNetFromStateDict(formulaStateDict(shapes, 11) as StateDict, { inputSize: 32 });
    x = tf.tidy(() =>
      tf.transpose(tf.tensor4d(formulaInput([2, 3, 32, 32], 6), [2, 3, 32, 32]), [0, 2, 3, 1]),
    );
  });
  afterAll(() => {
    model.dispose();
    x.dispose();
  });

  it('a stream is the sums joined by identity shortcuts; its writers are the stem or downsample and each last conv', () => {
    const graph = graphFromLayersModel(model);
    try {
      expect(streamSums(graph, 'layer1.0.add')).toEqual(['layer1.0.add', 'layer1.1.add']);
      expect(streamSums(graph, 'layer1.1.add')).toEqual(['layer1.0.add', 'layer1.1.add']);
      expect(streamSums(graph, 'layer2.0.add')).toEqual(['layer2.0.add']);
      for (const sum of ['layer1.0.add', 'layer1.1.add']) {
        expect(sumSources(graph, sum).sort()).toEqual(['conv1', 'layer1.0.conv2', 'layer1.1.conv2']);
      }
      expect(sumSources(graph, 'layer2.0.add').sort()).toEqual(['layer2.0.conv2', 'layer2.0.downsample.0']);
    } finally {
      graph.dispose();
    }
    expect(removableLayers(model)).toEqual([
      'layer1.0.conv1',
      'layer1.0.add',
      'layer1.1.conv1',
      'layer1.1.add',
      'layer2.0.conv1',
      'layer2.0.add',
    ]);
  });

  it('a mask on the first sum of a stream zeroes the channel after every block of the stage', async () => {
    const masked = await MaskedModel.create(model, ChannelMask.of({ 'layer1.0.add': [2, 7] }));
    const probe = ['maxpool', 'layer1.0.relu', 'layer1.1.relu'];
    const outputs = tfl.model({
      inputs: masked.model.inputs,
      outputs: probe.map((l) => masked.model.getLayer(l).output as tfl.SymbolicTensor),
    });
    const ys = outputs.predict(x) as tf.Tensor[];
    for (const [k, y] of ys.entries()) {
      const v = y.dataSync();
      let nonzero = 0;
      for (let i = 0; i < v.length; i++) {
        if (i % 64 === 2 || i % 64 === 7) expect(v[i], `${probe[k]} at ${i}`).toBe(0);
        else if (v[i] !== 0) nonzero++;
      }
      expect(nonzero).toBeGreaterThan(0);
    }
    tf.dispose(ys);
    masked.dispose();
  });

  it('exports the model without the stream channels: the masked model’s logits, parameters as counted by hand', async () => {
    const mask = ChannelMask.of({ 'layer1.0.add': [2, 7], 'layer2.0.add': [5] });
    const masked = await MaskedModel.create(model, mask);
    const before = tf.memory().numTensors;
    const pruned = await exportPruned(model, mask);
    // writers lose outputs, readers inputs; the downsample does both (it reads stream 1 and writes stream 2)
    expect(kernel(pruned, 'conv1')).toEqual([7, 7, 3, 62]);
    expect(pruned.getLayer('bn1').getWeights()[0]!.shape).toEqual([62]);
    expect(kernel(pruned, 'layer1.0.conv1')).toEqual([3, 3, 62, 64]);
    expect(kernel(pruned, 'layer1.0.conv2')).toEqual([3, 3, 64, 62]);
    expect(kernel(pruned, 'layer1.1.conv1')).toEqual([3, 3, 62, 64]);
    expect(kernel(pruned, 'layer1.1.conv2')).toEqual([3, 3, 64, 62]);
    expect(pruned.getLayer('layer1.1.bn2').getWeights()[0]!.shape).toEqual([62]);
    expect(kernel(pruned, 'layer2.0.conv1')).toEqual([3, 3, 62, 128]);
    expect(kernel(pruned, 'layer2.0.conv2')).toEqual([3, 3, 128, 127]);
    expect(kernel(pruned, 'layer2.0.downsample.0')).toEqual([1, 1, 62, 127]);
    expect(pruned.getLayer('layer2.0.downsample.1').getWeights()[0]!.shape).toEqual([127]);
    expect(kernel(pruned, 'fc')).toEqual([127, 3]);
    expectClose(predict(pruned, x), predict(masked.model, x));

    // by hand (convs have no bias; a batch norm has 4 numbers per channel; fc a bias per class):
    // stream 1 loses 2 channels: conv1 7*7*3*2 = 294, bn1 4*2 = 8, each block's conv2 3*3*64*2 = 1152 and bn2 8
    // (twice), each block's conv1 3*3*2*64 = 1152 (twice), layer2.0.conv1 3*3*2*128 = 2304 -> 7230;
    // stream 2 loses 1: layer2.0.conv2 3*3*128 = 1152, bn2 4, downsample.1 4, fc 3 rows;
    // the downsample goes from 64*128 = 8192 to 62*127 = 7874: 318
    const removed = 294 + 8 + 2 * (1152 + 8) + 2 * 1152 + 2304 + (1152 + 4 + 4 + 3) + (8192 - 7874);
    expect(removed).toBe(8711);
    expect(model.countParams() - pruned.countParams()).toBe(removed);
    const cost = compareCost(model, mask);
    expect(cost.before.params - cost.after.params).toBe(removed);
    expect(cost.after.params).toBe(pruned.countParams());

    // a torchvision state dict with the pruned widths, read back by the ResNet importer (widths from the shapes)
    const sd = parseStateDict(encodeTorchStateDict(torchStateDictOf(pruned)));
    expect(sd.entry('conv1.weight').shape).toEqual([62, 3, 7, 7]);
    expect(sd.entry('layer2.0.downsample.0.weight').shape).toEqual([127, 62, 1, 1]);
    expect(sd.entry('fc.weight').shape).toEqual([3, 127]);
    const back = torchResNetFromStateDict(sd, { inputSize: 32 });
    expectClose(predict(back, x), predict(masked.model, x));
    back.dispose();
    pruned.dispose();
    expect(tf.memory().numTensors).toBe(before);
    masked.dispose();
  });

  it('joins masks on two sums of one stream (never emptying it); refuses a stream together with one of its writers', async () => {
    const mask = ChannelMask.of({ 'layer1.0.add': [1], 'layer1.1.add': [4] });
    const masked = await MaskedModel.create(model, mask);
    const pruned = await exportPruned(model, mask);
    expect(kernel(pruned, 'layer1.1.conv2')).toEqual([3, 3, 64, 62]);
    expectClose(predict(pruned, x), predict(masked.model, x));
    pruned.dispose();
    masked.dispose();
    const halves = Array.from({ length: 32 }, (_, i) => i);
    await expectCrpError(
      async () =>
        MaskedModel.create(
          model,
          ChannelMask.of({ 'layer1.0.add': halves, 'layer1.1.add': halves.map((c) => c + 32) }),
        ),
      'invalid-argument',
      "the mask prunes all 64 channels of the residual stream of 'layer1.0.add' (its sums' masks together)",
    );
    await expectCrpError(
      () => exportPruned(model, ChannelMask.of({ 'layer1.0.add': [1], conv1: [3] })),
      'unsupported-model',
      "cannot remove channels of 'conv1' physically: they reach 'layer1.0.add' (Add)",
    );
  });

  it('exports a bottleneck ResNet’s stream (its writers are the downsample and conv3)', async () => {
    const shapes = torchResNetShapes({ block: 'bottleneck', layers: [1, 1], classes: 3 });
    const bottleneck = torchResNetFromStateDict(formulaStateDict(shapes, 12) as StateDict, { inputSize: 32 });
    const mask = ChannelMask.of({ 'layer1.0.add': [0, 255] });
    const graph = graphFromLayersModel(bottleneck);
    expect(sumSources(graph, 'layer1.0.add').sort()).toEqual(['layer1.0.conv3', 'layer1.0.downsample.0']);
    graph.dispose();
    const masked = await MaskedModel.create(bottleneck, mask);
    const pruned = await exportPruned(bottleneck, mask);
    expect(kernel(pruned, 'layer1.0.conv3')).toEqual([1, 1, 64, 254]);
    expect(kernel(pruned, 'layer1.0.downsample.0')).toEqual([1, 1, 64, 254]);
    expect(kernel(pruned, 'layer2.0.conv1')).toEqual([1, 1, 254, 128]);
    expect(kernel(pruned, 'layer2.0.downsample.0')).toEqual([1, 1, 254, 512]);
    expect(kernel(pruned, 'conv1')).toEqual([7, 7, 3, 64]); // the stem is not in layer1's stream here
    expectClose(predict(pruned, x), predict(masked.model, x));
    pruned.dispose();
    masked.dispose();
    bottleneck.dispose();
  });
});
