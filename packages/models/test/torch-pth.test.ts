/**
 * A torchvision VGG from `.pth` files, end to end, against PyTorch and zennit (fixtures-src/make-torch-pth.py):
 * logits for inputs of 40 to 224 pixels (every case of the adaptive pool: 5x5, 7x7, 8x8, ... 28x28 maps to 7x7),
 * every file variant, the layouts of torchvision's vgg11..vgg19(_bn), PyTorch's layer names through save and
 * load, and the LRP relevance of zennit's EpsilonPlusFlat where the adaptive pool gets the Norm rule.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '@crp/common';
import { Attributor, epsilonPlusFlat } from '@crp/lrp';
import { expectCrpErrorAsync } from '@crp/testing';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AdaptiveAveragePooling2D,
  adaptiveAveragePooling2d,
  importTorchVgg,
  PthFile,
  registerTrainingKernels,
  type StateDict,
  torchVggLayout,
} from '../src/index.js';
import { fileSystem, readTorchVgg } from '../src/node.js';

const DIR = join(import.meta.dirname, 'fixtures', 'pth');
const json = <T>(name: string) => JSON.parse(readFileSync(join(DIR, name), 'utf8')) as T;
const reference = json<{ sizes: number[]; logits: Record<string, Record<string, number[]>> }>(
  'tiny-vgg.json',
);

let root: string;
beforeAll(async () => {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  root = await mkdtemp(join(tmpdir(), 'crp-torch-pth-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The test image of `size` pixels: NHWC values 2u - 1, u = mulberry32(1000 + size) (as the script makes it). */
function image(size: number): tf.Tensor4D {
  const rng = mulberry32(1000 + size);
  return tf.tensor4d(
    Float32Array.from({ length: size * size * 3 }, () => 2 * rng() - 1),
    [1, size, size, 3],
  );
}

/** max |a - b| / max |b|: the error relative to the largest reference value. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

async function logits(model: tfl.LayersModel, size: number): Promise<Float32Array> {
  const x = image(size);
  const y = model.predict(x) as tf.Tensor;
  const out = (await y.data()) as Float32Array;
  tf.dispose([x, y]);
  return out;
}

/** The pool that each input size needs: none (7x7 already), an average pool (multiples of 7), or the exact one. */
const POOL: Record<number, string | undefined> = {
  40: 'AdaptiveAveragePooling2D', // 5x5 -> 7x7: windows repeat inputs
  56: undefined, // 7x7
  64: 'AdaptiveAveragePooling2D', // 8x8: overlapping windows of 2
  100: 'AdaptiveAveragePooling2D', // 12x12
  128: 'AdaptiveAveragePooling2D', // 16x16
  150: 'AdaptiveAveragePooling2D', // 18x18
  224: 'AveragePooling2D', // 28x28: 4x4 windows
};

describe('importTorchVgg from .pth', () => {
  for (const [file, variant] of [
    ['tiny-vgg.pth', 'plain'],
    ['tiny-vgg-bn.pth', 'bn'],
  ] as const) {
    it(`gives PyTorch's logits for inputs of 40 to 224 pixels: ${file}`, async () => {
      for (const size of reference.sizes) {
        const model = await readTorchVgg(join(DIR, file), { inputSize: size });
        const pool = model.layers.find((l) => l.name === 'avgpool');
        expect(pool?.getClassName(), `${size}`).toBe(POOL[size]);
        const error = relativeError(await logits(model, size), reference.logits[variant]![size]!);
        expect(error, `${file} at ${size}`).toBeLessThan(1e-5);
        model.dispose();
      }
    });
  }

  it('gives the same logits from every variant of the file (dtypes, strides, shared storages, prefixes, a module)', async () => {
    const files: [string, string][] = [
      ['tiny-vgg-bn-f16.pth', 'bn-f16'],
      ['tiny-vgg-bf16.pth', 'bf16'],
      ['tiny-vgg-noncontiguous.pth', 'plain'],
      ['tiny-vgg-shared.pth', 'plain'],
      ['tiny-vgg-prefixed.pth', 'plain'],
      ['tiny-vgg-module.pth', 'plain'],
      ['tiny-vgg-deflated.pth', 'plain'],
      ['tiny-vgg-big-endian.pth', 'plain'],
    ];
    for (const [file, variant] of files) {
      for (const size of [100, 224]) {
        // bytes, not a path: the format is sniffed from them
        const model = await importTorchVgg(readFileSync(join(DIR, file)), { inputSize: size });
        const error = relativeError(await logits(model, size), reference.logits[variant]![size]!);
        expect(error, `${file} at ${size}`).toBeLessThan(1e-5);
        model.dispose();
      }
    }
  });

  it('names every layer as PyTorch does, keeps the names through save and load, and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const model = await readTorchVgg(join(DIR, 'tiny-vgg.pth'), { inputSize: 100 });
    expect(model.name).toBe('vgg');
    expect(model.layers.map((l) => [l.name, l.getClassName()])).toEqual([
      ['features.0', 'Conv2D'],
      ['features.1', 'ReLU'],
      ['features.2', 'MaxPooling2D'],
      ['features.3', 'Conv2D'],
      ['features.4', 'ReLU'],
      ['features.5', 'MaxPooling2D'],
      ['features.6', 'Conv2D'],
      ['features.7', 'ReLU'],
      ['features.8', 'MaxPooling2D'],
      ['avgpool', 'AdaptiveAveragePooling2D'],
      ['flatten', 'Flatten'],
      ['classifier.0', 'Dense'],
      ['classifier.1', 'ReLU'],
      ['classifier.2', 'Dropout'],
      ['classifier.3', 'Dense'],
      ['classifier.4', 'ReLU'],
      ['classifier.5', 'Dropout'],
      ['classifier.6', 'Dense'],
    ]);
    const dir = join(root, 'tiny-vgg');
    await model.save(fileSystem(dir));
    const saved = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    const conv = saved.modelTopology.config.layers[0].config;
    // the import hands its weights over at build time, yet the config is an ordinary layer's
    expect(conv.kernel_initializer.class_name).toBe('VarianceScaling');
    expect(conv.bias_initializer.class_name).toBe('Zeros');
    const again = await tfl.loadLayersModel(fileSystem(dir));
    expect(again.layers.map((l) => l.name)).toEqual(model.layers.map((l) => l.name));
    const pool = again.getLayer('avgpool') as AdaptiveAveragePooling2D;
    expect(pool).toBeInstanceOf(AdaptiveAveragePooling2D);
    expect(pool.outputSize).toEqual([7, 7]);
    expect(Array.from(await logits(again, 100))).toEqual(Array.from(await logits(model, 100)));
    again.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a ResNet, saying what it found and what is supported, and a file it must not run', async () => {
    await expectCrpErrorAsync(
      () => readTorchVgg(join(DIR, 'resnet.pth')),
      'unsupported-model',
      "no 'features.N.weight' and 'classifier.N.weight' tensors",
      'in the modules conv1, bn1, layer1, layer2, layer3, layer4, fc',
      '(this looks like a ResNet)',
      'valid: a state dict of a torchvision VGG (vgg11/13/16/19',
    );
    await expectCrpErrorAsync(
      () => readTorchVgg(join(DIR, 'unsafe-global.pth')),
      'unsafe-content',
      'posix.system',
    );
    await expectCrpErrorAsync(
      () => readTorchVgg(join(DIR, 'tiny-vgg-legacy.pth')),
      'unsupported-format',
      'legacy',
    );
    await expectCrpErrorAsync(
      () => readTorchVgg(join(DIR, 'tiny-vgg-corrupt.pth')),
      'corrupt-file',
      'CRC-32',
    );
    await expectCrpErrorAsync(
      () => readTorchVgg(join(DIR, 'tiny-vgg.pth'), { inputSize: 7 }),
      'invalid-shape',
      'an input of 7x7 is too small for this VGG: its 3 max pools halve it to nothing; valid: inputSize >= 8',
    );
    await expectCrpErrorAsync(
      () => readTorchVgg(join(DIR, 'tiny-vgg.pth'), { inputSize: 64, inputShape: [64, 64, 3] }),
      'invalid-argument',
      'give inputSize or inputShape, not both',
    );
  });
});

describe('torchVggLayout', () => {
  const torchvision =
    json<Record<string, { cfg: (number | 'M')[]; stateDict: Record<string, number[]> }>>(
      'torchvision-vgg-keys.json',
    );
  /** A state dict of names and shapes only (the layout reads nothing else). */
  const shapesOnly = (shapes: Record<string, number[]>, prefix = ''): StateDict => ({
    names: Object.keys(shapes).map((k) => prefix + k),
    has: (n) => n.startsWith(prefix) && n.slice(prefix.length) in shapes,
    entry: (n) => ({ dtype: 'float32', shape: shapes[n.slice(prefix.length)]! }),
    float32: () => {
      throw new Error('not read');
    },
  });

  for (const [name, { cfg, stateDict }] of Object.entries(torchvision)) {
    it(`reads torchvision's ${name}`, () => {
      const layout = torchVggLayout(shapesOnly(stateDict, 'model.'));
      expect(layout).toMatchObject({
        prefix: 'model.',
        cfg,
        batchNorm: name.endsWith('_bn'),
        torchvision: name,
        inChannels: 3,
        channels: 512,
        poolSize: 7,
        classes: 1000,
      });
      expect(layout.classifier).toEqual([
        { index: 0, in: 25088, out: 4096 },
        { index: 3, in: 4096, out: 4096 },
        { index: 6, in: 4096, out: 1000 },
      ]);
    });
  }

  it('reads the tiny VGG of the fixtures (no torchvision name) from every prefix', () => {
    for (const [file, prefix] of [
      ['tiny-vgg.pth', ''],
      ['tiny-vgg-shared.pth', 'module.'],
      ['tiny-vgg-prefixed.pth', 'model.'],
    ]) {
      const layout = torchVggLayout(PthFile.parse(readFileSync(join(DIR, file!)), file));
      expect(layout).toMatchObject({
        prefix,
        cfg: [8, 'M', 8, 'M', 8, 'M'],
        torchvision: undefined,
        poolSize: 7,
        classes: 3,
      });
    }
  });
});

describe('AdaptiveAveragePooling2D', () => {
  interface Case {
    outputSize: [number, number];
    x: { shape: number[]; data: number[] };
    y: { shape: number[]; data: number[] };
  }
  it("equals torch's adaptive_avg_pool2d for every input/output size of the fixtures", () => {
    const { cases } = json<{ cases: Case[] }>('adaptive-pool.json');
    expect(cases.length).toBe(12);
    for (const c of cases) {
      const layer = adaptiveAveragePooling2d({ outputSize: c.outputSize });
      const y = tf.tidy(() => layer.apply(tf.tensor(c.x.data, c.x.shape)) as tf.Tensor);
      expect(y.shape).toEqual(c.y.shape);
      expect(relativeError(y.dataSync(), c.y.data), `${c.x.shape} -> ${c.outputSize}`).toBeLessThan(1e-6);
      y.dispose();
    }
  });

  it('trains: gradients flow through it to the convolutions', async () => {
    registerTrainingKernels(); // the filter gradient that TF.js' wasm backend lacks
    const model = await readTorchVgg(join(DIR, 'tiny-vgg.pth'), { inputSize: 64 });
    const x = image(64);
    const { value, grads } = tf.variableGrads(() =>
      tf.losses.softmaxCrossEntropy(tf.oneHot([1], 3), model.apply(x, { training: true }) as tf.Tensor),
    );
    const conv = model.getLayer('features.6').getWeights()[0]!;
    const g = Object.entries(grads).find(([name]) => name.startsWith('features.6/kernel'))![1];
    expect(g.shape).toEqual(conv.shape);
    const norm = (await tf.norm(g).data())[0]!;
    expect(Number.isFinite(norm) && norm > 0).toBe(true);
    tf.dispose([x, value, ...Object.values(grads)]);
    model.dispose();
  });

  it('checks its outputSize', () => {
    expect(() => adaptiveAveragePooling2d({ outputSize: 0 })).toThrow(
      /outputSize 0; valid: a positive integer/,
    );
    expect(adaptiveAveragePooling2d({ outputSize: 3 }).outputSize).toEqual([3, 3]);
  });
});

describe('LRP through the adaptive pool', () => {
  interface Nhwc {
    shape: number[];
    data: number[];
  }
  const zennit = json<{
    size: number;
    target: number;
    rules: Record<string, string>;
    logits: number[];
    relevance: Nhwc;
    relevances: Record<string, Nhwc>;
  }>('lrp-adaptive.json');

  it("equals zennit's EpsilonPlusFlat (Norm on the adaptive pool) at 64x64", async () => {
    const model = await readTorchVgg(join(DIR, 'tiny-vgg.pth'), { inputSize: zennit.size });
    const lrp = new Attributor(model, { composite: epsilonPlusFlat() });
    for (const [layer, rule] of Object.entries(zennit.rules)) {
      if (!layer.startsWith('classifier.1') && !layer.startsWith('classifier.4')) {
        expect(lrp.ruleOf(layer).name, layer).toBe(rule);
      }
    }
    const x = image(zennit.size);
    const result = lrp.attribute(x, { target: zennit.target, recordLayers: ['features.8', 'avgpool'] });
    expect(relativeError(await result.prediction.data(), zennit.logits)).toBeLessThan(1e-5);
    for (const layer of ['avgpool', 'features.8']) {
      const r = result.relevances[layer]!;
      expect(r.shape).toEqual(zennit.relevances[layer]!.shape);
      expect(relativeError(await r.data(), zennit.relevances[layer]!.data), layer).toBeLessThan(1e-5);
    }
    expect(result.relevance.shape).toEqual(zennit.relevance.shape);
    expect(relativeError(await result.relevance.data(), zennit.relevance.data)).toBeLessThan(1e-5);
    tf.dispose([x, result.relevance, result.prediction, ...Object.values(result.relevances)]);
    lrp.dispose();
    model.dispose();
  });
});
