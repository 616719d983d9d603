import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSystem } from '@crp/models/node';
import { createRaster } from '@crp/vis';
import { writePng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluationPlots, featuresInStep } from '../src/commands/evaluate.js';
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
      'b',
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
    expect([written.model, written.data, written.region, written.target]).toEqual([
      modelDir,
      dataDir,
      'center:4',
      1,
    ]);
    expect(written.results.epsilon_plus_flat.PixelFlipping.curves).toHaveLength(3);
    for (const p of result.plots) expect(existsSync(p)).toBe(true);
  });

  it('a misspelt metric is a usage error listing the nearest names (exit 2); a class without images: exit 1', async () => {
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
    // a class of the model without images in --data: the data cannot be evaluated (exit 1)
    const oneClass = join(dir, 'one-class');
    await mkdir(join(oneClass, 'a'), { recursive: true });
    await mkdir(join(oneClass, 'b'), { recursive: true });
    await writePng(join(oneClass, 'a', '0.png'), createRaster(8, 8, 3));
    const none = await crp(
      'evaluate',
      '--model',
      modelDir,
      '--data',
      oneClass,
      '--target',
      'b',
      '--out',
      out,
    );
    expect(none.code, none.stderr).toBe(1);
    expect(none.stderr).toContain("one-class/b' has no images");
    expect(existsSync(join(out, 'evaluation.json'))).toBe(false);
  });

  it('a mistake of the command line is a usage error (exit 2) before any work; --out stays absent', async () => {
    const out = join(dir, 'usage');
    const run = (...extra: string[]) =>
      crp('evaluate', '--model', modelDir, '--data', dataDir, '--target', '1', '--out', out, ...extra);
    const cases: [string[], string][] = [
      [['--region', 'center:9'], '--region center:9 does not fit the 8x8 input'],
      [['--region', 'box:6,0,4,4'], '--region box:6,0,4,4 does not fit the 8x8 input'],
      [['--metrics', 'PointingGame,Sparseness'], '--metrics: PointingGame needs --region'],
      [['--metrics', ','], '--metrics names no metric; valid: PixelFlipping'],
      [['--composite', 'epsilon_plus'], 'takes --composites LIST (comma-separated), not --composite'],
      [['--composites', 'epsilon_plus,foo'], "unknown composite 'foo' in --composites"],
    ];
    for (const [extra, message] of cases) {
      const r = await run(...extra);
      expect(r.code, extra.join(' ')).toBe(2);
      expect(r.stderr).toContain(message);
    }
    const classless = await crp(
      'evaluate',
      '--model',
      modelDir,
      '--data',
      dataDir,
      '--target',
      '5',
      '--out',
      out,
    );
    expect(classless.code).toBe(2);
    expect(classless.stderr).toContain("--target: target '5' is not a class; valid: 0 (a), 1 (b)");
    expect(existsSync(out)).toBe(false);
  });

  it('an --out that cannot be written fails (exit 1) before the evaluation, naming the option', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'kept');
    const r = await crp('evaluate', '--model', modelDir, '--data', dataDir, '--target', '1', '--out', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--out: cannot write '${file}': it is a file, not a folder`);
    expect(r.stderr).not.toContain('PixelFlipping');
    expect(await readFile(file, 'utf8')).toBe('kept');
  });

  it('the plots leave out points without a finite value (an MPRT similarity of a constant map is NaN)', () => {
    const plots = evaluationPlots({
      methods: ['lrp'],
      metrics: ['MPRT'],
      results: {
        lrp: {
          MPRT: {
            metric: 'MPRT',
            scores: [Number.NaN, 0.5],
            aggregate: Number.NaN,
            layers: { original: [1, 1], dense: [0.8, 0.6], conv: [Number.NaN, Number.NaN] },
            higherIsBetter: false,
          },
        },
      },
    });
    expect(plots.map((p) => p.file)).toEqual(['mprt.svg']);
    // a Spearman correlation is no percentage
    expect(JSON.stringify(plots[0]!.spec)).toContain('"axis":{"format":".1f"}');
    const values = (plots[0]!.spec as { data: { values: { fraction: number; accuracy: number }[] } }).data
      .values;
    expect(values.map((v) => [v.fraction, v.accuracy])).toEqual([
      [0, 1],
      [0.5, 0.7],
    ]);
  });

  it('the pixel-flipping step divides H * W', () => {
    expect(featuresInStep(8, 8, 3, 8)).toBe(32);
    expect(featuresInStep(224, 224, 3, 196)).toBe(784);
  });
});
