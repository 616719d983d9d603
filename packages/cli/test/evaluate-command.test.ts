import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSystem } from '@crp/models/node';
import { createRaster } from '@crp/vis';
import { writePng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { featuresInStep } from '../src/commands/evaluate.js';
import { crp, resultOf } from './run.js';

let dir: string;
let modelDir: string;
let dataDir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crp-evaluate-'));
  await tf.setBackend('cpu');
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [8, 8, 3],
        filters: 4,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        name: 'conv1',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
      }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({
        units: 2,
        name: 'logits',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
      }),
    ],
  });
  modelDir = join(dir, 'model');
  await model.save(fileSystem(modelDir));
  model.dispose();
  dataDir = join(dir, 'data');
  for (const [k, cls] of ['a', 'b'].entries()) {
    await mkdir(join(dataDir, cls), { recursive: true });
    for (let j = 0; j < 3; j++) {
      const img = createRaster(8, 8, 3);
      for (let i = 0; i < img.data.length; i++) img.data[i] = (i * (7 + k * 5 + j * 3)) % 251;
      await writePng(join(dataDir, cls, `${j}.png`), img);
    }
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('crp evaluate', () => {
  it('writes evaluation.json and the plots, one entry per method and metric', async () => {
    const out = join(dir, 'out');
    const args = [
      '--model',
      modelDir,
      '--data',
      dataDir,
      '--target',
      '1',
      '--region',
      'center:4',
      '--steps',
      '8',
    ];
    const { code, stdout, stderr } = await crp('evaluate', ...args, '--out', out, '--json');
    expect(code, stderr).toBe(0);
    const result = resultOf<{
      file: string;
      plots: string[];
      samples: number;
      summary: Record<string, Record<string, number>>;
    }>(stdout);
    expect(result.samples).toBe(3);
    expect(Object.keys(result.summary)).toEqual([
      'epsilon_plus_flat',
      'epsilon_alpha2_beta1',
      'gradient_x_input',
      'random',
    ]);
    expect(Object.keys(result.summary.random!)).toEqual([
      'PixelFlipping',
      'MPRT',
      'Sparseness',
      'RelevanceMassAccuracy',
    ]);
    // the random map does not depend on the model: randomising every layer leaves it as it was
    expect(result.summary.random!.MPRT).toBeCloseTo(1, 12);
    const written = JSON.parse(await readFile(result.file, 'utf8'));
    expect(written.featuresInStep).toBe(featuresInStep(8, 8, 3, 8));
    expect(written.results.epsilon_plus_flat.PixelFlipping.curves).toHaveLength(3);
    for (const p of result.plots) expect(existsSync(p)).toBe(true);
  });

  it('a misspelt metric is a usage error listing the nearest names (exit 2); no class images: exit 1', async () => {
    const out = join(dir, 'bad');
    const bad = await crp(
      'evaluate',
      '--model',
      modelDir,
      '--data',
      dataDir,
      '--target',
      '1',
      '--metrics',
      'PixelFliping',
      '--out',
      out,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown metric 'PixelFliping'; did you mean PixelFlipping");
    const none = await crp('evaluate', '--model', modelDir, '--data', dataDir, '--target', '7', '--out', out);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no images of class 7');
    expect(existsSync(join(out, 'evaluation.json'))).toBe(false);
  });

  it('the pixel-flipping step divides H * W', () => {
    expect(featuresInStep(8, 8, 3, 8)).toBe(32);
    expect(featuresInStep(224, 224, 3, 196)).toBe(784);
  });
});
