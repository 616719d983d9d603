import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeOnnx, importOnnx, parseOnnxModel } from '@crp/models';
import { formulaInput } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChannelMask, exportPruned, MaskedModel } from '../src/index.js';
import { useBackend } from './helpers.js';

/**
 * A pruned model from a `.onnx` written back as `.onnx` (encodeOnnx of @crp/models): the slim ResNet of
 * @crp/models exported by torch.onnx.export (batch norms folded into the convs, weights named `onnx::Conv_<n>`),
 * channels of residual streams and of an inner conv removed by exportPruned. The written file must read back as
 * the pruned model, keep the source's graph, and give the logits python3-onnx's reading of the same bytes gave
 * (fixtures-src/check-pruned-onnx.py; no Python is needed to run this test).
 */
const SOURCE = join(
  import.meta.dirname,
  '..',
  '..',
  'models',
  'test',
  'fixtures',
  'onnx',
  'slim-resnet-basic.onnx',
);
const MASK = { 'layer1.0.add': [2, 5], 'layer2.0.conv1': [0, 7], 'layer3.0.add': [1], 'layer4.0.add': [3] };

useBackend('wasm');

let bytes: Uint8Array;
let model: tfl.LayersModel;
beforeAll(() => {
  bytes = new Uint8Array(readFileSync(SOURCE));
  model = importOnnx(bytes);
});
afterAll(() => {
  model.dispose();
});

const formula = () =>
  tf.tidy(() => tf.transpose(tf.tensor4d(formulaInput([2, 3, 32, 32], 33), [2, 3, 32, 32]), [0, 2, 3, 1]));

function relativeGap(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let gap = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    gap = Math.max(gap, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(a[i]!));
  }
  return gap / scale;
}

describe('a pruned ResNet from .onnx, written as .onnx', () => {
  it('reads back as the pruned model (the masked model’s logits), with the source’s nodes, names and opset', async () => {
    const mask = ChannelMask.of(MASK);
    const masked = await MaskedModel.create(model, mask);
    const pruned = await exportPruned(model, mask);
    const x = formula();
    try {
      const written = encodeOnnx(bytes, pruned);
      const back = importOnnx(written);
      const [yPruned, yBack, yMasked] = [pruned, back, masked.model].map((m) => m.predict(x) as tf.Tensor);
      const [p, b, m] = [yPruned, yBack, yMasked].map((y) => y!.dataSync());
      expect(relativeGap(p!, b!)).toBeLessThan(1e-5);
      expect(relativeGap(m!, b!)).toBeLessThan(1e-5);
      tf.dispose([yPruned!, yBack!, yMasked!]);
      back.dispose();
      // the graph is the source's; the initializers have the pruned shapes
      const [src, out] = [parseOnnxModel(bytes), parseOnnxModel(written)];
      expect(out.graph.nodes).toEqual(src.graph.nodes);
      expect(out.graph.inputs).toEqual(src.graph.inputs);
      expect(out.graph.outputs).toEqual(src.graph.outputs);
      expect(out.opsets).toEqual(src.opsets);
      const dims = new Map(out.graph.initializers.map((t) => [t.name, t.dims]));
      const convOf = (scope: string) => {
        const node = out.graph.nodes.find((n) => n.opType === 'Conv' && n.name === `${scope}/Conv`)!;
        return dims.get(node.inputs[1]!);
      };
      // stream 1 (8 channels) loses 2: the stem writes 6, layer1's blocks read and write 6, layer2 reads 6
      expect(convOf('/conv1')).toEqual([6, 3, 7, 7]);
      expect(convOf('/layer1/layer1.0/conv1')).toEqual([8, 6, 3, 3]);
      expect(convOf('/layer1/layer1.1/conv2')).toEqual([6, 8, 3, 3]);
      // layer2.0.conv1 loses 2 of its 12 outputs, which conv2 no longer reads; its downsample reads stream 1
      expect(convOf('/layer2/layer2.0/conv1')).toEqual([10, 6, 3, 3]);
      expect(convOf('/layer2/layer2.0/conv2')).toEqual([12, 10, 3, 3]);
      expect(convOf('/layer2/layer2.0/downsample/downsample.0')).toEqual([12, 6, 1, 1]);
      expect(convOf('/layer3/layer3.0/downsample/downsample.0')).toEqual([15, 12, 1, 1]);
      expect(convOf('/layer4/layer4.0/conv1')).toEqual([20, 15, 3, 3]);
      expect(convOf('/layer4/layer4.0/conv2')).toEqual([19, 20, 3, 3]);
      expect(dims.get('fc.weight')).toEqual([2, 19]);
      expect(dims.get('fc.bias')).toEqual([2]);

      // the bytes for fixtures-src/check-pruned-onnx.py, which made the fixture below with python3-onnx
      await mkdir('test-artifacts', { recursive: true });
      await writeFile(join('test-artifacts', 'pruned-slim-resnet-basic.onnx'), written);
      const fixture = join(import.meta.dirname, 'fixtures', 'pruned-slim-resnet-onnx.json');
      expect(existsSync(fixture), 'run fixtures-src/check-pruned-onnx.py').toBe(true);
      const python = JSON.parse(readFileSync(fixture, 'utf8')) as {
        sha256: string;
        checker: string;
        initializers: Record<string, number[]>;
        logits: number[];
      };
      expect(createHash('sha256').update(written).digest('hex')).toBe(python.sha256);
      expect(python.checker).toBe('onnx.checker.check_model(full_check=True): passed');
      expect(python.initializers['fc.weight']).toEqual([2, 19]);
      expect(relativeGap(python.logits, b!)).toBeLessThan(1e-5);
    } finally {
      x.dispose();
      pruned.dispose();
      masked.dispose();
    }
  });
});
