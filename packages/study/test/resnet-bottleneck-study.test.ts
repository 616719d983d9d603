/**
 * The whole study on a bottleneck ResNet read from a `.pth`: the slim bottleneck fixture of @crp/models
 * (torchvision's `ResNet(Bottleneck, [1, 2, 1, 1], groups=2)` with stem 8, inner widths 4-8-8-12, block outputs
 * 16-24-32-40; 3 classes), so every block has a 1x1 - grouped 3x3 - 1x1 branch and layer2.1 an identity shortcut.
 * The model has 3 outputs: the study's two-class patches are split into three classes (the normal patches halved).
 */
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { disposeDataset } from '@crp/models';
import { ChannelMask, exportPruned, removableLayers } from '@crp/pruning';
import '@tensorflow/tfjs-backend-wasm';
import { expectCrpErrorAsync, useBackend } from '@crp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectCompleteStudy,
  expectExportAsMasked,
  FIXTURES,
  runResNetStudy,
  type StudyRun,
  slimResNet,
  storedModel,
  studyImages,
} from './resnet-study-setup.js';

useBackend('wasm');

/** A first block's inner 1x1 conv and the last block's expanding 1x1 conv (added to the shortcut). */
const PRUNE_LAYERS = ['layer2.1.conv1', 'layer4.0.conv3'];

const BLOCKS: [string, boolean][] = [
  ['layer1.0', true],
  ['layer2.0', true],
  ['layer2.1', false],
  ['layer3.0', true],
  ['layer4.0', true],
];
/** Each stage's output (its last block's addition) and its two branches (sorted): the block's conv3 and its
 * shortcut, the stage's downsample or (layer2's second block) the previous block's addition. */
const STAGE_OUTPUTS: [string, string[]][] = [
  ['layer1.0.add', ['layer1.0.conv3', 'layer1.0.downsample.0']],
  ['layer2.1.add', ['layer2.0.add', 'layer2.1.conv3']],
  ['layer3.0.add', ['layer3.0.conv3', 'layer3.0.downsample.0']],
  ['layer4.0.add', ['layer4.0.conv3', 'layer4.0.downsample.0']],
];
const LAYERS = [
  'conv1',
  ...BLOCKS.flatMap(([b, down]) => [
    `${b}.conv1`,
    `${b}.conv2`,
    `${b}.conv3`,
    ...(down ? [`${b}.downsample.0`] : []),
  ]),
  ...STAGE_OUTPUTS.map(([l]) => l),
];

/** [layer, the layers below]: every conv but the stem's, and each stage's output. A block's conv1 and downsample
 * read the previous block's addition (the first block's, the stem's conv through the max pool); conv2 and conv3 the
 * conv before. */
const DECOMPOSITION: [string, string[]][] = [
  ...STAGE_OUTPUTS,
  ['layer1.0.conv1', ['conv1']],
  ['layer1.0.conv2', ['layer1.0.conv1']],
  ['layer1.0.conv3', ['layer1.0.conv2']],
  ['layer1.0.downsample.0', ['conv1']],
  ['layer2.0.conv1', ['layer1.0.add']],
  ['layer2.0.conv2', ['layer2.0.conv1']],
  ['layer2.0.conv3', ['layer2.0.conv2']],
  ['layer2.0.downsample.0', ['layer1.0.add']],
  ['layer2.1.conv1', ['layer2.0.add']],
  ['layer2.1.conv2', ['layer2.1.conv1']],
  ['layer2.1.conv3', ['layer2.1.conv2']],
  ['layer3.0.conv1', ['layer2.1.add']],
  ['layer3.0.conv2', ['layer3.0.conv1']],
  ['layer3.0.conv3', ['layer3.0.conv2']],
  ['layer3.0.downsample.0', ['layer2.1.add']],
  ['layer4.0.conv1', ['layer3.0.add']],
  ['layer4.0.conv2', ['layer4.0.conv1']],
  ['layer4.0.conv3', ['layer4.0.conv2']],
  ['layer4.0.downsample.0', ['layer3.0.add']],
];

describe('crp study on a bottleneck ResNet (.pth)', () => {
  let data: string;
  let run: StudyRun;
  beforeAll(async () => {
    // three classes: mitosis, and the normal patches halved into normal and stroma
    data = await mkdtemp(join(tmpdir(), 'crp-study-3class-'));
    const normal = (await readdir(join(FIXTURES, 'patches', 'normal'))).sort();
    const split: Record<string, [string, string[]]> = {
      mitosis: ['mitosis', await readdir(join(FIXTURES, 'patches', 'mitosis'))],
      normal: ['normal', normal.slice(0, normal.length / 2)],
      stroma: ['normal', normal.slice(normal.length / 2)],
    };
    for (const [cls, [from, files]] of Object.entries(split)) {
      await mkdir(join(data, cls));
      for (const f of files) await copyFile(join(FIXTURES, 'patches', from, f), join(data, cls, f));
    }
    run = await runResNetStudy(
      slimResNet('bottleneck', 'pth'),
      {
        pruneLayers: PRUNE_LAYERS,
        referenceLayers: ['layer4.0.conv3', 'layer2.1.conv2'],
      },
      data,
    );
  });
  afterAll(async () => {
    await run?.cleanup();
    await rm(data, { recursive: true, force: true });
  });

  it('runs every part with PyTorch’s names and decomposes every conv but the stem’s and each stage’s output', async () => {
    const { result } = run;
    expect(result.model.name).toBe('slim-resnet-bottleneck.pth');
    await expectCompleteStudy(run, LAYERS, PRUNE_LAYERS);
    const decomposed = Object.values(result.decomposition.layers).map((l) => [l.layer, [...l.below].sort()]);
    expect(decomposed.sort()).toEqual([...DECOMPOSITION].sort());
    // the grouped conv's concepts are its 8 filters
    for (const e of result.atlas.layers['layer2.1.conv2']!.ranking) expect(e.concept).toBeLessThan(8);
    expect(result.references.map((r) => r.layer)).toEqual(['layer4.0.conv3', 'layer2.1.conv2']);
  });

  it('exports the fine-tuned model pruned of the stem’s concepts with the masked model’s logits', async () => {
    const model = await storedModel(run);
    // a bottleneck's inner convs feed or are grouped convs: their channels are masked, not removed; the stem
    // and the residual streams (named by their additions, every sum of the fixture's stages) are removable
    expect(removableLayers(model)).toEqual([
      'conv1',
      'layer1.0.add',
      'layer2.0.add',
      'layer2.1.add',
      'layer3.0.add',
      'layer4.0.add',
    ]);
    const row = run.result.pruning.rows.find((r) => r.layer === 'layer2.1.conv1')!;
    await expectCrpErrorAsync(
      () => exportPruned(model, ChannelMask.of({ 'layer2.1.conv1': row.concepts })),
      'unsupported-model',
      "they reach 'layer2.1.conv2' (GroupedConv2D), a grouped convolution",
    );
    const images = await studyImages(data);
    // the stem's two most relevant concepts of the class 'mitosis' in the global atlas
    const top = run.result.atlas.layers.conv1!.ranking.slice(0, 2).map((e) => e.concept);
    await expectExportAsMasked(model, images.images, ChannelMask.of({ conv1: top }), (pruned) => {
      expect(pruned.getLayer('conv1').getWeights()[0]!.shape).toEqual([7, 7, 3, 6]);
    });
    disposeDataset(images);
    model.dispose();
  });
});
