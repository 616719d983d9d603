/**
 * Residual-stream removal on cases the stream tests do not build: a stage of three blocks (the stem's stream),
 * a second stage of two blocks whose stream starts at a downsample, masks on both streams at once together with
 * inner convs of the same blocks, and a mask on the middle sum of a stream. The model: a slim torchvision
 * ResNet(BasicBlock, [3, 2]) (stem 8, stage widths 6 / 10, stage channels 8 / 12), seeded formula weights.
 */
import { graphFromLayersModel } from '@crp/lrp';
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
  kernelShape,
  useBackend,
  useFormulaResNet,
} from './helpers.js';

useBackend('wasm');

describe('residual streams of a three-block stage and a downsampled stage', () => {
  const net = useFormulaResNet(
    {
      block: 'basic',
      layers: [3, 2],
      classes: 3,
      stemChannels: 8,
      stageWidths: [6, 10],
      stageChannels: [8, 12],
    },
    21,
    4,
    16,
  );

  it('the stem stream holds all three sums of layer1; layer2’s starts at its downsample', () => {
    const graph = graphFromLayersModel(net.model);
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
    expect(removableLayers(net.model)).toEqual([
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
    const masked = await MaskedModel.create(net.model, ChannelMask.of({ 'layer1.1.add': [5] }));
    const probe = ['maxpool', 'layer1.0.relu', 'layer1.1.relu', 'layer1.2.relu'];
    expectChannelsZeroed(masked.model, net.x, probe, [5], 8);
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
    const masked = await MaskedModel.create(net.model, mask);
    const before = tf.memory().numTensors;
    const pruned = await exportPruned(net.model, mask);
    // stream 1 loses 2 of 8 channels: the stem, each block's conv2 (outputs), each block's conv1, layer2.0's
    // conv1 and downsample (inputs)
    expect(kernelShape(pruned, 'conv1')).toEqual([7, 7, 3, 6]);
    for (const b of ['layer1.0', 'layer1.1', 'layer1.2']) {
      expect(kernelShape(pruned, `${b}.conv2`).at(-1)).toBe(6);
      expect(pruned.getLayer(`${b}.bn2`).getWeights()[0]!.shape).toEqual([6]);
    }
    expect(kernelShape(pruned, 'layer1.0.conv1')).toEqual([3, 3, 6, 6]);
    expect(kernelShape(pruned, 'layer1.0.conv2')).toEqual([3, 3, 6, 6]);
    // an inner conv masked too: it loses its own output and its stream input
    expect(kernelShape(pruned, 'layer1.1.conv1')).toEqual([3, 3, 6, 5]);
    expect(kernelShape(pruned, 'layer1.1.conv2')).toEqual([3, 3, 5, 6]);
    expect(kernelShape(pruned, 'layer1.2.conv1')).toEqual([3, 3, 6, 6]);
    // stream 2 loses 2 of 12: its downsample reads stream 1 and writes stream 2
    expect(kernelShape(pruned, 'layer2.0.downsample.0')).toEqual([1, 1, 6, 10]);
    expect(kernelShape(pruned, 'layer2.0.conv1')).toEqual([3, 3, 6, 8]);
    expect(kernelShape(pruned, 'layer2.0.conv2')).toEqual([3, 3, 8, 10]);
    expect(kernelShape(pruned, 'layer2.1.conv1')).toEqual([3, 3, 10, 9]);
    expect(kernelShape(pruned, 'layer2.1.conv2')).toEqual([3, 3, 9, 10]);
    expect(kernelShape(pruned, 'fc')).toEqual([10, 3]);
    expectSameLogits(pruned, masked.model, net.x);
    expect(compareCost(net.model, mask).after.params).toBe(pruned.countParams());
    pruned.dispose();
    expect(tf.memory().numTensors).toBe(before);
    masked.dispose();
  });

  it('refuses emptying the three-block stream through its first and last sums', async () => {
    await expectCrpError(
      async () =>
        MaskedModel.create(
          net.model,
          ChannelMask.of({ 'layer1.0.add': [0, 1, 2, 3], 'layer1.2.add': [4, 5, 6, 7] }),
        ),
      'invalid-argument',
      "the mask prunes all 8 channels of the residual stream of 'layer1.0.add'",
    );
  });
});
