/**
 * Pruning inside residual blocks of a torchvision ResNet (imported from a state dict): masking a channel of a
 * block's last conv zeroes that channel of the residual branch (its batch norm too), so after the block the
 * channel carries the shortcut alone; inner channels (conv1 of a basic block) are removed physically with the
 * same logits; the block's last conv cannot be removed physically (its channels are added to the shortcut).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CondAttribution } from '@crp/core';
import { graphFromLayersModel } from '@crp/lrp';
import { encodeTorchStateDict, torchStateDictOf } from '@crp/models';
import { formulaImage } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  ChannelMask,
  exportPruned,
  MaskedModel,
  removableLayers,
  residualSums,
  sumSources,
} from '../src/index.js';
import { expectCrpError, formulaResNet, layerOutputs, useBackend, useFormulaResNet } from './helpers.js';

useBackend('wasm');

/** torchvision's ResNet(BasicBlock, [1, 1], num_classes=3): conv1, layer1 (64), layer2 (128, downsample), fc. */
const SMALL_RESNET = { block: 'basic', layers: [1, 1], classes: 3 } as const;

describe('pruning channels of residual blocks', () => {
  const net = useFormulaResNet(SMALL_RESNET, 7, 5);

  it('a masked channel of layer2.0.conv2 is zero in the branch; after the block it is the shortcut alone', async () => {
    const masked = await MaskedModel.create(net.model, ChannelMask.of({ 'layer2.0.conv2': [5, 77] }));
    const layers = ['layer2.0.bn2', 'layer2.0.downsample.1', 'layer2.0.relu'];
    const [branch, shortcut, block] = layerOutputs(masked.model, net.x, layers);
    const [plainBranch, , plainBlock] = layerOutputs(net.model, net.x, layers);
    const C = 128;
    let changed = 0;
    for (let i = 0; i < branch!.length; i++) {
      const c = i % C;
      if (c === 5 || c === 77) {
        expect(branch![i]).toBe(0);
        expect(block![i]).toBe(Math.max(0, shortcut![i]!));
        if (plainBlock![i] !== block![i]) changed++;
      } else {
        expect(branch![i]).toBe(plainBranch![i]);
        expect(block![i]).toBe(plainBlock![i]);
      }
    }
    expect(changed).toBeGreaterThan(0);
    masked.dispose();
  });

  /** Checks that channels `zero` of each output in `zeroAt` are exactly 0 (and some other value is not), and that
   * the outputs in `sameAt` equal the unmasked model's everywhere; with `othersSame`, so do the other channels of
   * `zeroAt`. */
  function expectChannels(
    masked: tfl.LayersModel,
    zeroAt: string[],
    sameAt: string[],
    zero: number[],
    othersSame = false,
  ): void {
    const got = layerOutputs(masked, net.x, [...zeroAt, ...sameAt]);
    zeroAt.forEach((layer, k) => {
      const C = net.model.getLayer(layer).outputShape.at(-1) as number;
      const values = got[k]!;
      let nonzero = 0;
      for (let i = 0; i < values.length; i++) {
        if (zero.includes(i % C)) expect(values[i], `${layer} channel ${i % C}`).toBe(0);
        else if (values[i] !== 0) nonzero++;
      }
      expect(nonzero, layer).toBeGreaterThan(0);
    });
    if (othersSame) {
      const plain = layerOutputs(net.model, net.x, zeroAt);
      zeroAt.forEach((layer, k) => {
        const C = net.model.getLayer(layer).outputShape.at(-1) as number;
        const others = (v: Float32Array) => v.filter((_, i) => !zero.includes(i % C));
        expect(others(got[k]!), layer).toEqual(others(plain[k]!));
      });
    }
    if (sameAt.length === 0) return;
    const plain = layerOutputs(net.model, net.x, sameAt);
    sameAt.forEach((layer, k) => {
      expect(got[zeroAt.length + k], layer).toEqual(plain[k]);
    });
  }

  it('a masked channel of an inner conv (layer2.0.conv1) is exactly zero after its batch norm and ReLU', async () => {
    const masked = await MaskedModel.create(net.model, ChannelMask.of({ 'layer2.0.conv1': [3, 100] }));
    expectChannels(masked.model, ['layer2.0.conv1', 'layer2.0.bn1', 'layer2.0.relu1'], [], [3, 100]);
    masked.dispose();
  });

  it('a mask on a block’s addition (layer2.0.add) zeroes the channel after the addition and the ReLU, and only it', async () => {
    const graph = graphFromLayersModel(net.model);
    expect(residualSums(graph).map((s) => [s.name, s.channels])).toEqual([
      ['layer1.0.add', 64],
      ['layer2.0.add', 128],
    ]);
    // the block has a downsample: the channel is zeroed in both addends
    expect(sumSources(graph, 'layer2.0.add').sort()).toEqual(['layer2.0.conv2', 'layer2.0.downsample.0']);
    // an identity shortcut: back to where the residual stream starts, the stem's conv
    expect(sumSources(graph, 'layer1.0.add').sort()).toEqual(['conv1', 'layer1.0.conv2']);
    graph.dispose();
    const masked = await MaskedModel.create(net.model, ChannelMask.of({ 'layer2.0.add': [5, 77] }));
    // zero in both branches, after the addition and after the block's ReLU; the block's other channels and the
    // model before the block as they were
    expectChannels(
      masked.model,
      ['layer2.0.bn2', 'layer2.0.downsample.1', 'layer2.0.add', 'layer2.0.relu'],
      ['layer2.0.relu1', 'layer1.0.relu'],
      [5, 77],
      true,
    );
    masked.dispose();
  });

  it('a mask on an addition after an identity shortcut (layer1.0.add) zeroes the stream from the stem', async () => {
    const masked = await MaskedModel.create(net.model, ChannelMask.of({ 'layer1.0.add': [2] }));
    expectChannels(
      masked.model,
      ['bn1', 'relu', 'maxpool', 'layer1.0.bn2', 'layer1.0.add', 'layer1.0.relu'],
      [],
      [2],
    );
    masked.dispose();
  });

  it('removes the inner convs and the residual streams (through their sums) physically; checks sums’ channels', async () => {
    expect(removableLayers(net.model)).toEqual([
      'layer1.0.conv1',
      'layer1.0.add',
      'layer2.0.conv1',
      'layer2.0.add',
    ]);
    await expectCrpError(
      async () => MaskedModel.create(net.model, ChannelMask.of({ 'layer2.0.add': [128] })),
      'invalid-argument',
      "channel 128 is out of range for layer 'layer2.0.add': it has 128 channels (valid: 0..127)",
    );
    await expectCrpError(
      async () => MaskedModel.create(net.model, ChannelMask.of({ 'layer2.0.ad': [1] })),
      'unknown-layer',
      'layer2.0.add',
    );
  });

  it('a condition on a layer the ResNet does not have names the nearest layers', async () => {
    const crp = new CondAttribution(net.model);
    await expectCrpError(
      async () => crp.run(net.x, [{ y: [0], 'layer2.0.conv3': [1] }]),
      'unknown-layer',
      "unknown layer 'layer2.0.conv3' (nearest: layer2.0.conv1, layer2.0.conv2",
    );
    crp.dispose();
  });

  it('removes inner channels physically with the masked model’s logits, and refuses a block’s last conv', async () => {
    const mask = ChannelMask.of({ 'layer1.0.conv1': [0, 9], 'layer2.0.conv1': [1, 2, 3] });
    const masked = await MaskedModel.create(net.model, mask);
    const pruned = await exportPruned(net.model, mask);
    expect(pruned.getLayer('layer2.0.conv1').getWeights()[0]!.shape).toEqual([3, 3, 64, 125]);
    expect(pruned.getLayer('layer2.0.conv2').getWeights()[0]!.shape).toEqual([3, 3, 125, 128]);
    expect(pruned.getLayer('layer2.0.bn1').getWeights()[0]!.shape).toEqual([125]);
    const a = masked.model.predict(net.x) as tf.Tensor;
    const b = pruned.predict(net.x) as tf.Tensor;
    const ya = a.dataSync();
    const yb = b.dataSync();
    const scale = Math.max(...Array.from(ya, Math.abs));
    for (let i = 0; i < ya.length; i++) expect(Math.abs(ya[i]! - yb[i]!)).toBeLessThan(1e-5 * scale);
    tf.dispose([a, b]);
    pruned.dispose();
    masked.dispose();
    await expect(exportPruned(net.model, ChannelMask.of({ 'layer2.0.conv2': [5] }))).rejects.toThrow(
      /they reach 'layer2\.0\.add' \(Add\)/,
    );
    await expectCrpError(
      () => exportPruned(net.model, ChannelMask.of({ 'layer2.0.conv2': [5] })),
      'unsupported-model',
      'use the masked model instead',
    );
  });

  it('writes the pruned ResNet as a state_dict.pth that torch loads into torchvision’s resnet18 (same logits)', async () => {
    const full = formulaResNet({ block: 'basic', layers: [2, 2, 2, 2], classes: 3 }, 3);
    const every = (n: number, step: number) =>
      Array.from({ length: Math.ceil(n / step) }, (_, i) => i * step);
    const mask = ChannelMask.of({
      'layer1.0.conv1': [0, 1, 2, 3, 4, 5, 6, 7],
      'layer3.1.conv1': every(256, 3),
      'layer4.0.conv1': [5, 6],
      // residual streams: a quarter of layer2's (every block's conv2, the downsample, their batch norms; the
      // readers layer2.1.conv1, layer3.0.conv1 and layer3.0.downsample.0), three of layer4's (fc loses rows)
      'layer2.1.add': every(128, 4),
      'layer4.1.add': [0, 100, 511],
    });
    const pruned = await exportPruned(full, mask);
    const bytes = encodeTorchStateDict(torchStateDictOf(pruned));
    // the bytes for fixtures-src/check-pruned-resnet-pth.py, which made the fixture below with torch
    await mkdir('test-artifacts', { recursive: true });
    await writeFile(join('test-artifacts', 'pruned-resnet18.pth'), bytes);
    const fixture = join(import.meta.dirname, 'fixtures', 'pruned-resnet18-pth.json');
    expect(existsSync(fixture), 'run fixtures-src/check-pruned-resnet-pth.py').toBe(true);
    const torch = JSON.parse(readFileSync(fixture, 'utf8')) as {
      sha256: string;
      prunedModules: Record<string, number[]>;
      logits: number[];
    };
    expect(torch.prunedModules['layer3.1.conv1']).toEqual([256 - 86, 256]);
    expect(torch.prunedModules['layer3.1.conv2']).toEqual([256, 256 - 86]);
    expect(torch.prunedModules['layer2.0.downsample.0']).toEqual([96, 64]);
    expect(torch.prunedModules['layer2.0.downsample.1']).toEqual([96]);
    expect(torch.prunedModules['layer2.1.conv2']).toEqual([96, 128]);
    expect(torch.prunedModules['layer3.0.downsample.0']).toEqual([256, 96]);
    expect(torch.prunedModules['layer4.1.conv2']).toEqual([509, 512]);
    expect(torch.prunedModules.fc).toEqual([3, 509]);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(torch.sha256);
    const input = formulaImage(1, 32, 32);
    const y = pruned.predict(input) as tf.Tensor;
    const ours = y.dataSync();
    const scale = Math.max(...torch.logits.map(Math.abs));
    torch.logits.forEach((v, i) => {
      expect(Math.abs(ours[i]! - v)).toBeLessThan(1e-5 * scale);
    });
    tf.dispose([input, y]);
    pruned.dispose();
    full.dispose();
  });
});
