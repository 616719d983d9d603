import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attribute, disposeResult } from '@crp/lrp';
import { preprocess } from '@crp/models';
import { fileSystem } from '@crp/models/node';
import { createRaster } from '@crp/vis';
import { readPng, writePng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crp } from './run.js';

let dir: string;
let modelDir: string;
const images: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crp-cli-'));
  await tf.setBackend('cpu'); // only to build and save the fixture model; the CLI picks its own backend
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [12, 12, 3],
        filters: 4,
        kernelSize: 3,
        padding: 'same',
        name: 'conv1',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
      }),
      tfl.layers.reLU({ name: 'relu1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({
        units: 3,
        name: 'logits',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
      }),
    ],
  });
  modelDir = join(dir, 'model');
  await model.save(fileSystem(modelDir));
  model.dispose();
  for (const [k, name] of ['a.png', 'b.png'].entries()) {
    const img = createRaster(16, 16, 3);
    for (let i = 0; i < img.data.length; i++) img.data[i] = (i * (7 + k * 5)) % 251;
    const path = join(dir, name);
    await writePng(path, img);
    images.push(path);
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('crp explain', () => {
  it('writes a heatmap and an overlay per image and reports the same relevance as the library', async () => {
    const out = join(dir, 'out');
    const { code, stdout, stderr } = await crp(
      'explain',
      '--model',
      modelDir,
      ...images,
      '--target',
      '1',
      '--out',
      out,
      '--json',
    );
    expect(code, stderr).toBe(0);
    const parsed = JSON.parse(stdout) as {
      backend: string;
      result: { image: string; target: number; relevanceSum: number; heatmap: string; overlay: string }[];
    };
    expect(parsed.backend).toBe('wasm');
    expect(parsed.result).toHaveLength(2);
    for (const r of parsed.result) {
      expect(r.target).toBe(1);
      expect(existsSync(r.heatmap) && existsSync(r.overlay)).toBe(true);
      const heat = await readPng(r.heatmap);
      expect([heat.width, heat.height]).toEqual([12, 12]); // the model's input size
      const overlay = await readPng(r.overlay);
      expect([overlay.width, overlay.height]).toEqual([16, 16]); // the image's own size
    }
    // the same image through the library: preprocess to the model's 12x12 input as the CLI does, then LRP for
    // class 1
    const model = await tfl.loadLayersModel(fileSystem(modelDir));
    const img = await readPng(images[0]!);
    const x = preprocess(img, { inputSize: [12, 12] });
    const direct = attribute(model, x, { composite: 'epsilon_plus_flat', target: 1 });
    const sum = tf.sum(direct.relevance).dataSync()[0]!;
    expect(parsed.result[0]!.relevanceSum).toBeCloseTo(sum, 5);
    disposeResult(direct);
    x.dispose();
    model.dispose();
  });

  it('explains the predicted class by default and prints one line per image', async () => {
    const { code, stdout } = await crp(
      'explain',
      '--model',
      join(modelDir, 'model.json'),
      images[1]!,
      '--out',
      join(dir, 'out2'),
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/b\.png: class \d \(predicted \d, logit -?\d+\.\d{3}\)/);
  });

  it('keeps the PNGs of images of the same name from different folders apart', async () => {
    // a class-per-folder data set: a/0.png and b/0.png (different pictures)
    const same = [join(dir, 'same', 'a', '0.png'), join(dir, 'same', 'b', '0.png')];
    await writePng(same[0]!, await readPng(images[0]!));
    await writePng(same[1]!, await readPng(images[1]!));
    const out = join(dir, 'out-same');
    const { code, stdout, stderr } = await crp(
      'explain',
      '--model',
      modelDir,
      ...same,
      '--out',
      out,
      '--json',
    );
    expect(code, stderr).toBe(0);
    const result = (JSON.parse(stdout) as { result: { heatmap: string; overlay: string }[] }).result;
    expect(result.map((r) => r.heatmap)).toEqual([
      join(out, 'a_0.heatmap.png'),
      join(out, 'b_0.heatmap.png'),
    ]);
    expect(result.map((r) => r.overlay)).toEqual([
      join(out, 'a_0.overlay.png'),
      join(out, 'b_0.overlay.png'),
    ]);
    // each overlay is its own image's (16x16 originals, so the overlays differ where the pictures do)
    const [first, second] = [await readPng(result[0]!.overlay), await readPng(result[1]!.overlay)];
    expect(Buffer.from(first.data).equals(Buffer.from(second.data))).toBe(false);
  });

  it('refuses a missing image before any other image is explained', async () => {
    const out = join(dir, 'out-missing');
    const { code, stderr } = await crp(
      'explain',
      '--model',
      modelDir,
      images[0]!,
      join(dir, 'nope.png'),
      '--out',
      out,
    );
    expect(code).toBe(1);
    expect(stderr).toContain(`cannot read the image '${join(dir, 'nope.png')}': it does not exist`);
    expect(existsSync(join(out, 'a.heatmap.png'))).toBe(false);
  });

  it('says what is wrong: usage errors exit 2 with the valid values', async () => {
    expect((await crp('nonsense')).code).toBe(2);
    const noModel = await crp('explain', images[0]!);
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toMatch(/--model is required/);
    const missing = await crp('explain', '--model', join(dir, 'nope'), images[0]!);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/model not found/);
    const composite = await crp('explain', '--model', modelDir, images[0]!, '--composite', 'bogus');
    expect(composite.code).toBe(2);
    expect(composite.stderr).toMatch(/valid names: epsilon_plus, epsilon_plus_flat/);
  });
});

describe('crp layers', () => {
  it('lists layers with shapes and the rule each one gets', async () => {
    const { code, stdout } = await crp('layers', '--model', modelDir, '--json');
    expect(code).toBe(0);
    const rows = JSON.parse(stdout).result as { name: string; rule: string; outputShape: number[] }[];
    expect(rows.map((r) => [r.name, r.rule])).toEqual([
      ['conv1_input', 'gradient'],
      ['conv1', 'Flat'],
      ['relu1', 'Pass'],
      ['pool1', 'gradient'],
      ['flatten', 'gradient'],
      ['logits', 'Epsilon'],
    ]);
    expect(rows[1]!.outputShape).toEqual([12, 12, 4]);
  });
});
