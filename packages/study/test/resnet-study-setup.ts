/**
 * Shared setup of the ResNet study tests: the slim torchvision ResNets of @crp/models (made by torch:
 * packages/models/fixtures-src/make-slim-resnets.py, whose logits the models tests check), the study run on them as
 * `crp study --model <file>` runs it (`studyFiles`) at 32 pixels on the study's patch fixture, and the checks every
 * ResNet study shares.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Dataset, IMAGENET } from '@crp/models';
import { imageFolder, loadModel } from '@crp/models/node';
import { type ChannelMask, exportPruned, MaskedModel } from '@crp/pruning';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, expect } from 'vitest';
import type { StudyOptions, StudyResult } from '../src/index.js';
import { studyFiles } from '../src/node.js';

export const FIXTURES = join(import.meta.dirname, 'fixtures');
const MODELS = join(import.meta.dirname, '..', '..', 'models', 'test', 'fixtures');

/** A slim ResNet fixture of @crp/models: `slim-resnet-basic` or `slim-resnet-bottleneck`, as .pth or .onnx. */
export function slimResNet(name: 'basic' | 'bottleneck', format: 'pth' | 'onnx'): string {
  return join(MODELS, format, `slim-resnet-${name}.${format}`);
}

/** The options every ResNet study test shares: 6 samples, 1 epoch of fine-tuning, 2 concepts pruned. */
export const STUDY_OPTIONS = {
  target: 'mitosis',
  inputSize: 32,
  ...IMAGENET,
  samples: 6,
  region: { centerSquare: 12 },
  topK: 3,
  fineTune: 1,
  learningRate: 1e-3,
  pruneConcepts: 2,
  referenceSamples: 2,
} as const;

/** A study run into a fresh temporary folder; `cleanup` removes it. */
export interface StudyRun {
  out: string;
  result: StudyResult;
  cleanup(): Promise<void>;
}

/** Runs the study of `model` on `data` (default: the two-class patch fixture) with {@link STUDY_OPTIONS} and
 * `options`. */
export async function runResNetStudy(
  model: string,
  options: Partial<StudyOptions>,
  data = join(FIXTURES, 'patches'),
): Promise<StudyRun> {
  const out = await mkdtemp(join(tmpdir(), 'crp-study-resnet-'));
  const run = await studyFiles({
    model,
    data,
    out,
    ...STUDY_OPTIONS,
    ...options,
  });
  const result = JSON.parse(await readFile(run.json, 'utf8')) as StudyResult;
  return { out, result, cleanup: () => rm(out, { recursive: true, force: true }) };
}

/** {@link runResNetStudy} before the calling file's (or describe block's) tests, its output removed after them: the
 * run's fields are there when the tests read them. */
export function useResNetStudy(model: string, options: Partial<StudyOptions>): StudyRun {
  const run = {} as StudyRun;
  beforeAll(async () => {
    Object.assign(run, await runResNetStudy(model, options));
  });
  afterAll(async () => {
    // a failed run has nothing to remove
    if (run.cleanup !== undefined) await run.cleanup();
  });
  return run;
}

/** Largest |a - b| relative to the largest |a|. */
export function relativeGap(a: tf.Tensor, b: tf.Tensor): number {
  const [x, y] = [a.dataSync(), b.dataSync()];
  expect(x.length).toBe(y.length);
  let scale = 0;
  let gap = 0;
  for (let i = 0; i < x.length; i++) {
    scale = Math.max(scale, Math.abs(x[i]!));
    gap = Math.max(gap, Math.abs(x[i]! - y[i]!));
  }
  return gap / scale;
}

/** The fine-tuned model the study stored (`model/`, a TF.js model). */
export function storedModel(run: StudyRun): Promise<tfl.LayersModel> {
  return loadModel(join(run.out, 'model'));
}

/** The images of a patch folder (default: the study's fixture) at the study's input: 32 pixels, ImageNet's
 * normalisation. */
export function studyImages(dir = join(FIXTURES, 'patches')): Promise<Dataset> {
  return imageFolder(dir, { inputSize: [32, 32], ...IMAGENET });
}

/**
 * Exports `model` pruned by `mask` and checks that the pruned model's logits on `images` are the masked model's
 * (within 1e-5 of the largest) and that no tensor is left behind. `check` is given the pruned model and the masked
 * model's logits for what a test checks besides (both are disposed after it).
 */
export async function expectExportAsMasked(
  model: tfl.LayersModel,
  images: tf.Tensor,
  mask: ChannelMask,
  check: (pruned: tfl.LayersModel, maskedLogits: tf.Tensor) => void = () => {},
): Promise<void> {
  const before = tf.memory().numTensors;
  const masked = await MaskedModel.create(model, mask);
  const pruned = await exportPruned(model, mask);
  const a = masked.model.predict(images) as tf.Tensor;
  try {
    const b = pruned.predict(images) as tf.Tensor;
    expect(relativeGap(a, b)).toBeLessThan(1e-5);
    b.dispose();
    check(pruned, a);
  } finally {
    a.dispose();
    pruned.dispose();
    masked.dispose();
  }
  expect(tf.memory().numTensors).toBe(before);
}

/**
 * What every ResNet study must give: every part run, the atlases over the layers `layers` (PyTorch's module names),
 * the evaluation's accuracy the confusion matrix's trace, the pruning rows of `pruneLayers`, the report written.
 */
export async function expectCompleteStudy(
  run: StudyRun,
  layers: readonly string[],
  pruneLayers: readonly string[],
): Promise<void> {
  const { result, out } = run;
  // the same names from either file; the order is the graph's (torch.onnx.export writes a block's shortcut after
  // its last conv, the .pth importer before)
  expect([...result.options.layers].sort()).toEqual([...layers].sort());
  expect(result.model.layers).toEqual(result.options.layers);
  expect(result.fineTune).toMatchObject({ epochs: 1, trainLayers: 'all' });
  expect(result.fineTune!.history).toHaveLength(1);
  // evaluated on the fine-tuning's held-out split: the accuracy is the confusion matrix's trace
  const m = result.evaluation.confusionMatrix;
  expect(result.evaluation.on).toBe('validation');
  expect(m.flat().reduce((a, b) => a + b, 0)).toBe(result.evaluation.samples);
  const trace = m.reduce((s, row, i) => s + row[i]!, 0);
  expect(result.evaluation.accuracy).toBeCloseTo(trace / result.evaluation.samples, 12);
  for (const atlas of [result.atlas, result.regionAtlas]) {
    expect(Object.keys(atlas.layers).sort()).toEqual([...layers].sort());
  }
  expect(result.references.every((r) => r.concepts.length > 0)).toBe(true);
  expect(result.pruning.summary.map((s) => s.layer)).toEqual(pruneLayers);
  // each layer, each class: its top 2 concepts pruned
  const classes = result.evaluation.confusionMatrix.length;
  expect(result.pruning.rows.map((r) => `${r.layer}:${r.class}:${r.concepts.length}`).sort()).toEqual(
    pruneLayers.flatMap((l) => Array.from({ length: classes }, (_, c) => `${l}:${c}:2`)).sort(),
  );
  const files = await readdir(out);
  expect(files).toEqual(expect.arrayContaining(['report.html', 'study.json', 'model']));
}

/** The study's default layers on the basic fixture, in the TF.js model's order (a block's shortcut before its
 * conv2), with PyTorch's module names, the same from the .pth and from the .onnx: the convs below the output and each
 * stage's output, its last addition (the output of torchvision's `layer1` ... `layer4`). */
export const BASIC_LAYERS = [
  'conv1',
  'layer1.0.conv1',
  'layer1.0.conv2',
  'layer1.1.conv1',
  'layer1.1.conv2',
  'layer1.1.add',
  'layer2.0.conv1',
  'layer2.0.downsample.0',
  'layer2.0.conv2',
  'layer2.0.add',
  'layer3.0.conv1',
  'layer3.0.downsample.0',
  'layer3.0.conv2',
  'layer3.0.add',
  'layer4.0.conv1',
  'layer4.0.downsample.0',
  'layer4.0.conv2',
  'layer4.0.add',
];

/** Each stage's output of the basic fixture and its two branches (sorted): the last block's conv2 and its shortcut,
 * the previous block's addition (identity) or the stage's downsample. */
export const BASIC_STAGE_OUTPUTS: Record<string, string[]> = {
  'layer1.1.add': ['layer1.0.add', 'layer1.1.conv2'],
  'layer2.0.add': ['layer2.0.conv2', 'layer2.0.downsample.0'],
  'layer3.0.add': ['layer3.0.conv2', 'layer3.0.downsample.0'],
  'layer4.0.add': ['layer4.0.conv2', 'layer4.0.downsample.0'],
};

/** [layer, the layers below (sorted)] of the basic fixture's decomposition atlas: every conv but the stem's (only
 * the input lies below it) and each stage's output. A conv that reads a block's output decomposes into the block's
 * addition (the residual stream's channels: relevance through the ReLU after the sum is unchanged); a conv that
 * reads the stem's pooled map, into the stem's conv; a stage's output into both branches. */
export const BASIC_DECOMPOSITION: [string, string[]][] = [
  ['layer1.0.conv1', ['conv1']],
  ['layer1.0.conv2', ['layer1.0.conv1']],
  ['layer1.1.conv1', ['layer1.0.add']],
  ['layer1.1.conv2', ['layer1.1.conv1']],
  ['layer1.1.add', BASIC_STAGE_OUTPUTS['layer1.1.add']!],
  ['layer2.0.conv1', ['layer1.1.add']],
  ['layer2.0.downsample.0', ['layer1.1.add']],
  ['layer2.0.conv2', ['layer2.0.conv1']],
  ['layer2.0.add', BASIC_STAGE_OUTPUTS['layer2.0.add']!],
  ['layer3.0.conv1', ['layer2.0.add']],
  ['layer3.0.downsample.0', ['layer2.0.add']],
  ['layer3.0.conv2', ['layer3.0.conv1']],
  ['layer3.0.add', BASIC_STAGE_OUTPUTS['layer3.0.add']!],
  ['layer4.0.conv1', ['layer3.0.add']],
  ['layer4.0.downsample.0', ['layer3.0.add']],
  ['layer4.0.conv2', ['layer4.0.conv1']],
  ['layer4.0.add', BASIC_STAGE_OUTPUTS['layer4.0.add']!],
];
