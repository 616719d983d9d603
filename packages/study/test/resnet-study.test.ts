/**
 * The whole study on a ResNet read from a `.pth`, as `crp study --model resnet.pth` runs it (`studyFiles`):
 * fine-tuning, evaluation, the three atlases, reference images and concept pruning, with PyTorch's layer names in
 * study.json; then the export of the pruned, fine-tuned model, whose logits must equal the masked model's. The
 * model is torchvision's ResNet class with slim widths (stem 8, stages 8-12-16-20, BasicBlocks [2, 1, 1, 1]; made
 * by torch: packages/models/fixtures-src/make-slim-resnets.py, whose logits the models tests check), so the study
 * runs in seconds at 32 pixels.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  disposeDataset,
  encodeTorchStateDict,
  parseStateDict,
  torchResNetFromStateDict,
  torchResNetLayout,
  torchStateDictOf,
} from '@crp/models';
import { readTorchResNet } from '@crp/models/node';
import { ChannelMask, exportPruned } from '@crp/pruning';
import '@tensorflow/tfjs-backend-wasm';
import { expectCrpErrorAsync, useBackend } from '@crp/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  BASIC_DECOMPOSITION,
  BASIC_LAYERS,
  expectCompleteStudy,
  expectExportAsMasked,
  relativeGap,
  slimResNet,
  storedModel,
  studyImages,
  useResNetStudy,
} from './resnet-study-setup.js';

useBackend('wasm');

/** An inner conv (its channels can be removed) and a block's last conv (its channels are added to the shortcut). */
const PRUNE_LAYERS = ['layer3.0.conv1', 'layer4.0.conv2'];

describe('crp study on a ResNet (.pth)', () => {
  const run = useResNetStudy(slimResNet('basic', 'pth'), {
    pruneLayers: PRUNE_LAYERS,
    referenceLayers: ['layer4.0.conv2', 'layer2.0.downsample.0'],
  });

  it('runs every part and names the layers as PyTorch does', async () => {
    expect(run.result.model.name).toBe('slim-resnet-basic.pth');
    await expectCompleteStudy(run, BASIC_LAYERS, PRUNE_LAYERS);
    expect(run.result.options.layers).toEqual(BASIC_LAYERS);
    expect(Object.values(run.result.decomposition.layers).map((l) => [l.layer, [...l.below].sort()])).toEqual(
      BASIC_DECOMPOSITION,
    );
    // the global atlas's top concepts of a block's last conv are channels of its 20 filters
    for (const e of run.result.atlas.layers['layer4.0.conv2']!.ranking) expect(e.concept).toBeLessThan(20);
    expect(run.result.references.map((r) => r.layer)).toEqual(['layer4.0.conv2', 'layer2.0.downsample.0']);
    const report = await readFile(join(run.out, 'report.html'), 'utf8');
    expect(report).toContain('Reference images: layer4.0.conv2');
    expect(report).toContain('layer3.0.conv1');
  });

  it('writes the fine-tuned model back to PyTorch as state_dict.pth, with the stored model’s logits', async () => {
    const model = await storedModel(run);
    const data = await studyImages();
    const back = await readTorchResNet(join(run.out, 'state_dict.pth'), { inputSize: 32 });
    const [a, b] = [model.predict(data.images) as tf.Tensor, back.predict(data.images) as tf.Tensor];
    expect(relativeGap(a, b)).toBeLessThan(1e-5);
    // fine-tuned: not the source file's weights
    const source = await readTorchResNet(slimResNet('basic', 'pth'), { inputSize: 32 });
    const c = source.predict(data.images) as tf.Tensor;
    expect(relativeGap(a, c)).toBeGreaterThan(1e-4);
    tf.dispose([a, b, c]);
    disposeDataset(data);
    for (const m of [model, back, source]) m.dispose();
  });

  it('exports the fine-tuned model pruned of the study’s concepts: the masked model’s logits, also back from .pth', async () => {
    // the fine-tuned model the study stored, and every image at the model's input
    const model = await storedModel(run);
    const data = await studyImages();
    const row = run.result.pruning.rows.find((r) => r.layer === 'layer3.0.conv1' && r.class === 0)!;
    await expectExportAsMasked(
      model,
      data.images,
      ChannelMask.of({ 'layer3.0.conv1': row.concepts }),
      (pruned, a) => {
        expect(pruned.getLayer('layer3.0.conv1').getWeights()[0]!.shape).toEqual([3, 3, 12, 14]);
        // written as a state dict of torchvision's class with 14 filters in layer3.0.conv1, and read back
        const sd = parseStateDict(encodeTorchStateDict(torchStateDictOf(pruned)));
        const layout = torchResNetLayout(sd);
        expect(layout.blocks.find((x) => x.name === 'layer3.0')).toMatchObject({
          width: 14,
          outChannels: 16,
        });
        const back = torchResNetFromStateDict(sd, { inputSize: 32 });
        const c = back.predict(data.images) as tf.Tensor;
        expect(relativeGap(a, c)).toBeLessThan(1e-5);
        c.dispose();
        back.dispose();
      },
    );
    // the concepts of a block's last conv are masked, not removed: their channels are added to the shortcut
    const last = run.result.pruning.rows.find((r) => r.layer === 'layer4.0.conv2')!;
    await expectCrpErrorAsync(
      () => exportPruned(model, ChannelMask.of({ 'layer4.0.conv2': last.concepts })),
      'unsupported-model',
      "they reach 'layer4.0.add' (Add)",
    );
    disposeDataset(data);
    model.dispose();
  });
});
