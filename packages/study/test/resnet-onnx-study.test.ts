/**
 * The whole study on a ResNet read from a `.onnx`, as `crp study --model model.onnx` runs it: the basic slim
 * ResNet of resnet-study.test.ts exported the way a user exports one (`torch.onnx.export` with its defaults: every
 * batch norm folded into its conv, whose weights get generated names like `onnx::Conv_136`). The layer names in
 * study.json must still be PyTorch's module names (taken from the exporter's node scopes), the same as from the
 * `.pth`.
 *
 * What the study of a `.onnx` writes: the fine-tuned model as a TF.js model (`model/`, model.json + weights), as for
 * every model, and as `model.onnx` (the source graph with the fine-tuned weights; checked in @crp/cli's
 * onnx-study-process.test.ts); the pruned model is exported from it as a TF.js model (`exportPruned`). Not as a
 * torchvision state dict: with the batch norms folded the convs carry biases, which torchvision's ResNet does not
 * have.
 */
import { disposeDataset } from '@crp/models';
import { ChannelMask } from '@crp/pruning';
import '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '@crp/testing';
import type * as tf from '@tensorflow/tfjs-core';
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

const PRUNE_LAYERS = ['layer2.0.conv1', 'layer4.0.conv2'];

describe('crp study on a ResNet (.onnx)', () => {
  const run = useResNetStudy(slimResNet('basic', 'onnx'), {
    pruneLayers: PRUNE_LAYERS,
    referenceLayers: ['layer4.0.conv2', 'layer3.0.downsample.0'],
  });

  it('runs every part with PyTorch’s module names, as from the .pth', async () => {
    const { result } = run;
    expect(result.model.name).toBe('slim-resnet-basic.onnx');
    await expectCompleteStudy(run, BASIC_LAYERS, PRUNE_LAYERS);
    const decomposed = Object.values(result.decomposition.layers).map((l) => [l.layer, [...l.below].sort()]);
    expect(decomposed.sort()).toEqual([...BASIC_DECOMPOSITION].sort());
    expect(result.references.map((r) => r.layer)).toEqual(['layer4.0.conv2', 'layer3.0.downsample.0']);
  });

  it('exports the fine-tuned model pruned of the study’s concepts with the masked model’s logits', async () => {
    const model = await storedModel(run);
    // the folded batch norms: the stored model's convs have biases and there is no BatchNormalization layer
    expect(model.layers.some((l) => l.getClassName() === 'BatchNormalization')).toBe(false);
    const data = await studyImages();
    const row = run.result.pruning.rows.find((r) => r.layer === 'layer2.0.conv1' && r.class === 0)!;
    await expectExportAsMasked(
      model,
      data.images,
      ChannelMask.of({ 'layer2.0.conv1': row.concepts }),
      (pruned, a) => {
        // 12 filters less the 2 pruned concepts; conv2 of the block reads 10 channels
        expect(pruned.getLayer('layer2.0.conv1').getWeights()[0]!.shape).toEqual([3, 3, 8, 10]);
        expect(pruned.getLayer('layer2.0.conv2').getWeights()[0]!.shape).toEqual([3, 3, 10, 12]);
        // and the pruning changed the model: the masked logits are not the unmasked ones
        const c = model.predict(data.images) as tf.Tensor;
        expect(relativeGap(c, a)).toBeGreaterThan(1e-4);
        c.dispose();
      },
    );
    disposeDataset(data);
    model.dispose();
  });
});
