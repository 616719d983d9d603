/**
 * Vision Transformers: torchvision's VisionTransformer from a `.pth` file (written by scripts/golden/lxt_vit.py with
 * torchvision 0.14 from the weights of vendor/reference/vit) against PyTorch's logits and LXT's AttnLRP and CP-LRP
 * relevances; the same model from the JSON weights of the golden set; image sizes other than the position
 * embeddings' and attention variants the engine does not know are refused by name; token relevance on the patch
 * grid. The CRP cases (an MLP neuron, a head) run in the conformance suite (kind `vit`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Attributor, attnLrp, cpLrp, disposeResult } from '@crp/lrp';
import { expectCrpErrorAsync } from '@crp/testing';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { referencePath } from '@crp/testing/reference';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  importTorchVit,
  PthFile,
  type StateDict,
  tokenHeatmap,
  torchVitLayout,
  type VitConfig,
  vit,
} from '../src/index.js';
import { setVitWeights, vitPatchGrid } from '../src/internal.js';
import { loadModel } from '../src/node.js';

const PTH = join(import.meta.dirname, 'fixtures', 'pth', 'tiny-vit.pth');
const GOLDEN = referencePath('vit');

interface Golden {
  shape: number[];
  data: number[];
}
const read = <T>(file: string) => JSON.parse(readFileSync(join(GOLDEN, file), 'utf8')) as T;
const tinyVit = read<{ config: VitConfig; weights: Record<string, Golden> }>('tiny_vit.json');
const caseOf = (id: string) =>
  read<{ input: Golden; targets: number[]; logits: Golden; relevance: Record<string, Golden> }>(
    `cases/${id}.json`,
  );

/** max |a - b| / max |b| */
function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

const pth = () => PthFile.parse(readFileSync(PTH), 'tiny-vit.pth');

beforeAll(async () => {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
});

describe('torchvision ViT from .pth', () => {
  it('reads the layout from the keys; heads come from torchvision’s configurations or the options', () => {
    const layout = torchVitLayout(pth());
    expect(layout).toEqual({
      prefix: '',
      torchvision: undefined,
      patchSize: 4,
      channels: 3,
      hiddenDim: 16,
      mlpDim: 32,
      numLayers: 2,
      numClasses: 5,
      tokens: 17,
    });
  });

  it('gives PyTorch’s logits and LXT’s AttnLRP and CP-LRP relevances, with PyTorch’s layer names', async () => {
    const model = await importTorchVit(pth(), { numHeads: 2 });
    expect(model.name).toBe('vit');
    expect(model.getLayer('encoder.layers.encoder_layer_1.mlp.1').getConfig().activation).toBe('gelu');
    for (const [id, composite] of [
      ['attn_lrp__tiny_vit', attnLrp()],
      ['cp_lrp__tiny_vit', cpLrp()],
    ] as const) {
      const c = caseOf(id);
      const x = tf.tensor(c.input.data, c.input.shape);
      const logits = model.predict(x) as tf.Tensor;
      expect(relError(logits.dataSync(), c.logits.data)).toBeLessThan(1e-5);
      const lrp = new Attributor(model, { composite });
      const layers = Object.keys(c.relevance).filter((k) => k !== 'input');
      const r = lrp.attribute(x, { target: c.targets, recordLayers: layers });
      expect(relError(r.relevance.dataSync(), c.relevance.input!.data), `${id} input`).toBeLessThan(1e-4);
      for (const layer of layers) {
        expect(
          relError(r.relevances[layer]!.dataSync(), c.relevance[layer]!.data),
          `${id} ${layer}`,
        ).toBeLessThan(1e-4);
      }
      disposeResult(r);
      lrp.dispose();
      x.dispose();
      logits.dispose();
    }
    model.dispose();
  });

  it('is the model vit() builds from the golden JSON weights', async () => {
    const fromPth = await importTorchVit(pth(), { numHeads: 2 });
    const fromJson = vit(tinyVit.config);
    setVitWeights(fromJson, tinyVit.config, (name) => Float32Array.from(tinyVit.weights[name]!.data));
    const a = fromPth.getWeights();
    const b = fromJson.getWeights();
    expect(a.length).toBe(b.length);
    a.forEach((w, i) => {
      expect(w.shape).toEqual(b[i]!.shape);
      expect(Array.from(w.dataSync())).toEqual(Array.from(b[i]!.dataSync()));
    });
    fromPth.dispose();
    fromJson.dispose();
  });

  it('loadModel tells a ViT from a VGG by its patch embedding', async () => {
    await expectCrpErrorAsync(
      () => loadModel(PTH),
      'unsupported-model',
      /attention heads is not stored.*numHeads/,
    );
    const model = (await importTorchVit(pth(), { numHeads: 2, imageSize: [16, 16] })) as tfl.LayersModel;
    expect(model.inputs[0]!.shape).toEqual([null, 16, 16, 3]);
    model.dispose();
  });
});

/** A state dict with one tensor more (zeros). */
function withExtra(sd: StateDict, name: string, shape: number[]): StateDict {
  return {
    names: [...sd.names, name],
    has: (n) => n === name || sd.has(n),
    entry: (n) => (n === name ? { dtype: 'float32', shape } : sd.entry(n)),
    float32: (n, o) => (n === name ? new Float32Array(shape.reduce((a, b) => a * b, 1)) : sd.float32(n, o)),
  };
}

describe('bad input is refused by name', () => {
  it('an image size whose patches do not match the position embeddings (no interpolation, as torchvision)', async () => {
    await expectCrpErrorAsync(
      () => importTorchVit(pth(), { numHeads: 2, imageSize: 20 }),
      'invalid-shape',
      /trained for 16 patches of 4x4 pixels \(16x16 images\); 20x20 gives 25 patches\. Position embeddings are not interpolated/,
    );
    await expectCrpErrorAsync(
      () => importTorchVit(pth(), { numHeads: 2, imageSize: 18 }),
      'invalid-shape',
      /no whole number of patches/,
    );
  });

  it('an attention variant the engine does not know (relative position bias), naming the tensor and block', async () => {
    const sd = withExtra(
      pth(),
      'encoder.layers.encoder_layer_1.self_attention.relative_position_bias_table',
      [9, 2],
    );
    await expectCrpErrorAsync(
      () => importTorchVit(sd, { numHeads: 2 }),
      'unsupported-model',
      /'encoder\.layers\.encoder_layer_1\.self_attention\.relative_position_bias_table' of encoder block 1 is not part of torchvision's EncoderBlock.*approximates nothing/,
    );
    const preLogits = withExtra(pth(), 'heads.pre_logits.weight', [16, 16]);
    await expectCrpErrorAsync(
      () => importTorchVit(preLogits, { numHeads: 2 }),
      'unsupported-model',
      /'heads\.pre_logits\.weight'/,
    );
  });

  it('a state dict that is no ViT says what a ViT has', () => {
    const names = ['features.0.weight'];
    const sd: StateDict = {
      names,
      has: (n) => names.includes(n),
      entry: () => ({ dtype: 'float32', shape: [1] }),
      float32: () => new Float32Array(1),
    };
    expect(() => torchVitLayout(sd)).toThrowError(
      /no torchvision ViT: no 'conv_proj\.weight'.*valid: a state dict of torchvision's VisionTransformer/,
    );
  });
});

describe('token relevance on the patch grid', () => {
  it('sums the features of each patch token, drops the class token, and upsamples by the patch size', () => {
    const config: VitConfig = {
      imageSize: [4, 6],
      patchSize: 2,
      numLayers: 0,
      numHeads: 1,
      hiddenDim: 2,
      mlpDim: 2,
    };
    expect(vitPatchGrid(config)).toEqual([2, 3]);
    // 1 row, 7 tokens (class + 2x3), 2 features: token t has features [t, 10 t]
    const data = Array.from({ length: 7 }, (_, t) => [t, 10 * t]).flat();
    const r = tf.tensor3d(data, [1, 7, 2]);
    const grid = tokenHeatmap(r, config);
    expect(grid.shape).toEqual([1, 2, 3]);
    expect(Array.from(grid.dataSync())).toEqual([11, 22, 33, 44, 55, 66]);
    const image = tokenHeatmap(r, config, { upsample: true });
    expect(image.shape).toEqual([1, 4, 6]);
    expect(Array.from(image.dataSync())).toEqual([
      11, 11, 22, 22, 33, 33, 11, 11, 22, 22, 33, 33, 44, 44, 55, 55, 66, 66, 44, 44, 55, 55, 66, 66,
    ]);
    const wrong = tf.zeros([1, 6, 2]);
    expect(() => tokenHeatmap(wrong, config)).toThrowError(/\[rows, 7, features\]/);
    for (const t of [r, grid, image, wrong]) t.dispose();
  });
});
