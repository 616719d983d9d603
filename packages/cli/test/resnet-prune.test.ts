/**
 * `crp prune --export` on a ResNet read from a `.pth`: the export removes channels physically, so only the
 * layers where that keeps the model's function lose channels (a block's inner convs, and the residual streams
 * named by their additions; not a block's last conv, its downsample or the stem alone, whose channels are added
 * to a stream), and the exported model computes what the masked model computes. A named layer that cannot lose channels is a usage error before any work. The model is
 * the slim torchvision ResNet of packages/models/fixtures-src/make-slim-resnets.py.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMAGENET } from '@crp/models';
import { fileSystem, imageFolder, readStateDict, readTorchResNet } from '@crp/models/node';
import { ChannelMask, type ChannelMaskJSON, MaskedModel } from '@crp/pruning';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PruneOutput } from '../src/index.js';
import { crp, resultOf } from './run.js';

const ROOT = join(import.meta.dirname, '..', '..');
const RESNET = join(ROOT, 'models', 'test', 'fixtures', 'pth', 'slim-resnet-basic.pth');
const DATA = join(ROOT, 'study', 'test', 'fixtures', 'patches');
const REMOVABLE = ['layer1.0.conv1', 'layer1.1.conv1', 'layer2.0.conv1', 'layer3.0.conv1', 'layer4.0.conv1'];
/** What `--export` can prune: the inner convs and, named in --layers, the additions (residual streams). */
const REMOVABLE_ALL = [
  'layer1.0.conv1',
  'layer1.0.add',
  'layer1.1.conv1',
  'layer1.1.add',
  'layer2.0.conv1',
  'layer2.0.add',
  'layer3.0.conv1',
  'layer3.0.add',
  'layer4.0.conv1',
  'layer4.0.add',
];

describe('crp prune --export on a ResNet', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crp-prune-resnet-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('removes channels of the inner convs only, with the masked model’s logits', async () => {
    const exported = join(dir, 'pruned');
    const common = ['--model', RESNET, '--input-size', '32', '--normalize', 'imagenet', '--data', DATA];
    const { code, stdout, stderr } = await crp(
      'prune',
      ...common,
      '--export',
      exported,
      '--criterion',
      'weight',
      '--fraction',
      '0.5',
      '--json',
    );
    expect(code, stderr).toBe(0);
    const output = resultOf<PruneOutput>(stdout);
    expect(output.export!.pruned).toBeGreaterThan(0);
    expect(output.export!.stateDict).toBe(join(exported, 'state_dict.pth'));
    expect(output.files).toContain(join(exported, 'state_dict.pth'));
    const mask = ChannelMask.fromJSON(
      JSON.parse(await readFile(join(exported, 'mask.json'), 'utf8')) as ChannelMaskJSON,
    );
    expect([...mask.layers].sort()).toEqual(REMOVABLE);
    // half of each layer's filters, those with the smallest L1 norm
    expect(mask.channels('layer3.0.conv1')).toHaveLength(8);
    const model = await readTorchResNet(RESNET, { inputSize: 32 });
    const small = await tfl.loadLayersModel(fileSystem(exported));
    const masked = await MaskedModel.create(model, mask);
    const data = await imageFolder(DATA, { inputSize: [32, 32], ...IMAGENET });
    try {
      expect(small.getLayer('layer3.0.conv1').getWeights()[0]!.shape).toEqual([3, 3, 12, 8]);
      expect(small.getLayer('layer4.0.conv2').getWeights()[0]!.shape).toEqual([3, 3, 10, 20]);
      const [a, b] = [
        masked.model.predict(data.images) as tf.Tensor,
        small.predict(data.images) as tf.Tensor,
      ];
      const [x, y] = [a.dataSync(), b.dataSync()];
      const scale = Math.max(...Array.from(x, Math.abs));
      for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - y[i]!)).toBeLessThan(1e-5 * scale);
      // back to PyTorch: the state dict has torch's layout with the pruned counts, and reads back to the same logits
      const stateDict = await readStateDict(join(exported, 'state_dict.pth'));
      expect(stateDict.entry('layer3.0.conv1.weight').shape).toEqual([8, 12, 3, 3]);
      expect(stateDict.entry('layer3.0.bn1.running_var').shape).toEqual([8]);
      expect(stateDict.entry('layer3.0.conv2.weight').shape).toEqual([16, 8, 3, 3]);
      const again = await readTorchResNet(join(exported, 'state_dict.pth'), { inputSize: 32 });
      const c = again.predict(data.images) as tf.Tensor;
      const z = c.dataSync();
      for (let i = 0; i < x.length; i++) expect(Math.abs(z[i]! - y[i]!)).toBeLessThan(1e-5 * scale);
      tf.dispose([a, b, c, data.images]);
      again.dispose();
    } finally {
      masked.dispose();
      small.dispose();
      model.dispose();
    }
  });

  it('removes a residual stream’s channels named by its addition from every conv writing or reading it', async () => {
    const exported = join(dir, 'stream');
    const { code, stderr } = await crp(
      'prune',
      '--model',
      RESNET,
      '--input-size',
      '32',
      '--normalize',
      'imagenet',
      '--data',
      DATA,
      '--layers',
      'layer3.0.conv1,layer4.0.add',
      '--export',
      exported,
      '--criterion',
      'weight',
      '--fraction',
      '0.5',
      '--json',
    );
    expect(code, stderr).toBe(0);
    const mask = ChannelMask.fromJSON(
      JSON.parse(await readFile(join(exported, 'mask.json'), 'utf8')) as ChannelMaskJSON,
    );
    expect([...mask.layers].sort()).toEqual(['layer3.0.conv1', 'layer4.0.add']);
    expect(mask.channels('layer4.0.add')).toHaveLength(10); // half of layer4's 20 stream channels
    const model = await readTorchResNet(RESNET, { inputSize: 32 });
    const small = await tfl.loadLayersModel(fileSystem(exported));
    const masked = await MaskedModel.create(model, mask);
    const data = await imageFolder(DATA, { inputSize: [32, 32], ...IMAGENET });
    try {
      // the stream of layer4 starts at its downsample; layer4.0.conv2 writes to it; fc reads it after the pool
      expect(small.getLayer('layer4.0.downsample.0').getWeights()[0]!.shape).toEqual([1, 1, 16, 10]);
      expect(small.getLayer('layer4.0.conv2').getWeights()[0]!.shape).toEqual([3, 3, 20, 10]);
      expect(small.getLayer('fc').getWeights()[0]!.shape.slice(0, 1)).toEqual([10]);
      const [a, b] = [
        masked.model.predict(data.images) as tf.Tensor,
        small.predict(data.images) as tf.Tensor,
      ];
      const [x, y] = [a.dataSync(), b.dataSync()];
      const scale = Math.max(...Array.from(x, Math.abs));
      for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - y[i]!)).toBeLessThan(1e-5 * scale);
      tf.dispose([a, b, data.images]);
    } finally {
      masked.dispose();
      small.dispose();
      model.dispose();
    }
  });

  it('refuses to export a block’s last conv before any work, naming the removable layers', async () => {
    const { code, stderr } = await crp(
      'prune',
      '--model',
      RESNET,
      '--input-size',
      '32',
      '--data',
      DATA,
      '--layers',
      'layer3.0.conv1,layer4.0.conv2',
      '--export',
      join(dir, 'never'),
    );
    expect(code).toBe(2);
    expect(stderr).toContain("'layer4.0.conv2' cannot lose channels that way: they reach an addition");
    // the addition this very conv writes to, not an example from another stage
    expect(stderr).toContain('prune the residual stream through its addition, layer4.0.add, instead');
    expect(stderr).toContain(`Removable layers: ${REMOVABLE_ALL.join(', ')}`);
  });
});
