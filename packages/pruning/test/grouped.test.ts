import { describe, expect, it } from 'vitest';
import { ChannelMask, exportPruned, MaskedModel, prunableLayers } from '../src/index.js';
import { expectCrpError, layerOutputs, useBackend, useFormulaResNet } from './helpers.js';

useBackend('wasm');

/** torchvision's ResNet(Bottleneck, [1, 1], groups=4, width_per_group=4, num_classes=3): conv2 of layer1 has 16
 * channels in 4 groups of 4. */
const SMALL_RESNEXT = {
  block: 'bottleneck',
  layers: [1, 1],
  classes: 3,
  groups: 4,
  widthPerGroup: 4,
} as const;

describe('pruning channels of grouped convolutions', () => {
  const net = useFormulaResNet(SMALL_RESNEXT, 9, 5);

  it('a grouped conv is prunable by its output channels', () => {
    expect(prunableLayers(net.model).find((l) => l.name === 'layer1.0.conv2')).toEqual({
      name: 'layer1.0.conv2',
      className: 'GroupedConv2D',
      channels: 16,
    });
  });

  it('a masked output channel of a grouped conv is zero after its batch norm; the other channels stay', async () => {
    const masked = await MaskedModel.create(net.model, ChannelMask.of({ 'layer1.0.conv2': [5] }));
    const [bn2] = layerOutputs(masked.model, net.x, ['layer1.0.bn2']);
    const [plain] = layerOutputs(net.model, net.x, ['layer1.0.bn2']);
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
    const masked = await MaskedModel.create(net.model, ChannelMask.of({ 'layer1.0.conv1': [6] }));
    const [conv2] = layerOutputs(masked.model, net.x, ['layer1.0.conv2']);
    const [plain] = layerOutputs(net.model, net.x, ['layer1.0.conv2']);
    const changed = new Set<number>();
    for (let i = 0; i < conv2!.length; i++) if (conv2![i] !== plain![i]) changed.add(i % 16);
    expect([...changed].sort((a, b) => a - b)).toEqual([4, 5, 6, 7]);
    masked.dispose();
  });

  it('refuses to remove channels of or into a grouped conv physically', async () => {
    await expectCrpError(
      () => exportPruned(net.model, ChannelMask.of({ 'layer1.0.conv2': [5] })),
      'unsupported-layer',
      "cannot remove channels of 'layer1.0.conv2' physically: it is a grouped convolution (4 groups)",
    );
    await expectCrpError(
      () => exportPruned(net.model, ChannelMask.of({ 'layer1.0.conv1': [6] })),
      'unsupported-model',
      "they reach 'layer1.0.conv2' (GroupedConv2D), a grouped convolution",
    );
  });
});
