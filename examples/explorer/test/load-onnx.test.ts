import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isCrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { Explainer } from '../src/explainer.js';
import { loadModelFromFiles } from '../src/load-model.js';

/** The explorer opens an .onnx picked in the file dialog (with its external data file), as it would in a page. */
const MODELS = join(import.meta.dirname, '..', '..', '..', 'vendor', 'reference', 'onnx', 'models');
const file = (name: string, dir = MODELS) => new File([readFileSync(join(dir, name))], name);
/** torchvision ViTs exported by torch.onnx (scripts/golden/onnx/export_vit_onnx.py). */
const VIT = join(import.meta.dirname, '..', '..', '..', 'vendor', 'reference', 'vit');

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('opening an .onnx in the explorer', () => {
  it("imports the model under PyTorch's names", async () => {
    const { model, name } = await loadModelFromFiles([file('se_net.onnx')]);
    expect(name).toBe('se_net.onnx');
    expect(model.inputs[0]!.shape).toEqual([null, 16, 16, 3]);
    expect(model.layers.map((l) => l.name)).toContain('features.6.mul');
    model.dispose();
  });

  it('takes external data from the other selected files, and names the one missing', async () => {
    const { model } = await loadModelFromFiles([
      file('se_net_external.onnx'),
      file('se_net_external.onnx.data'),
    ]);
    const plain = await loadModelFromFiles([file('se_net.onnx')]);
    const x = tf.randomUniform([1, 16, 16, 3], -1, 1, 'float32', 3);
    const [a, b] = [model.predict(x) as tf.Tensor, plain.model.predict(x) as tf.Tensor];
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([x, a, b]);
    model.dispose();
    plain.model.dispose();
    const missing = await loadModelFromFiles([file('se_net_external.onnx')]).catch((e: unknown) => e);
    expect(isCrpError(missing, 'not-found')).toBe(true);
    expect((missing as Error).message).toMatch(
      /external file 'se_net_external.onnx.data', which was not found/,
    );
  });

  it('opens a torchvision ViT .onnx as a ViT: torchvision names, the patch grid, token heatmaps', async () => {
    const { model } = await loadModelFromFiles([file('tiny_vit.onnx', VIT)]);
    expect(model.layers.map((l) => l.name)).toContain('encoder.layers.encoder_layer_1.mlp.0');
    const explainer = new Explainer(model, 'attn_lrp', { low: -3, high: 3 });
    try {
      // 16x16 pixels in 4x4 patches: the heatmap is drawn on a 4x4 grid
      expect(explainer.embedding).toEqual({ layer: 'conv_proj', grid: [4, 4], patch: [4, 4] });
      expect(explainer.summary.layers.map((l) => l.name)).toContain(
        'encoder.layers.encoder_layer_1.self_attention.context',
      );
      const x = tf.randomUniform([1, 16, 16, 3], -1, 1, 'float32', 5);
      const explained = explainer.explainClass(x, 2, undefined);
      x.dispose();
      expect([explained.tokens?.height, explained.tokens?.width]).toEqual([4, 4]);
      expect(explained.tokens!.data.every(Number.isFinite)).toBe(true);
    } finally {
      explainer.dispose();
      model.dispose();
    }
  });

  it('refuses an operator it cannot explain, by name', async () => {
    const e = await loadModelFromFiles([file('unsupported_softplus.onnx')]).catch((err: unknown) => err);
    expect(isCrpError(e, 'unsupported-layer')).toBe(true);
    expect((e as Error).message).toMatch(/operator Softplus is not supported/);
  });
});
