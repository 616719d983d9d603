import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChannelMask, checkMask, MaskedModel, prunableLayers } from '../src/index.js';
import {
  expectClose,
  expectCrpError,
  predictValues,
  runGraph,
  tinyImages,
  tinyModel,
  useBackend,
  values,
  zeroChannels,
} from './helpers.js';

useBackend('cpu');

describe('ChannelMask', () => {
  it('sorts, deduplicates, unions, subtracts and compares', () => {
    const a = ChannelMask.of({ conv1: [3, 0, 3], dense1: [] });
    expect(a.layers).toEqual(['conv1']);
    expect(a.channels('conv1')).toEqual([0, 3]);
    expect(a.channels('dense1')).toEqual([]);
    const b = a.union(ChannelMask.of({ conv1: [1, 3], dense1: [4] }), ChannelMask.of({ conv2: [2] }));
    expect(b.toJSON().layers).toEqual({ conv1: [0, 1, 3], dense1: [4], conv2: [2] });
    expect(b.size).toBe(5);
    expect(b.has('conv1', 1)).toBe(true);
    expect(b.has('conv2', 1)).toBe(false);
    // union is commutative as a set, and `without` undoes it
    expect(
      ChannelMask.of({ conv2: [2] })
        .union(a, ChannelMask.of({ conv1: [1], dense1: [4] }))
        .equals(b),
    ).toBe(true);
    expect(b.without(ChannelMask.of({ conv1: [1], dense1: [4], conv2: [2] })).equals(a)).toBe(true);
    expect(ChannelMask.empty().isEmpty).toBe(true);
  });

  it('round-trips through JSON and rejects malformed JSON', async () => {
    const m = ChannelMask.of({ conv1: [2, 1], dense2: [0] });
    const text = JSON.stringify(m);
    expect(JSON.parse(text)).toEqual({
      format: 'crp-channel-mask',
      version: 1,
      layers: { conv1: [1, 2], dense2: [0] },
    });
    expect(ChannelMask.fromJSON(JSON.parse(text)).equals(m)).toBe(true);
    await expectCrpError(() => ChannelMask.fromJSON({ conv1: [1] }), 'invalid-argument', 'crp-channel-mask');
    await expectCrpError(
      () => ChannelMask.fromJSON({ format: 'crp-channel-mask', version: 1, layers: { conv1: [1.5] } }),
      'invalid-argument',
      "layer 'conv1'",
      '1.5',
    );
    await expectCrpError(() => ChannelMask.of({ conv1: [-1] }), 'invalid-argument', 'non-negative');
  });
});

describe('validation against a model', () => {
  let model: ReturnType<typeof tinyModel>;
  beforeAll(() => {
    model = tinyModel();
  });

  it('lists the prunable layers with their channel counts', () => {
    expect(prunableLayers(model)).toEqual([
      { name: 'conv1', className: 'Conv2D', channels: 4 },
      { name: 'conv2', className: 'Conv2D', channels: 6 },
      { name: 'dense1', className: 'Dense', channels: 5 },
      { name: 'dense2', className: 'Dense', channels: 3 },
    ]);
  });

  it('names unknown and non-prunable layers, gives the range, refuses emptying a layer unless forced', async () => {
    await expectCrpError(
      () => checkMask(model, ChannelMask.of({ conv9: [0] })),
      'unknown-layer',
      "unknown layer 'conv9'",
      'conv1, conv2, dense1, dense2',
    );
    await expectCrpError(
      () => checkMask(model, ChannelMask.of({ pool: [0] })),
      'unknown-layer',
      "'pool' has no prunable channels",
      'conv1, conv2, dense1, dense2',
    );
    await expectCrpError(
      () => checkMask(model, ChannelMask.of({ conv2: [6] })),
      'invalid-argument',
      "channel 6 is out of range for layer 'conv2'",
      'valid: 0..5',
    );
    await expectCrpError(
      () => MaskedModel.create(model, ChannelMask.of({ dense1: [0, 1, 2, 3, 4] })),
      'invalid-argument',
      "all 5 channels of layer 'dense1'",
      'force: true',
    );
    const forced = await MaskedModel.create(model, ChannelMask.of({ dense1: [0, 1, 2, 3, 4] }), {
      force: true,
    });
    // every hidden unit is zero: the logits are dense2's bias
    const x = tinyImages(2);
    const logits = predictValues(forced.model, x);
    const bias = values(model.getLayer('dense2').getWeights()[1]!);
    expectClose(logits, [...bias, ...bias]);
    forced.dispose();
    x.dispose();
  });
});

describe('MaskedModel', () => {
  it('zeroes dense units and conv filters (through the batch norm) as hand computations say', async () => {
    const model = tinyModel();
    const x = tinyImages(3);
    const before = model.getWeights().map((w) => values(w));
    const masked = await MaskedModel.create(model, ChannelMask.of({ conv1: [1, 3], dense1: [2] }));

    // the expectation: the original model run node by node, with the channels zeroed at the layer that
    // finally outputs them (after bn1 for conv1's filters, after the relu for dense1's units)
    const expected = runGraph(model, x, { bn1: zeroChannels([1, 3]), dense1: zeroChannels([2]) });
    const got = runGraph(masked.model, x);
    expectClose(got.relu1!, expected.relu1!);
    expectClose(got.dense1!, expected.dense1!);
    expectClose(predictValues(masked.model, x), expected.dense2!, 1e-5);
    // masked channels are exactly zero after the batch norm
    const relu1 = got.bn1!;
    for (let i = 0; i < relu1.length; i += 4) {
      expect(relu1[i + 1]).toBe(0);
      expect(relu1[i + 3]).toBe(0);
    }
    // the user's model is untouched
    model.getWeights().forEach((w, i) => {
      expect(values(w)).toEqual(before[i]);
    });
    masked.dispose();
    x.dispose();
  });

  it('switches masks, restores the original weights and restores a mask from JSON', async () => {
    const model = tinyModel();
    const x = tinyImages(2);
    const original = predictValues(model, x);
    const m1 = ChannelMask.of({ conv2: [0, 4] });
    const m2 = ChannelMask.of({ dense1: [1] });
    const masked = await MaskedModel.create(model, m1);
    const out1 = predictValues(masked.model, x);
    expect(out1).not.toEqual(original);
    masked.setMask(m1.union(m2));
    const out12 = predictValues(masked.model, x);
    expectClose(
      out12,
      runGraph(model, x, { conv2: zeroChannels([0, 4]), dense1: zeroChannels([1]) }).dense2!,
    );
    masked.setMask(m2);
    expectClose(predictValues(masked.model, x), runGraph(model, x, { dense1: zeroChannels([1]) }).dense2!);
    masked.restore();
    expect(masked.mask.isEmpty).toBe(true);
    expect(predictValues(masked.model, x)).toEqual(original);
    // a mask written as JSON and read back gives the same model
    const again = await MaskedModel.create(model, ChannelMask.fromJSON(JSON.parse(JSON.stringify(m1))));
    expect(predictValues(again.model, x)).toEqual(out1);
    again.dispose();
    masked.dispose();
    x.dispose();
  });

  it('masks depthwise channels (channel c * multiplier + m of kernel entry [c, m])', async () => {
    const input = tfl.input({ shape: [5, 5, 2] });
    const dw = tfl.layers
      .depthwiseConv2d({
        kernelSize: 3,
        depthMultiplier: 2,
        name: 'dw',
        activation: 'relu',
        biasInitializer: 'ones',
      })
      .apply(input) as tfl.SymbolicTensor;
    const out = tfl.layers
      .dense({ units: 2, name: 'head' })
      .apply(tfl.layers.flatten().apply(dw)) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    expect(prunableLayers(model)[0]).toEqual({ name: 'dw', className: 'DepthwiseConv2D', channels: 4 });
    const x = tf.randomUniform([2, 5, 5, 2], -1, 1, 'float32', 3);
    const masked = await MaskedModel.create(model, ChannelMask.of({ dw: [1, 2] }));
    const expected = runGraph(model, x, { dw: zeroChannels([1, 2]) });
    const got = runGraph(masked.model, x);
    expectClose(got.dw!, expected.dw!);
    expectClose(predictValues(masked.model, x), expected.head!);
    masked.dispose();
    model.dispose();
    x.dispose();
  });

  it('leaks no tensors over create / setMask / dispose cycles', async () => {
    const model = tinyModel();
    const start = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const masked = await MaskedModel.create(model, ChannelMask.of({ conv1: [i % 4] }));
      masked.setMask(ChannelMask.of({ dense1: [i % 5], conv1: [0] }));
      masked.restore();
      masked.dispose();
    }
    expect(tf.memory().numTensors).toBe(start);
  });
});
