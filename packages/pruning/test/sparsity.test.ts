import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChannelMask, compareCost, MaskedModel, modelCost, sparsity } from '../src/index.js';
import { expectCrpError, tinyModel, useBackend } from './helpers.js';

useBackend('cpu');

let model: tfl.LayersModel;
beforeAll(() => {
  model = tinyModel();
});

// image 6x6x3 -> conv1 3x3 3->4 -> bn1 -> relu1 -> conv2 3x3 4->6 (relu) -> pool 2 -> flat (3*3*6 = 54)
// -> dense1 54->5 -> dense2 5->3
const MASK = ChannelMask.of({ conv1: [1, 3], conv2: [0], dense1: [2] });

describe('parameters and multiply-adds', () => {
  it('counts the unpruned model by hand', () => {
    const cost = modelCost(model);
    expect(cost.layers).toEqual([
      { layer: 'conv1', className: 'Conv2D', params: 27 * 4 + 4, flops: 36 * 27 * 4 },
      { layer: 'bn1', className: 'BatchNormalization', params: 4 * 4, flops: 0 },
      { layer: 'conv2', className: 'Conv2D', params: 36 * 6 + 6, flops: 36 * 36 * 6 },
      { layer: 'dense1', className: 'Dense', params: 54 * 5 + 5, flops: 54 * 5 },
      { layer: 'dense2', className: 'Dense', params: 5 * 3 + 3, flops: 15 },
    ]);
    expect(cost.params).toBe(643);
    expect(cost.params).toBe(model.countParams());
    expect(cost.flops).toBe(3888 + 7776 + 270 + 15);
  });

  it('counts the pruned model: outputs of pruned layers and inputs of their readers removed', () => {
    const { before, after, paramsRatio, flopsRatio } = compareCost(model, MASK);
    expect(before.params).toBe(643);
    expect(after.layers).toEqual([
      // 2 filters left
      { layer: 'conv1', className: 'Conv2D', params: 27 * 2 + 2, flops: 36 * 27 * 2 },
      { layer: 'bn1', className: 'BatchNormalization', params: 2 * 4, flops: 0 },
      // 2 input channels, 5 filters
      { layer: 'conv2', className: 'Conv2D', params: 9 * 2 * 5 + 5, flops: 36 * 9 * 2 * 5 },
      // 9 positions x 5 channels rows, 4 units
      { layer: 'dense1', className: 'Dense', params: 45 * 4 + 4, flops: 45 * 4 },
      { layer: 'dense2', className: 'Dense', params: 4 * 3 + 3, flops: 12 },
    ]);
    expect(after.params).toBe(358);
    expect(after.flops).toBe(1944 + 3240 + 180 + 12);
    expect(paramsRatio).toBeCloseTo(358 / 643, 12);
    expect(flopsRatio).toBeCloseTo(5376 / 11949, 12);
  });

  it('refuses what cannot be removed physically', async () => {
    await expectCrpError(
      () => modelCost(model, ChannelMask.of({ dense2: [0] })),
      'unsupported-model',
      'output',
    );
    const input = tfl.input({ shape: [4, 4, 2] });
    const a = tfl.layers.conv2d({ filters: 3, kernelSize: 1, name: 'a' }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.conv2d({ filters: 3, kernelSize: 1, name: 'b' }).apply(input) as tfl.SymbolicTensor;
    const sum = tfl.layers.add({ name: 'sum' }).apply([a, b]) as tfl.SymbolicTensor;
    const flat = tfl.layers.flatten().apply(sum) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 2 }).apply(flat) as tfl.SymbolicTensor;
    const residual = tfl.model({ inputs: input, outputs: out });
    await expectCrpError(
      () => modelCost(residual, ChannelMask.of({ a: [0] })),
      'unsupported-model',
      "'sum' (Add)",
      'use the masked model',
    );
    residual.dispose();
  });
});

describe('sparsity', () => {
  it('is zero for the dense model and counts the masked weights of a masked copy', async () => {
    const dense = sparsity(model);
    expect(dense.total).toEqual({ weights: 643, zeros: 0, fraction: 0 });
    const masked = await MaskedModel.create(model, MASK);
    const s = sparsity(masked.model);
    const zeros = Object.fromEntries(s.layers.map((l) => [l.layer, [l.zeros, l.weights]]));
    expect(zeros).toEqual({
      conv1: [2 * 27 + 2, 112], // two kernel columns and their biases
      bn1: [2 * 3, 16], // gamma, beta and mean of two channels
      conv2: [36 + 1, 222],
      dense1: [54 + 1, 275],
      dense2: [0, 18],
    });
    expect(s.total.zeros).toBe(154);
    expect(s.total.fraction).toBeCloseTo(154 / 643, 12);
    masked.dispose();
  });
});
