import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { referencePath } from '@crp/testing/reference';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crp } from './run.js';

/** `crp study --model model.onnx`: the whole study (fine-tuning, evaluation, atlases, references, pruning) on a
 * DenseNet-like CNN exported by torch.onnx (vendor/reference/onnx, made by scripts/golden/onnx). */
const MODEL = referencePath('onnx', 'models', 'densenet_like_2class_48.onnx');
const PATCHES = join(import.meta.dirname, '..', '..', 'study', 'test', 'fixtures', 'patches');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crp-onnx-study-'));
  await cp(PATCHES, join(dir, 'patches'), { recursive: true });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('crp study on an ONNX model', () => {
  it("runs every part on a DenseNet-like model; its conv layers and its dense block's output under PyTorch's module names", async () => {
    const out = join(dir, 'out');
    const r = await crp(
      'study',
      '--model',
      MODEL,
      '--data',
      join(dir, 'patches'),
      '--target',
      'mitosis',
      '--normalize',
      'imagenet',
      '--samples',
      '6',
      '--region',
      'center:16',
      '--fine-tune',
      '1',
      '--out',
      out,
    );
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
    expect(r.code).toBe(0);
    const json = JSON.parse(await readFile(join(out, 'study.json'), 'utf8')) as {
      model: { layers: string[] };
      pruning: { rows: unknown[] };
      references: unknown[];
    };
    expect(json.model.layers).toEqual([
      'features.conv0',
      'features.denseblock1.denselayer1.conv1',
      'features.denseblock1.denselayer2.conv1',
      // the dense block's output, its last concatenation (the study's default for each stage of a CNN with branches)
      'features.denseblock1.denselayer2.concat',
      'features.transition1.conv',
    ]);
    expect(json.references.length).toBeGreaterThan(0);
    expect(json.pruning.rows.length).toBeGreaterThan(0);
  });
});
