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
  torchResNetFromStateDict,
  torchStateDictOf,
} from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  ChannelMask,
  compareCost,
  exportPruned,
  MaskedModel,
  removableLayers,
  streamSums,
  sumSources,
} from '../src/index.js';
import {
  expectChannelsZeroed,
  expectCrpError,
  expectSameLogits,
  formulaResNet,
  kernelShape,
  useBackend,
  useFormulaResNet,
} from './helpers.js';

useBackend('wasm');

describe('removing channels of a residual stream', () => {
  const net = useFormulaResNet({ block: 'basic', layers: [2, 1], classes: 3 }, 11, 6);

  it('a stream is the sums joined by identity shortcuts; its writers are the stem or downsample and each last conv', () => {
    const graph = graphFromLayersModel(net.model);
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
    expect(removableLayers(net.model)).toEqual([
      'layer1.0.conv1',
      'layer1.0.add',
      'layer1.1.conv1',
      'layer1.1.add',
      'layer2.0.conv1',
      'layer2.0.add',
    ]);
  });

  it('a mask on the first sum of a stream zeroes the channel after every block of the stage', async () => {
    const masked = await MaskedModel.create(net.model, ChannelMask.of({ 'layer1.0.add': [2, 7] }));
    expectChannelsZeroed(masked.model, net.x, ['maxpool', 'layer1.0.relu', 'layer1.1.relu'], [2, 7], 64);
    masked.dispose();
  });

  it('exports the model without the stream channels: the masked model’s logits, parameters as counted by hand', async () => {
    const mask = ChannelMask.of({ 'layer1.0.add': [2, 7], 'layer2.0.add': [5] });
    const masked = await MaskedModel.create(net.model, mask);
    const before = tf.memory().numTensors;
    const pruned = await exportPruned(net.model, mask);
    // writers lose outputs, readers inputs; the downsample does both (it reads stream 1 and writes stream 2)
    expect(kernelShape(pruned, 'conv1')).toEqual([7, 7, 3, 62]);
    expect(pruned.getLayer('bn1').getWeights()[0]!.shape).toEqual([62]);
    expect(kernelShape(pruned, 'layer1.0.conv1')).toEqual([3, 3, 62, 64]);
    expect(kernelShape(pruned, 'layer1.0.conv2')).toEqual([3, 3, 64, 62]);
    expect(kernelShape(pruned, 'layer1.1.conv1')).toEqual([3, 3, 62, 64]);
    expect(kernelShape(pruned, 'layer1.1.conv2')).toEqual([3, 3, 64, 62]);
    expect(pruned.getLayer('layer1.1.bn2').getWeights()[0]!.shape).toEqual([62]);
    expect(kernelShape(pruned, 'layer2.0.conv1')).toEqual([3, 3, 62, 128]);
    expect(kernelShape(pruned, 'layer2.0.conv2')).toEqual([3, 3, 128, 127]);
    expect(kernelShape(pruned, 'layer2.0.downsample.0')).toEqual([1, 1, 62, 127]);
    expect(pruned.getLayer('layer2.0.downsample.1').getWeights()[0]!.shape).toEqual([127]);
    expect(kernelShape(pruned, 'fc')).toEqual([127, 3]);
    expectSameLogits(pruned, masked.model, net.x);

    // by hand (convs have no bias; a batch norm has 4 numbers per channel; fc a bias per class):
    // stream 1 loses 2 channels: conv1 7*7*3*2 = 294, bn1 4*2 = 8, each block's conv2 3*3*64*2 = 1152 and bn2 8
    // (twice), each block's conv1 3*3*2*64 = 1152 (twice), layer2.0.conv1 3*3*2*128 = 2304 -> 7230;
    // stream 2 loses 1: layer2.0.conv2 3*3*128 = 1152, bn2 4, downsample.1 4, fc 3 rows;
    // the downsample goes from 64*128 = 8192 to 62*127 = 7874: 318
    const removed = 294 + 8 + 2 * (1152 + 8) + 2 * 1152 + 2304 + (1152 + 4 + 4 + 3) + (8192 - 7874);
    expect(removed).toBe(8711);
    expect(net.model.countParams() - pruned.countParams()).toBe(removed);
    const cost = compareCost(net.model, mask);
    expect(cost.before.params - cost.after.params).toBe(removed);
    expect(cost.after.params).toBe(pruned.countParams());

    // a torchvision state dict with the pruned widths, read back by the ResNet importer (widths from the shapes)
    const sd = parseStateDict(encodeTorchStateDict(torchStateDictOf(pruned)));
    expect(sd.entry('conv1.weight').shape).toEqual([62, 3, 7, 7]);
    expect(sd.entry('layer2.0.downsample.0.weight').shape).toEqual([127, 62, 1, 1]);
    expect(sd.entry('fc.weight').shape).toEqual([3, 127]);
    const back = torchResNetFromStateDict(sd, { inputSize: 32 });
    expectSameLogits(back, masked.model, net.x);
    back.dispose();
    pruned.dispose();
    expect(tf.memory().numTensors).toBe(before);
    masked.dispose();
  });

  it('joins masks on two sums of one stream (never emptying it); refuses a stream together with one of its writers', async () => {
    const mask = ChannelMask.of({ 'layer1.0.add': [1], 'layer1.1.add': [4] });
    const masked = await MaskedModel.create(net.model, mask);
    const pruned = await exportPruned(net.model, mask);
    expect(kernelShape(pruned, 'layer1.1.conv2')).toEqual([3, 3, 64, 62]);
    expectSameLogits(pruned, masked.model, net.x);
    pruned.dispose();
    masked.dispose();
    const halves = Array.from({ length: 32 }, (_, i) => i);
    await expectCrpError(
      async () =>
        MaskedModel.create(
          net.model,
          ChannelMask.of({ 'layer1.0.add': halves, 'layer1.1.add': halves.map((c) => c + 32) }),
        ),
      'invalid-argument',
      "the mask prunes all 64 channels of the residual stream of 'layer1.0.add' (its sums' masks together)",
    );
    await expectCrpError(
      () => exportPruned(net.model, ChannelMask.of({ 'layer1.0.add': [1], conv1: [3] })),
      'unsupported-model',
      "cannot remove channels of 'conv1' physically: they reach 'layer1.0.add' (Add)",
    );
  });

  it('exports a bottleneck ResNet’s stream (its writers are the downsample and conv3)', async () => {
    const bottleneck = formulaResNet({ block: 'bottleneck', layers: [1, 1], classes: 3 }, 12);
    const mask = ChannelMask.of({ 'layer1.0.add': [0, 255] });
    const graph = graphFromLayersModel(bottleneck);
    expect(sumSources(graph, 'layer1.0.add').sort()).toEqual(['layer1.0.conv3', 'layer1.0.downsample.0']);
    graph.dispose();
    const masked = await MaskedModel.create(bottleneck, mask);
    const pruned = await exportPruned(bottleneck, mask);
    expect(kernelShape(pruned, 'layer1.0.conv3')).toEqual([1, 1, 64, 254]);
    expect(kernelShape(pruned, 'layer1.0.downsample.0')).toEqual([1, 1, 64, 254]);
    expect(kernelShape(pruned, 'layer2.0.conv1')).toEqual([1, 1, 254, 128]);
    expect(kernelShape(pruned, 'layer2.0.downsample.0')).toEqual([1, 1, 254, 512]);
    expect(kernelShape(pruned, 'conv1')).toEqual([7, 7, 3, 64]); // the stem is not in layer1's stream here
    expectSameLogits(pruned, masked.model, net.x);
    pruned.dispose();
    masked.dispose();
    bottleneck.dispose();
  });
});
