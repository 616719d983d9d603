/**
 * The study's default layers on CNNs with branches: every conv and dense layer below the output and each stage's
 * output, the last addition of each run at one resolution and channel count (torchvision's `layer1` ... `layer4`)
 * and the last concatenation at each resolution (a DenseNet's dense block), checked on the graphs alone (no study
 * run): the slim ResNets of @crp/models, a net of two stages at one resolution and the DenseNet-like `.onnx` of
 * the conformance references. Given `layers` are taken as they are.
 */
import '@tensorflow/tfjs-backend-wasm';
import { conceptLayers, conceptLayersBelow } from '@crp/attribution';
import { graphFromLayersModel, type ModelGraph } from '@crp/lrp';
import { readOnnx, readTorchResNet } from '@crp/models/node';
import { useBackend } from '@crp/testing';
import { referencePath } from '@crp/testing/reference';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { resolveStudyOptions } from '../src/index.js';
import { slimResNet } from './resnet-study-setup.js';

useBackend('wasm');

const DENSENET = referencePath('onnx', 'models', 'densenet_like.onnx');

function defaultLayers(graph: ModelGraph, layers?: string[]): string[] {
  const classes = Array.from(
    { length: Number(graph.node(graph.outputId).outputShape.at(-1)) },
    (_, i) => `c${i}`,
  );
  return resolveStudyOptions({ target: 0, ...(layers === undefined ? {} : { layers }) }, graph, classes)
    .layers;
}

describe('the study’s default layers with branches', () => {
  it('a ResNet: the convs and each stage’s last addition, whose layers below are its residual branch and shortcut', async () => {
    const cases = [
      ['basic', ['layer1.1.add', 'layer2.0.add', 'layer3.0.add', 'layer4.0.add']],
      ['bottleneck', ['layer1.0.add', 'layer2.1.add', 'layer3.0.add', 'layer4.0.add']],
    ] as const;
    for (const [block, stages] of cases) {
      const model = await readTorchResNet(slimResNet(block, 'pth'), { inputSize: 32 });
      const graph = graphFromLayersModel(model);
      try {
        const layers = defaultLayers(graph);
        expect(layers.filter((l) => !conceptLayers(graph).includes(l))).toEqual(stages);
        // in graph order: a stage's output after its convs, before the next stage's
        expect(layers.indexOf('layer2.0.conv1')).toBeGreaterThan(layers.indexOf(stages[0]));
        expect(layers.at(-1)).toBe('layer4.0.add');
        for (const s of stages) {
          const below = conceptLayersBelow(graph, s);
          expect(below, s).toHaveLength(2);
          // the last block's residual branch (its last conv) and its shortcut (downsample, or the addition before)
          expect(
            below.filter((b) => /\.conv[23]$/.test(b)),
            s,
          ).toHaveLength(1);
          expect(
            below.filter((b) => /downsample\.0$|\.add$/.test(b)),
            s,
          ).toHaveLength(1);
        }
        // given layers are taken as they are
        expect(defaultLayers(graph, ['layer2.0.conv1'])).toEqual(['layer2.0.conv1']);
        // an unknown name is answered with the valid ones, the additions among them
        expect(() => defaultLayers(graph, ['layer2.0.ad'])).toThrow(
          /unknown layer 'layer2\.0\.ad'.*valid: .*layer2\.0\.add/,
        );
      } finally {
        graph.dispose();
        model.dispose();
      }
    }
  });

  it('two stages at one resolution (the second widened by a 1x1 downsample, as torchvision’s layer1 of a bottleneck ResNet after the stem): one output each', () => {
    // stem conv (4 channels, 8 x 8) -> stage1: two identity blocks (4 channels) -> stage2: a block whose shortcut
    // is a 1x1 conv to 6 channels, then an identity block (6 channels), all at 8 x 8 -> pool -> dense
    const conv = (name: string, filters: number, kernel = 3) =>
      tfl.layers.conv2d({ name, filters, kernelSize: kernel, padding: 'same', activation: 'relu' });
    const input = tfl.input({ shape: [8, 8, 3], name: 'input' });
    let x = conv('stem', 4).apply(input) as tfl.SymbolicTensor;
    const block = (name: string, filters: number, shortcut: tfl.SymbolicTensor) => {
      const branch = conv(`${name}.conv`, filters).apply(x) as tfl.SymbolicTensor;
      return tfl.layers.add({ name: `${name}.add` }).apply([branch, shortcut]) as tfl.SymbolicTensor;
    };
    x = block('stage1.0', 4, x);
    x = block('stage1.1', 4, x);
    x = block('stage2.0', 6, conv('stage2.0.downsample', 6, 1).apply(x) as tfl.SymbolicTensor);
    x = block('stage2.1', 6, x);
    const pooled = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
    const output = tfl.layers.dense({ name: 'fc', units: 2 }).apply(pooled) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: output });
    const graph = graphFromLayersModel(model);
    try {
      const layers = defaultLayers(graph);
      expect(layers.filter((l) => !conceptLayers(graph).includes(l))).toEqual([
        'stage1.1.add',
        'stage2.1.add',
      ]);
      // each after its stage's convs, in graph order
      expect(layers.indexOf('stage1.1.add')).toBeGreaterThan(layers.indexOf('stage1.1.conv'));
      expect(layers.indexOf('stage1.1.add')).toBeLessThan(layers.indexOf('stage2.0.conv'));
    } finally {
      graph.dispose();
      model.dispose();
    }
  });

  it('joins of both kinds at one resolution (Inception-ResNet: a concatenation of branches inside each residual block): one output per stage', () => {
    // stem (4 channels, 8 x 8) -> two blocks, each: two branch convs concatenated, a 1x1 conv to the block's
    // width, added to its input (4 channels) -> a third block at 8 x 8 whose shortcut is a 1x1 conv to 6 channels
    // (a new stage, its concatenation between the two additions) -> a stride-2 conv to 4 x 4 -> one more block
    const conv = (name: string, filters: number, kernel = 3, strides = 1) =>
      tfl.layers.conv2d({ name, filters, kernelSize: kernel, strides, padding: 'same', activation: 'relu' });
    const input = tfl.input({ shape: [8, 8, 3], name: 'input' });
    let x = conv('stem', 4).apply(input) as tfl.SymbolicTensor;
    const block = (name: string, width: number, shortcut = x) => {
      const a = conv(`${name}.a`, 2, 1).apply(x) as tfl.SymbolicTensor;
      const b = conv(`${name}.b`, 2).apply(x) as tfl.SymbolicTensor;
      const cat = tfl.layers.concatenate({ name: `${name}.cat` }).apply([a, b]) as tfl.SymbolicTensor;
      const up = conv(`${name}.up`, width, 1).apply(cat) as tfl.SymbolicTensor;
      return tfl.layers.add({ name: `${name}.add` }).apply([up, shortcut]) as tfl.SymbolicTensor;
    };
    x = block('block1', 4);
    x = block('block2', 4);
    x = block('wide', 6, conv('wide.downsample', 6, 1).apply(x) as tfl.SymbolicTensor);
    x = conv('reduce', 6, 3, 2).apply(x) as tfl.SymbolicTensor;
    x = block('block3', 6);
    const pooled = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
    const output = tfl.layers.dense({ name: 'fc', units: 2 }).apply(pooled) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: output });
    const graph = graphFromLayersModel(model);
    try {
      expect(defaultLayers(graph).filter((l) => !conceptLayers(graph).includes(l))).toEqual([
        'block2.add',
        'wide.add',
        'block3.add',
      ]);
    } finally {
      graph.dispose();
      model.dispose();
    }
  });

  it('a DenseNet-like graph: the dense block’s last concatenation, not the one inside it', async () => {
    const model = await readOnnx(DENSENET);
    const graph = graphFromLayersModel(model);
    try {
      const layers = defaultLayers(graph);
      expect(layers).toContain('features.denseblock1.denselayer2.concat');
      expect(layers).not.toContain('features.denseblock1.denselayer1.concat');
      expect([...conceptLayersBelow(graph, 'features.denseblock1.denselayer2.concat')].sort()).toEqual([
        'features.denseblock1.denselayer1.concat',
        'features.denseblock1.denselayer2.conv1',
      ]);
    } finally {
      graph.dispose();
      model.dispose();
    }
  });
});
