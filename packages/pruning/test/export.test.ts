import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModel, saveModel } from '@crp/models/node';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChannelMask, compareCost, exportPruned, MaskedModel, modelCost } from '../src/index.js';
import { squares, squaresNet } from './data.js';
import {
  expectClose,
  expectCrpError,
  mulberry32,
  predictValues,
  tinyImages,
  tinyModel,
  uniform,
  useBackend,
  values,
} from './helpers.js';

useBackend('wasm');

const OUT = 'test-artifacts/export';

beforeAll(async () => {
  await rm(OUT, { recursive: true, force: true });
  await mkdir(OUT, { recursive: true });
});

/** Gives every batch norm non-trivial statistics (an untrained net has mean 0, variance 1). */
function randomizeBatchNorms(model: tfl.LayersModel, seed = 5): void {
  const rng = mulberry32(seed);
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const ranges = [
      [0.5, 1.5],
      [-0.3, 0.3],
      [-0.2, 0.2],
      [0.5, 2],
    ];
    const made = layer
      .getWeights()
      .map((w, i) => tf.tensor(uniform(rng, w.size, ...(ranges[i] as [number, number])), w.shape));
    layer.setWeights(made);
    for (const t of made) t.dispose();
  }
}

describe('exportPruned', () => {
  it('removes filters, next-layer input channels, BN entries and dense rows (tiny functional model)', async () => {
    const model = tinyModel();
    const mask = ChannelMask.of({ conv1: [1, 3], conv2: [0], dense1: [2] });
    const pruned = await exportPruned(model, mask);
    const shapes = Object.fromEntries(pruned.layers.map((l) => [l.name, l.getWeights().map((w) => w.shape)]));
    expect(shapes).toEqual({
      image: [],
      conv1: [[3, 3, 3, 2], [2]],
      bn1: [[2], [2], [2], [2]],
      relu1: [],
      conv2: [[3, 3, 2, 5], [5]],
      pool: [],
      flat: [],
      dense1: [[45, 4], [4]],
      dense2: [[4, 3], [3]],
    });
    expect(pruned.countParams()).toBe(modelCost(model, mask).params);
    // dense1's new row (q, k) is the old row q * 6 + kept[k] (kept conv2 channels 1..5), units 0, 1, 3, 4
    const oldK = values(model.getLayer('dense1').getWeights()[0]!);
    const newK = values(pruned.getLayer('dense1').getWeights()[0]!);
    const keptUnits = [0, 1, 3, 4];
    for (let q = 0; q < 9; q++) {
      for (let k = 0; k < 5; k++) {
        keptUnits.forEach((u, j) => {
          expect(newK[(q * 5 + k) * 4 + j]).toBe(oldK[(q * 6 + k + 1) * 5 + u]);
        });
      }
    }
    const masked = await MaskedModel.create(model, mask);
    const x = tinyImages(4);
    expectClose(predictValues(pruned, x), predictValues(masked.model, x), 1e-5);
    masked.dispose();
    pruned.dispose();
    x.dispose();
  });

  it('computes what the masked model computes (Sequential conv net with BN), saves smaller, loads back', async () => {
    const model = squaresNet(3);
    randomizeBatchNorms(model);
    const mask = ChannelMask.of({
      conv1: [0, 2, 5],
      conv2: [1, 2, 3, 4, 5, 6],
      fc1: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    });
    const pruned = await exportPruned(model, mask);
    const masked = await MaskedModel.create(model, mask);
    const { images: x } = squares(32, 9);
    const expected = predictValues(masked.model, x);
    expectClose(predictValues(pruned, x), expected, 1e-5);
    // the user's model still computes something else
    expect(predictValues(model, x)).not.toEqual(expected);

    const cost = compareCost(model, mask);
    expect(pruned.countParams()).toBe(cost.after.params);
    expect(model.countParams()).toBe(cost.before.params);
    const before = await saveModel(model, join(OUT, 'original'));
    const after = await saveModel(pruned, join(OUT, 'pruned'));
    expect(before.weightBytes).toBe(4 * cost.before.params);
    expect(after.weightBytes).toBe(4 * cost.after.params);
    const reduction = 1 - after.totalBytes / before.totalBytes;
    console.log(
      `export: ${cost.before.params} -> ${cost.after.params} parameters, ${cost.before.flops} -> ${cost.after.flops} multiply-adds, ${before.totalBytes} -> ${after.totalBytes} bytes on disk (${(100 * reduction).toFixed(1)}% smaller)`,
    );
    expect(reduction).toBeGreaterThan(0.4);

    const loaded = await loadModel(join(OUT, 'pruned'));
    expect(predictValues(loaded, x)).toEqual(predictValues(pruned, x));
    // saving again replaces the directory atomically and leaves no temporary directories behind
    await saveModel(pruned, join(OUT, 'pruned'));
    expect((await readdir(OUT)).sort()).toEqual(['original', 'pruned']);
    expect((await readdir(join(OUT, 'pruned'))).sort()).toEqual(['model.json', 'weights.bin']);
    for (const m of [loaded, pruned, model]) m.dispose();
    masked.dispose();
    x.dispose();
  });

  it('leaks no tensors', async () => {
    const model = tinyModel();
    const mask = ChannelMask.of({ conv1: [0], dense1: [1, 2] });
    const start = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const pruned = await exportPruned(model, mask);
      pruned.dispose();
    }
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  });

  it('refuses what it cannot remove and leaves nothing half-written', async () => {
    const model = tinyModel();
    await expectCrpError(
      () => exportPruned(model, ChannelMask.of({ dense2: [1] })),
      'unsupported-model',
      'output',
    );
    await expectCrpError(() => exportPruned(model, ChannelMask.of({ conv9: [1] })), 'unknown-layer', 'conv1');
    const input = tfl.input({ shape: [4, 4, 2] });
    const a = tfl.layers
      .conv2d({ filters: 3, kernelSize: 1, activation: 'sigmoid', name: 'sig' })
      .apply(input) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 2 }).apply(tfl.layers.flatten().apply(a)) as tfl.SymbolicTensor;
    const sigmoidModel = tfl.model({ inputs: input, outputs: out });
    await expectCrpError(
      () => exportPruned(sigmoidModel, ChannelMask.of({ sig: [0] })),
      'unsupported-model',
      "activation 'sigmoid'",
    );
    // a directory below a file cannot be created: a CrpError, no temporary directory left
    await writeFile(join(OUT, 'a-file'), 'x');
    await expectCrpError(
      () => saveModel(model, join(OUT, 'a-file', 'model')),
      'write-failed',
      'could not save',
    );
    expect((await readdir(OUT)).filter((n) => n.includes('.tmp'))).toEqual([]);
    await rm(join(OUT, 'a-file'));
    sigmoidModel.dispose();
  });
});

afterAll(() => {
  expect(tf.getBackend()).toBe('wasm');
});

describe("PyTorch's adaptive average pool (imported VGGs at any input size)", () => {
  it('passes channels through: masking and the physical export agree on a model with overlapping windows', async () => {
    const { adaptiveAveragePooling2d } = await import('@crp/models');
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({
          inputShape: [10, 10, 2],
          filters: 4,
          kernelSize: 3,
          padding: 'same',
          name: 'c1',
        }),
        tfl.layers.reLU({ name: 'r1' }),
        tfl.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', name: 'c2' }),
        tfl.layers.reLU({ name: 'r2' }),
        // 10x10 -> 3x3: windows of 4 rows that overlap, as PyTorch's AdaptiveAvgPool2d
        adaptiveAveragePooling2d({ outputSize: 3, name: 'avgpool' }),
        tfl.layers.flatten({ name: 'flatten' }),
        tfl.layers.dense({ units: 3, name: 'fc' }),
      ],
    });
    const rng = mulberry32(12);
    for (const layer of model.layers) {
      const ws = layer.getWeights();
      if (ws.length === 0) continue;
      const made = ws.map((w) => tf.tensor(Array.from(uniform(rng, w.size, -0.5, 0.5)), w.shape));
      layer.setWeights(made);
      tf.dispose(made);
    }
    const mask = ChannelMask.of({ c2: [1, 3], c1: [0] });
    const masked = await MaskedModel.create(model);
    masked.setMask(mask);
    const small = await exportPruned(model, mask);
    const x = tf.tensor4d(Array.from(uniform(mulberry32(3), 2 * 10 * 10 * 2, 0, 1)), [2, 10, 10, 2]);
    const want = predictValues(masked.model, x);
    expectClose(predictValues(small, x), want, 1e-5);
    // the export is smaller: 2 of 5 channels of c2 and 1 of 4 of c1 gone, and fc reads 9 positions fewer x 2
    expect((small.getLayer('fc').getWeights()[0]!.shape as number[])[0]).toBe(3 * 3 * 3);
    tf.dispose(x);
    masked.dispose();
    small.dispose();
    model.dispose();
  });
});
