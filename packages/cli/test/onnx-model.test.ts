import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { referencePath } from '@crp/testing/reference';
import { afterAll, describe, expect, it } from 'vitest';
import { crp } from './run.js';

/** `--model model.onnx` (fixtures of scripts/golden/onnx/make_onnx_golden.py): bad input exits 1, usage 2. */
const MODELS = referencePath('onnx', 'models');
const tmp = mkdtempSync(join(tmpdir(), 'crp-cli-onnx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('crp with --model model.onnx', () => {
  it("lists an ONNX model's layers under PyTorch's module names, with their rules", async () => {
    const { code, stdout } = await crp('layers', '--model', join(MODELS, 'se_net.onnx'), '--json');
    expect(code).toBe(0);
    const rows = JSON.parse(stdout).result as { name: string; rule: string; outputShape: number[] }[];
    expect(rows.map((r) => `${r.name}:${r.rule}`)).toEqual([
      'input:gradient',
      'features.0:Flat',
      'features.2:Pass',
      // the ResNet canonizer's mergeZeroPadding folds this padding into features.3 (PyTorch's padded conv), so
      // the padding node is an identity that passes relevance on
      'features.3.pad:Pass',
      'features.3:ZPlus',
      'features.5:Pass',
      'features.6.avgpool:Norm',
      'features.6.fc1.unsqueeze:gradient',
      'features.6.fc1:ZPlus',
      'features.6.relu:Pass',
      'features.6.fc2:ZPlus',
      'features.6.sigmoid:Pass',
      'features.6.mul:PassToFeature',
      'features.7:Pass',
      'avgpool:Norm',
      'classifier.0:Epsilon',
      'classifier.1:Pass',
      'classifier.3:Epsilon',
    ]);
  });

  it('a dynamic input size without --input-size exits 1 and says how to fix it; with it, works', async () => {
    const dynamic = join(MODELS, 'se_net_dynamic.onnx');
    const bad = await crp('layers', '--model', dynamic);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/dynamic height .* give the input size: .*--input-size HxW/);
    expect((await crp('layers', '--model', dynamic, '--input-size', '16')).code).toBe(0);
  });

  it('missing external data exits 1 (bad input), a missing model 2 (usage), an unsupported operator 1', async () => {
    copyFileSync(join(MODELS, 'se_net_external.onnx'), join(tmp, 'se_net_external.onnx'));
    const external = await crp('layers', '--model', join(tmp, 'se_net_external.onnx'));
    expect(external.code).toBe(1);
    expect(external.stderr).toMatch(/external file 'se_net_external.onnx.data', which was not found/);
    expect((await crp('layers', '--model', join(tmp, 'none.onnx'))).code).toBe(2);
    const unsupported = await crp('layers', '--model', join(MODELS, 'unsupported_softplus.onnx'));
    expect(unsupported.code).toBe(1);
    expect(unsupported.stderr).toMatch(/operator Softplus is not supported. Supported operators: Conv, /);
  });
});
