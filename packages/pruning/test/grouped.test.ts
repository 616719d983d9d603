/**
 * Pruning a ResNeXt (grouped 3x3 convolutions, torchvision's `groups`): a masked output channel of a grouped conv
 * is zero after its batch norm and nothing else moves; a masked channel read by a grouped conv changes the
 * outputs of its own group only (an input channel belongs to one group); physical removal is refused for both,
 * since the groups would no longer have equal widths.
 */
import { type StateDict, torchResNetFromStateDict, torchResNetShapes } from '@crp/models';
import { formulaInput, formulaStateDict } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChannelMask, exportPruned, MaskedModel, prunableLayers } from '../src/index.js';
import { expectCrpError, useBackend } from './helpers.js';

useBackend('wasm');

/** torchvision's ResNet(Bottleneck, [1, 1], groups=4, width_per_group=4, num_classes=3): conv2 of layer1 has 16
 * channels in 4 groups of 4. */
function smallResNeXt(): tfl.LayersModel {
  const spec = { block: 'bottleneck', layers: [1, 1], classes: 3, groups: 4, widthPerGroup: 4 } as const;
  return torchResNetFromStateDict(formulaStateDict(torchResNetShapes(spec), 9) as StateDict, {
    inputSize: 32,
  });
}

function outputsOf(model: tfl.LayersModel, x: tf.Tensor, layers: string[]): Float32Array[] {
  const probe = tfl.model({
    inputs: model.inputs,
    outputs: layers.map((l) => model.getLayer(l).output as tfl.SymbolicTensor),
  });
  const out1 = probe.predict(x) as tf.Tensor | tf.Tensor[];
  const ys = Array.isArray(out1) ? out1 : [out1];
  const out = ys.map((y) => y.dataSync() as Float32Array);
  tf.dispose(ys);
  return out;
}

describe('pruning channels of grouped convolutions', () => {
  let model: tfl.LayersModel;
  let x: tf.Tensor;
  beforeAll(() => {
    model = smallResNeXt();
    x = tf.tidy(() =>
      tf.transpose(tf.tensor4d(formulaInput([2, 3, 32, 32], 5), [2, 3, 32, 32]), [0, 2, 3, 1]),
    );
  });
  afterAll(() => {
    model.dispose();
    x.dispose();
  });

  it('a grouped conv is prunable by its output channels', () => {
    expect(prunableLayers(model).find((l) => l.name === 'layer1.0.conv2')).toEqual({
      name: 'layer1.0.conv2',
      className: 'GroupedConv2D',
      channels: 16,
    });
  });

  it('a masked output channel of a grouped conv is zero after its batch norm; the other channels stay', async () => {
    const masked = await MaskedModel.create(model, ChannelMask.of({ 'layer1.0.conv2': [5] }));
    const [bn2] = outputsOf(masked.model, x, ['layer1.0.bn2']);
    const [plain] = outputsOf(model, x, ['layer1.0.bn2']);
    let nonzero = 0;
    for (let i = 0; i < bn2!.length; i++) {
      if (i % 16 === 5) {
        expect(bn2![i]).toBe(0);
        if (plain![i] !== 0) nonzero++;
      } else expect(bn2![i]).toBe(plain![i]);
    }
    expect(nonzero).toBeGreaterThan(0);
    masked.dispose();
  });

  it('a masked channel read by a grouped conv changes the outputs of its group only', async () => {
    // channel 6 of conv1 is an input of group 1 (channels 4..7) of conv2
    const masked = await MaskedModel.create(model, ChannelMask.of({ 'layer1.0.conv1': [6] }));
    const [conv2] = outputsOf(masked.model, x, ['layer1.0.conv2']);
    const [plain] = outputsOf(model, x, ['layer1.0.conv2']);
    const changed = new Set<number>();
    for (let i = 0; i < conv2!.length; i++) if (conv2![i] !== plain![i]) changed.add(i % 16);
    expect([...changed].sort((a, b) => a - b)).toEqual([4, 5, 6, 7]);
    masked.dispose();
  });

  it('refuses to remove channels of or into a grouped conv physically', async () => {
    await expectCrpError(
      () => exportPruned(model, ChannelMask.of({ 'layer1.0.conv2': [5] })),
      'unsupported-layer',
      "cannot remove channels of 'layer1.0.conv2' physically: it is a grouped convolution (4 groups)",
    );
    await expectCrpError(
      () => exportPruned(model, ChannelMask.of({ 'layer1.0.conv1': [6] })),
      'unsupported-model',
      "they reach 'layer1.0.conv2' (GroupedConv2D), a grouped convolution",
    );
  });
});
