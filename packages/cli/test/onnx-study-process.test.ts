import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { importOnnx, parseOnnxModel } from '@crp/models';
import { loadModel } from '@crp/models/node';
import type { StudyResult } from '@crp/study';
import '@tensorflow/tfjs-backend-wasm';
import { referencePath } from '@crp/testing/reference';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `crp study --model x.onnx` as a user runs it: the built `crp` (dist/bin.js) in its own process, its exit code
 * and what it leaves in --out, among it the fine-tuned model as `model.onnx` (the source graph, fine-tuned weights). The model is the slim torchvision ResNet of @crp/models exported by
 * torch.onnx.export with its defaults (batch norms folded, weights named `onnx::Conv_<n>`;
 * packages/models/fixtures-src/make-slim-resnets.py). A truncated file and an unsupported operator exit 1 with the
 * operator, the node and the supported list, and leave nothing in --out.
 */
const run = promisify(execFile);
const here = import.meta.dirname;
const BIN = resolve(here, '..', 'dist', 'bin.js');
const RESNET = resolve(here, '..', '..', 'models', 'test', 'fixtures', 'onnx', 'slim-resnet-basic.onnx');
const SOFTPLUS = referencePath('onnx', 'models', 'unsupported_softplus.onnx');
const PATCHES = resolve(here, '..', '..', 'study', 'test', 'fixtures', 'patches');
let dir: string;

beforeAll(async () => {
  // only to read the written models back; the spawned crp picks its own backend
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  dir = await mkdtemp(join(tmpdir(), 'crp-onnx-process-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `crp study` in a child process; resolves with its exit code and output (never rejects). */
async function study(model: string, out: string, inputSize = '32') {
  const args = [
    BIN,
    'study',
    '--model',
    model,
    '--data',
    PATCHES,
    '--target',
    'mitosis',
    '--input-size',
    inputSize,
    '--normalize',
    'imagenet',
    '--samples',
    '4',
    '--region',
    'center:12',
    '--layers',
    'layer1.0.conv1,layer2.0.downsample.0,layer4.0.conv2',
    '--prune-layers',
    'layer1.0.conv1,layer4.0.conv2',
    '--prune-k',
    '1',
    '--reference-layers',
    'layer4.0.conv2',
    '--fine-tune',
    '1',
    '--learning-rate',
    '1e-3',
    '--limit-per-class',
    '10',
    '--out',
    out,
    '--threads',
    '1',
  ];
  const { CRP_DEBUG: _, ...env } = process.env;
  try {
    const { stdout, stderr } = await run(process.execPath, args, { env, maxBuffer: 1 << 26 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Every file under `d`, relative, sorted; [] when `d` does not exist. */
async function filesUnder(d: string): Promise<string[]> {
  if (!existsSync(d)) return [];
  const entries = await readdir(d, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(d.length + 1))
    .sort();
}

describe('crp study --model x.onnx, the built command in its own process', () => {
  it('exits 0 and writes study.json with PyTorch’s names, the report, its pictures and the model', async () => {
    const out = join(dir, 'resnet');
    const r = await study(RESNET, out);
    expect(r.stderr).not.toMatch(/at .*\.[jt]s:\d+/);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(await readFile(join(out, 'study.json'), 'utf8')) as StudyResult;
    expect(s.model.name).toBe('slim-resnet-basic.onnx');
    // PyTorch's module names from the exporter's node scopes, not the ONNX initializers' `onnx::Conv_<n>`
    expect(s.model.layers).toEqual(['layer1.0.conv1', 'layer2.0.downsample.0', 'layer4.0.conv2']);
    expect(JSON.stringify(s)).not.toMatch(/onnx::/);
    // every section of the study is there
    for (const key of [
      'fineTune',
      'evaluation',
      'atlas',
      'regionAtlas',
      'decomposition',
      'references',
      'pruning',
    ])
      expect(s, key).toHaveProperty(key);
    expect(s.fineTune!.history).toHaveLength(1);
    expect(Object.keys(s.atlas.layers).sort()).toEqual([...s.model.layers].sort());
    expect(Object.keys(s.regionAtlas.layers).sort()).toEqual([...s.model.layers].sort());
    expect(s.references.map((x) => x.layer)).toEqual(['layer4.0.conv2']);
    expect(s.pruning.summary.map((x) => x.layer)).toEqual(['layer1.0.conv1', 'layer4.0.conv2']);
    const files = await filesUnder(out);
    expect(files).toEqual(
      expect.arrayContaining(['report.html', 'study.json', 'model/model.json', 'model.onnx']),
    );
    // the fine-tuned model back in the user's format: the source graph with the fine-tuned weights
    const source = new Uint8Array(await readFile(RESNET));
    const written = new Uint8Array(await readFile(join(out, 'model.onnx')));
    const [src, tuned] = [parseOnnxModel(source), parseOnnxModel(written)];
    expect(tuned.graph.nodes).toEqual(src.graph.nodes);
    expect(tuned.opsets).toEqual(src.opsets);
    expect(written).not.toEqual(source); // fine-tuned weights
    const stored = await loadModel(join(out, 'model'));
    const back = importOnnx(written);
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 3);
    const [a, b] = [stored.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
    const [ya, yb] = [a.dataSync(), b.dataSync()];
    const scale = Math.max(...Array.from(ya, Math.abs));
    for (let i = 0; i < ya.length; i++) expect(Math.abs(ya[i]! - yb[i]!)).toBeLessThan(1e-5 * scale);
    tf.dispose([x, a, b]);
    stored.dispose();
    back.dispose();
    expect(files.some((f) => f.endsWith('.png'))).toBe(true);
    // whole files only
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    expect(html).toContain('layer4.0.conv2');
  }, 600_000);

  it('a truncated .onnx exits 1, says the file is damaged, and writes nothing', async () => {
    const broken = join(dir, 'broken.onnx');
    const bytes = await readFile(RESNET);
    await writeFile(broken, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const out = join(dir, 'broken-out');
    const r = await study(broken, out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not a valid ONNX model: .* at byte \d+ of \d+ \(the file may be truncated/);
    expect(r.stderr).not.toMatch(/at .*\.[jt]s:\d+/);
    expect(await filesUnder(out)).toEqual([]);
  }, 120_000);

  it('an unsupported operator exits 1 with the operator, the node and the supported list, and writes nothing', async () => {
    const out = join(dir, 'softplus-out');
    const r = await study(SOFTPLUS, out, '16');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /ONNX node '[^']*Softplus[^']*' \(Softplus\): operator Softplus is not supported/,
    );
    expect(r.stderr).toMatch(/Supported operators: Conv, .*BatchNormalization/);
    expect(await filesUnder(out)).toEqual([]);
  }, 120_000);
});
