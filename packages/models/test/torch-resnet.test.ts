import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectCrpError, expectCrpErrorAsync } from '@crp/testing';
import { formulaInput, formulaStateDict } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import { referencePath } from '@crp/testing/reference';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  encodeTorchStateDict,
  importTorchModel,
  parseStateDict,
  type StateDict,
  type TorchResNetSpec,
  torchResNetFromStateDict,
  torchResNetLayout,
  torchResNetShapes,
  torchStateDictOf,
  torchVggLayout,
} from '../src/index.js';
import { readOnnx, readTorchResNet } from '../src/node.js';

beforeAll(async () => {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
});

/** torchvision's constructors and their published parameter counts (1000 classes). */
const TORCHVISION: [string, TorchResNetSpec, number][] = [
  ['resnet18', { block: 'basic', layers: [2, 2, 2, 2], classes: 1000 }, 11689512],
  ['resnet34', { block: 'basic', layers: [3, 4, 6, 3], classes: 1000 }, 21797672],
  ['resnet50', { block: 'bottleneck', layers: [3, 4, 6, 3], classes: 1000 }, 25557032],
  ['resnet101', { block: 'bottleneck', layers: [3, 4, 23, 3], classes: 1000 }, 44549160],
  ['resnet152', { block: 'bottleneck', layers: [3, 8, 36, 3], classes: 1000 }, 60192808],
  [
    'wide_resnet50_2',
    { block: 'bottleneck', layers: [3, 4, 6, 3], classes: 1000, widthPerGroup: 128 },
    68883240,
  ],
  [
    'resnext50_32x4d',
    { block: 'bottleneck', layers: [3, 4, 6, 3], classes: 1000, groups: 32, widthPerGroup: 4 },
    25028904,
  ],
  [
    'resnext101_32x8d',
    { block: 'bottleneck', layers: [3, 4, 23, 3], classes: 1000, groups: 32, widthPerGroup: 8 },
    88791336,
  ],
  [
    'resnext101_64x4d',
    { block: 'bottleneck', layers: [3, 4, 23, 3], classes: 1000, groups: 64, widthPerGroup: 4 },
    83455272,
  ],
];

const GOLDEN = referencePath('resnet', 'cases');

/** A state dict whose keys carry a prefix (as `nn.DataParallel` writes them), or that lacks / adds keys. */
function edited(
  sd: StateDict,
  edit: { prefix?: string; drop?: string; add?: [string, number[]] },
): StateDict {
  const prefix = edit.prefix ?? '';
  const names = sd.names.filter((n) => n !== edit.drop).map((n) => prefix + n);
  if (edit.add) names.push(edit.add[0]);
  const inner = (n: string) => n.slice(prefix.length);
  return {
    names,
    has: (n) => names.includes(n),
    entry: (n) =>
      edit.add && n === edit.add[0] ? { dtype: 'float32', shape: edit.add[1] } : sd.entry(inner(n)),
    float32: (n) => sd.float32(inner(n)),
  };
}

describe('torchResNetShapes', () => {
  it.each(TORCHVISION)('%s has torchvision’s parameter count', (_, spec, count) => {
    let total = 0;
    for (const [name, shape] of torchResNetShapes(spec)) {
      // parameters only: the batch norms' running statistics and counters are buffers
      if (!/(running_mean|running_var|num_batches_tracked)$/.test(name))
        total += shape.reduce((a, b) => a * b, 1);
    }
    expect(total).toBe(count);
  });
});

describe('torchResNetLayout', () => {
  it.each(TORCHVISION)('recognises %s from its keys and shapes, with or without a prefix', (name, spec) => {
    const sd = formulaStateDict(torchResNetShapes(spec), 1) as StateDict;
    for (const prefix of ['', 'module.']) {
      const layout = torchResNetLayout(prefix === '' ? sd : edited(sd, { prefix }));
      expect(layout.torchvision).toBe(name);
      expect(layout.prefix).toBe(prefix);
      expect(layout.layers).toEqual(spec.layers);
      expect(layout.classes).toBe(1000);
      expect(layout.blocks.filter((b) => b.downsample).map((b) => b.name)).toEqual(
        spec.block === 'basic'
          ? ['layer2.0', 'layer3.0', 'layer4.0']
          : ['layer1.0', 'layer2.0', 'layer3.0', 'layer4.0'],
      );
      expect(layout.blocks.map((b) => b.stride).filter((s) => s === 2)).toHaveLength(3);
    }
  });

  it('names a missing key, an extra key and a shape that does not fit', () => {
    const sd = formulaStateDict(torchResNetShapes(TORCHVISION[0]![1]), 1) as StateDict;
    expectCrpError(
      () => torchResNetLayout(edited(sd, { drop: 'layer3.1.bn2.running_var' })),
      'unsupported-model',
      "missing 'layer3.1.bn2.running_var'",
      'export the model to ONNX',
    );
    expectCrpError(
      () => torchResNetLayout(edited(sd, { add: ['layer2.0.se.fc1.weight', [8, 128]] })),
      'unsupported-model',
      "unexpected 'layer2.0.se.fc1.weight'",
    );
    // torchvision's resnet18 keys, each tensor of one element (made by torch: fixtures-src/make-torch-pth.py)
    const pth = join(import.meta.dirname, 'fixtures', 'pth', 'resnet.pth');
    return expectCrpErrorAsync(
      () => readTorchResNet(pth),
      'unsupported-model',
      'conv1.weight has shape [1]; a Conv2d weight [out, in, kh, kw] is needed',
    );
  });

  it('says what a state dict of another architecture holds', () => {
    const sd = formulaStateDict(
      new Map([
        ['features.0.weight', [8, 3, 3, 3]],
        ['classifier.0.weight', [10, 8]],
      ]),
      1,
    ) as StateDict;
    expectCrpError(
      () => torchResNetLayout(sd),
      'unsupported-model',
      'no torchvision ResNet',
      'in the modules features, classifier',
      'export the model to ONNX',
    );
  });
});

describe('importTorchModel of a state dict whose architecture cannot be inferred', () => {
  it('names what it holds, the layouts it infers and ONNX, not only the VGG', async () => {
    // torchvision densenet121's first keys: neither a VGG's classifier.N nor a ResNet's layerS.B.convK
    const densenet = formulaStateDict(
      new Map([
        ['features.conv0.weight', [64, 3, 7, 7]],
        ['features.norm0.weight', [64]],
        ['features.denseblock1.denselayer1.conv1.weight', [128, 64, 1, 1]],
        ['classifier.weight', [10, 1024]],
      ]),
      1,
    ) as StateDict;
    await expectCrpErrorAsync(
      () => importTorchModel(densenet),
      'unsupported-model',
      'no architecture the toolkit infers from a state dict: it has 4 tensors in the modules features, classifier, e.g. features.conv0.weight [64, 3, 7, 7]',
      '(this looks like a DenseNet)',
      "torchvision's VGG ('features.N', 'classifier.N'), ResNet ('conv1', 'layerS.B.convK', 'fc'; also wide and ResNeXt) and ViT",
      "for other architectures export the model to ONNX (torch.onnx.export(model, x, 'model.onnx', opset_version=17)) and read the .onnx",
    );
    // a VGG-shaped dict that does not fit a VGG keeps the VGG importer's own error
    const odd = formulaStateDict(
      new Map([
        ['features.0.weight', [8, 3, 4, 4]],
        ['classifier.0.weight', [10, 8]],
      ]),
      1,
    ) as StateDict;
    await expectCrpErrorAsync(
      () => importTorchModel(odd),
      'unsupported-model',
      'features.0 has a 4x4 kernel; only odd kernels',
    );
    expectCrpError(
      () => torchVggLayout(densenet),
      'unsupported-model',
      'for other architectures export the model to ONNX',
    );
  });
});

describe('torchResNetFromStateDict', () => {
  it('gives PyTorch’s logits (resnet18, torchvision, 64 and 128 pixels) with PyTorch’s names', async () => {
    const golden = JSON.parse(readFileSync(join(GOLDEN, 'resnet_logits__resnet18.json'), 'utf8')) as {
      logits: Record<string, { data: number[] }>;
    };
    const sd = formulaStateDict(
      torchResNetShapes({ block: 'basic', layers: [2, 2, 2, 2], classes: 10 }),
      18,
    ) as StateDict;
    for (const size of [64, 128]) {
      const model = torchResNetFromStateDict(sd, { inputSize: size });
      const x = tf.tidy(() =>
        tf.transpose(tf.tensor4d(formulaInput([1, 3, size, size], size), [1, 3, size, size]), [0, 2, 3, 1]),
      );
      const y = model.predict(x) as tf.Tensor;
      const ours = await y.data();
      const theirs = golden.logits[String(size)]!.data;
      const scale = Math.max(...theirs.map(Math.abs));
      for (let i = 0; i < theirs.length; i++)
        expect(Math.abs(ours[i]! - theirs[i]!)).toBeLessThan(1e-5 * scale);
      if (size === 64) {
        const names = model.layers.map((l) => l.name);
        for (const n of [
          'conv1.pad',
          'conv1',
          'bn1',
          'relu',
          'maxpool',
          'layer1.0.conv1',
          'layer1.0.add',
          'layer1.0.relu',
          'layer3.0.downsample.0',
          'layer3.0.downsample.1',
          'layer4.1.conv2',
          'avgpool',
          'fc',
        ]) {
          expect(names).toContain(n);
        }
        expect(model.name).toBe('resnet18');
      }
      tf.dispose([x, y]);
      model.dispose();
    }
  });

  it('refuses inputs with the wrong channels, and leaks no tensor', () => {
    const sd = formulaStateDict(
      torchResNetShapes({ block: 'basic', layers: [1, 1, 1, 1], classes: 3 }),
      2,
    ) as StateDict;
    expectCrpError(
      () => torchResNetFromStateDict(sd, { inputShape: [32, 32, 1] }),
      'invalid-shape',
      'valid: [h, w, 3]',
    );
    const before = tf.memory().numTensors;
    for (let k = 0; k < 2; k++) torchResNetFromStateDict(sd, { inputSize: 32 }).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('builds ResNeXt (resnext50_32x4d): grouped conv2 layers, PyTorch’s logits at 64 pixels (torchvision)', async () => {
    const golden = JSON.parse(readFileSync(join(GOLDEN, 'resnet_logits__resnext50_32x4d.json'), 'utf8')) as {
      logits: Record<string, { data: number[] }>;
    };
    const spec: TorchResNetSpec = { ...TORCHVISION[6]![1], classes: 10 };
    const sd = formulaStateDict(torchResNetShapes(spec), 32) as StateDict;
    const before = tf.memory().numTensors;
    const model = torchResNetFromStateDict(sd, { inputSize: 64 });
    expect(model.name).toBe('resnext50_32x4d');
    const conv2 = model.getLayer('layer3.1.conv2');
    expect(conv2.getClassName()).toBe('GroupedConv2D');
    expect(conv2.getConfig().groups).toBe(32);
    // [kh, kw, width / groups, width]: 512 / 32 = 16 input channels per group
    expect(conv2.getWeights()[0]!.shape).toEqual([3, 3, 16, 512]);
    expect(model.getLayer('layer3.1.conv1').getClassName()).toBe('Conv2D');
    const x = tf.tidy(() =>
      tf.transpose(tf.tensor4d(formulaInput([1, 3, 64, 64], 64), [1, 3, 64, 64]), [0, 2, 3, 1]),
    );
    const y = model.predict(x) as tf.Tensor;
    const ours = await y.data();
    const theirs = golden.logits['64']!.data;
    const scale = Math.max(...theirs.map(Math.abs));
    for (let i = 0; i < theirs.length; i++)
      expect(Math.abs(ours[i]! - theirs[i]!)).toBeLessThan(1e-5 * scale);
    tf.dispose([x, y]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('writes a ResNeXt back as its torchvision state dict (grouped weights [out, in / groups, kh, kw])', () => {
    const spec: TorchResNetSpec = {
      block: 'bottleneck',
      layers: [1, 1, 1, 1],
      classes: 3,
      groups: 4,
      widthPerGroup: 4,
    };
    const sd = formulaStateDict(torchResNetShapes(spec), 3) as StateDict;
    const model = torchResNetFromStateDict(sd, { inputSize: 32 });
    const back = parseStateDict(encodeTorchStateDict(torchStateDictOf(model)));
    expect([...back.names].sort()).toEqual([...sd.names].sort());
    expect(back.entry('layer2.0.conv2.weight').shape).toEqual([32, 8, 3, 3]);
    for (const name of sd.names) {
      if (name.endsWith('num_batches_tracked')) continue;
      const [a, b] = [back.float32(name), sd.float32(name)];
      expect(a.length, name).toBe(b.length);
      expect(
        a.findIndex((v, i) => v !== b[i]),
        name,
      ).toBe(-1);
    }
    model.dispose();
  });
});

/** torch's logits and shapes of the slimmed ResNets (fixtures-src/make-slim-resnets.py). */
interface SlimFixture {
  seed: number;
  shapes: Record<string, number[]>;
  logits: Record<string, number[]>;
}
const SLIM = JSON.parse(
  readFileSync(join(import.meta.dirname, 'fixtures', 'pth', 'slim-resnets.json'), 'utf8'),
) as { models: Record<string, SlimFixture> };

/** The specs that describe the script's slimmed ResNets. */
const SLIM_SPECS: [string, TorchResNetSpec][] = [
  [
    'slim-resnet-basic',
    {
      block: 'basic',
      layers: [2, 1, 1, 1],
      classes: 2,
      stemChannels: 8,
      stageWidths: [8, 12, 16, 20],
      stageChannels: [8, 12, 16, 20],
    },
  ],
  [
    'slim-resnet-bottleneck',
    {
      block: 'bottleneck',
      layers: [1, 2, 1, 1],
      classes: 3,
      groups: 2,
      stemChannels: 8,
      stageWidths: [4, 8, 8, 12],
      stageChannels: [16, 24, 32, 40],
    },
  ],
];

describe('slimmed ResNets (torchvision’s class with other widths)', () => {
  it.each(SLIM_SPECS)('%s: torchResNetShapes gives the keys and shapes torch wrote', (name, spec) => {
    const shapes = torchResNetShapes(spec);
    expect(Object.fromEntries(shapes)).toEqual(SLIM.models[name]!.shapes);
    // torchvision's order, as model.state_dict()
    expect([...shapes.keys()]).toEqual(Object.keys(SLIM.models[name]!.shapes));
  });

  it.each(SLIM_SPECS)(
    '%s: widths read from the .pth, PyTorch’s logits at 32 and 48 pixels',
    async (name, spec) => {
      const file = join(import.meta.dirname, 'fixtures', 'pth', `${name}.pth`);
      const sd = parseStateDict(readFileSync(file));
      const layout = torchResNetLayout(sd);
      expect(layout.torchvision).toBeUndefined();
      expect(layout.stemChannels).toBe(8);
      expect(layout.layers).toEqual(spec.layers);
      expect(layout.blocks.map((b) => [b.name, b.width, b.outChannels, b.groups, b.downsample])).toEqual(
        spec.block === 'basic'
          ? [
              ['layer1.0', 8, 8, 1, false],
              ['layer1.1', 8, 8, 1, false],
              ['layer2.0', 12, 12, 1, true],
              ['layer3.0', 16, 16, 1, true],
              ['layer4.0', 20, 20, 1, true],
            ]
          : [
              ['layer1.0', 4, 16, 2, true],
              ['layer2.0', 8, 24, 2, true],
              ['layer2.1', 8, 24, 2, false],
              ['layer3.0', 8, 32, 2, true],
              ['layer4.0', 12, 40, 2, true],
            ],
      );
      // the file holds the formula's weights: the TypeScript state dict of the same spec is the same model
      const formula = formulaStateDict(torchResNetShapes(spec), SLIM.models[name]!.seed) as StateDict;
      expect(sd.float32('layer2.0.conv2.weight')).toEqual(formula.float32('layer2.0.conv2.weight'));
      const before = tf.memory().numTensors;
      for (const size of [32, 48]) {
        const model = await readTorchResNet(file, { inputSize: size });
        if (spec.block === 'bottleneck')
          expect(model.getLayer('layer2.1.conv2').getClassName()).toBe('GroupedConv2D');
        const x = tf.tidy(() =>
          tf.transpose(tf.tensor4d(formulaInput([1, 3, size, size], size), [1, 3, size, size]), [0, 2, 3, 1]),
        );
        const y = model.predict(x) as tf.Tensor;
        const ours = await y.data();
        const theirs = SLIM.models[name]!.logits[String(size)]!;
        expect(ours.length).toBe(spec.classes);
        const scale = Math.max(...theirs.map(Math.abs));
        for (let i = 0; i < theirs.length; i++)
          expect(Math.abs(ours[i]! - theirs[i]!)).toBeLessThan(1e-5 * scale);
        tf.dispose([x, y]);
        model.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
    },
  );

  it.each(SLIM_SPECS)(
    '%s from .onnx (torch.onnx.export defaults, batch norms folded): PyTorch’s conv names and logits at 32 pixels',
    async (name) => {
      const onnx = join(import.meta.dirname, 'fixtures', 'onnx', `${name}.onnx`);
      const pth = join(import.meta.dirname, 'fixtures', 'pth', `${name}.pth`);
      const before = tf.memory().numTensors;
      const model = await readOnnx(onnx);
      const reference = await readTorchResNet(pth, { inputSize: 32 });
      // the folded weights have generated names (onnx::Conv_136): the names come from the node scopes
      const convs = (m: tfl.LayersModel) =>
        m.layers.filter((l) => /Conv2D$/.test(l.getClassName())).map((l) => l.name);
      // the same names; the order is each graph's (the exporter writes a block's shortcut after its last conv)
      expect(convs(model).sort()).toEqual(convs(reference).sort());
      expect(convs(model)).toContain('layer2.0.downsample.0');
      const x = tf.tidy(() =>
        tf.transpose(tf.tensor4d(formulaInput([1, 3, 32, 32], 32), [1, 3, 32, 32]), [0, 2, 3, 1]),
      );
      const y = model.predict(x) as tf.Tensor;
      const ours = await y.data();
      const theirs = SLIM.models[name]!.logits['32']!;
      const scale = Math.max(...theirs.map(Math.abs));
      for (let i = 0; i < theirs.length; i++)
        expect(Math.abs(ours[i]! - theirs[i]!)).toBeLessThan(1e-5 * scale);
      tf.dispose([x, y]);
      model.dispose();
      reference.dispose();
      expect(tf.memory().numTensors).toBe(before);
    },
  );

  it('reads a channel-pruned bottleneck (conv2 narrower than conv1) and names a block that does not chain', () => {
    const shapes = torchResNetShapes(SLIM_SPECS[1]![1]);
    // layer2.1: conv2 keeps 6 of 8 filters (conv3 reads 6); groups stay 2 (conv1's 8 / conv2's 4 inputs per group)
    shapes.set('layer2.1.conv2.weight', [6, 4, 3, 3]);
    for (const part of ['weight', 'bias', 'running_mean', 'running_var'])
      shapes.set(`layer2.1.bn2.${part}`, [6]);
    shapes.set('layer2.1.conv3.weight', [24, 6, 1, 1]);
    const layout = torchResNetLayout(formulaStateDict(shapes, 1) as StateDict);
    expect(layout.blocks[2]).toMatchObject({
      name: 'layer2.1',
      width: 8,
      midWidth: 6,
      groups: 2,
      outChannels: 24,
    });
    // a block whose conv1 does not read the previous block's 24 channels
    shapes.set('layer2.1.conv1.weight', [8, 20, 1, 1]);
    expectCrpError(
      () => torchResNetLayout(formulaStateDict(shapes, 1) as StateDict),
      'unsupported-model',
      'layer2.1.conv1.weight has shape [8, 20, 1, 1]',
      'needs [8, 24, 1, 1]',
    );
  });
});
