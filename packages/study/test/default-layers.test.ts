/**
 * The study's default layers on CNNs with branches: every conv and dense layer below the output and each stage's
 * output, the last addition or concatenation at each resolution (torchvision's `layer1` ... `layer4`; a DenseNet's
 * dense block), checked on the graphs alone (no study run): the slim ResNets of @crp/models and the DenseNet-like
 * `.onnx` of the conformance references. Given `layers` are taken as they are.
 */
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-wasm';
import { conceptLayers, conceptLayersBelow } from '@crp/attribution';
import { graphFromLayersModel, type ModelGraph } from '@crp/lrp';
import { readOnnx, readTorchResNet } from '@crp/models/node';
import { useBackend } from '@crp/testing';
import { describe, expect, it } from 'vitest';
import { resolveStudyOptions } from '../src/index.js';
import { slimResNet } from './resnet-study-setup.js';

useBackend('wasm');

const DENSENET = join(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'vendor',
  'reference',
  'onnx',
  'models',
  'densenet_like.onnx',
);

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
