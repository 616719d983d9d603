/**
 * Back to the user's format for an `.onnx` model: `crp prune --export DIR --model x.onnx` writes the pruned model
 * as DIR/model.onnx too (besides TF.js's model.json): the source graph (node names, input and output names,
 * opset) with the pruned initializers. Read back, it computes what the exported TF.js model computes. The model is
 * the slim ResNet of packages/models/fixtures-src/make-slim-resnets.py exported by torch.onnx.export (batch norms
 * folded into the convs, so a torchvision state dict of it is impossible).
 */
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importOnnx, parseOnnxModel } from '@crp/models';
import { onnxTensorValues } from '@crp/models/internal';
import { fileSystem } from '@crp/models/node';
import { ChannelMask, type ChannelMaskJSON } from '@crp/pruning';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PruneOutput } from '../src/index.js';
import { crp, resultOf } from './run.js';
import { writeTinyVit } from './tiny-vit.js';

const ROOT = join(import.meta.dirname, '..', '..');
const ONNX = join(ROOT, 'models', 'test', 'fixtures', 'onnx', 'slim-resnet-basic.onnx');
const DATA = join(ROOT, 'study', 'test', 'fixtures', 'patches');

describe('crp prune --export on a ResNet from .onnx', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crp-prune-onnx-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes DIR/model.onnx: the source graph with the pruned weights, the exported model’s logits', async () => {
    const exported = join(dir, 'pruned');
    const r = await crp(
      'prune',
      '--model',
      ONNX,
      '--normalize',
      'imagenet',
      '--data',
      DATA,
      '--samples',
      '4',
      '--layers',
      'layer2.0.conv1,layer1.0.add,layer4.0.add',
      '--export',
      exported,
      '--criterion',
      'weight',
      '--fraction',
      '0.25',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const e = resultOf<PruneOutput>(r.stdout).export!;
    expect(e.onnx).toBe(join(exported, 'model.onnx'));
    expect(resultOf<PruneOutput>(r.stdout).files).toContain(join(exported, 'model.onnx'));
    const mask = ChannelMask.fromJSON(
      JSON.parse(await readFile(join(exported, 'mask.json'), 'utf8')) as ChannelMaskJSON,
    );
    expect([...mask.layers].sort()).toEqual(['layer1.0.add', 'layer2.0.conv1', 'layer4.0.add']);
    const source = new Uint8Array(readFileSync(ONNX));
    const written = new Uint8Array(readFileSync(join(exported, 'model.onnx')));
    const [src, out] = [parseOnnxModel(source), parseOnnxModel(written)];
    expect(out.graph.nodes).toEqual(src.graph.nodes);
    expect(out.graph.inputs).toEqual(src.graph.inputs);
    expect(out.graph.outputs).toEqual(src.graph.outputs);
    expect(out.opsets).toEqual(src.opsets);
    // a quarter of fc's 20 inputs (stream 4) are gone
    const fc = out.graph.initializers.find((t) => t.name === 'fc.weight')!;
    expect(fc.dims).toEqual([2, 20 - mask.channels('layer4.0.add').length]);
    expect(mask.channels('layer4.0.add').length).toBe(5);
    const small = await tfl.loadLayersModel(fileSystem(exported));
    const back = importOnnx(written);
    const x = tf.randomNormal([3, 32, 32, 3], 0, 1, 'float32', 11);
    const [a, b] = [small.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
    const [ya, yb] = [a.dataSync(), b.dataSync()];
    const scale = Math.max(...Array.from(ya, Math.abs));
    for (let i = 0; i < ya.length; i++) expect(Math.abs(ya[i]! - yb[i]!)).toBeLessThan(1e-5 * scale);
    tf.dispose([x, a, b]);
    small.dispose();
    back.dispose();
  });
  it('writes nothing when the .onnx cannot hold the pruned model (a pruned conv before x * a + b constants)', async () => {
    // @crp/models fixtures-src/make-conv-affine-onnx.py: conv -> Mul -> Add (read as a batch norm) -> ReLU -> pool -> Gemm
    const exported = join(dir, 'refused');
    const r = await crp(
      'prune',
      '--model',
      join(ROOT, 'models', 'test', 'fixtures', 'onnx', 'conv-affine.onnx'),
      '--data',
      DATA,
      '--samples',
      '4',
      '--layers',
      'conv',
      '--export',
      exported,
      '--criterion',
      'weight',
      '--fraction',
      '0.25',
    );
    expect(r.code, r.stdout).toBe(1);
    expect(r.stderr).toMatch(/element-wise operators/);
    // not a TF.js model without its mask.json or .onnx beside it
    expect(await readdir(exported).catch(() => [])).toEqual([]);
  });

  it('refuses --export of a Vision Transformer .onnx before any work, saying what runs instead, and writes nothing', async () => {
    // the ONNX writer puts back CNNs; @crp/models' timm-style ViT fixture (torch.onnx.export)
    const vit = join(ROOT, 'models', 'test', 'fixtures', 'onnx', 'timm_style_vit.onnx');
    const exported = join(dir, 'vit');
    // a data folder whose reading fails (an image of each class is not an image): the refusal must come first
    const unreadable = join(dir, 'unreadable-data');
    for (const c of ['a', 'b']) {
      await mkdir(join(unreadable, c), { recursive: true });
      await writeFile(join(unreadable, c, 'x.png'), 'not a PNG');
    }
    const r = await crp(
      'prune',
      '--model',
      vit,
      '--data',
      unreadable,
      '--samples',
      '4',
      '--export',
      exported,
      '--criterion',
      'weight',
    );
    expect(r.code, r.stdout).toBe(1);
    expect(r.stderr).toBe(
      `crp prune: --export writes a pruned .onnx for CNNs only, and '${vit}' is a Vision Transformer, whose weights the ONNX writer cannot put back; leave out --export for its pruning curves (channels masked, not removed), or prune the same ViT read from its torchvision .pth, whose --export writes the pruned TF.js model`,
    );
    expect(await readdir(exported).catch(() => [])).toEqual([]);
    // the same command without --export reads the data, and fails there
    const loads = await crp(
      'prune',
      '--model',
      vit,
      '--data',
      unreadable,
      '--samples',
      '4',
      '--criteria',
      'weight',
    );
    expect(loads.code, loads.stderr).toBe(1);
    expect(loads.stderr).toMatch(/x\.png/);
    // what the message offers: a ViT from its .pth is pruned and exported (as TF.js, with its mask)
    const pth = join(dir, 'vit.pth');
    await writeTinyVit(pth);
    const fromPth = join(dir, 'vit-pth');
    const ok = await crp(
      'prune',
      '--model',
      pth,
      '--heads',
      '2',
      '--data',
      DATA,
      '--samples',
      '4',
      '--export',
      fromPth,
      '--criterion',
      'weight',
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect((await readdir(fromPth)).sort()).toEqual(['mask.json', 'model.json', 'weights.bin']);
  });

  it('writes a self-contained model.onnx from a source with external data and Reshape targets that name the pruned channels', async () => {
    // @crp/models fixtures-src/make-reshape-net.py: conv2's 8 channels of a 4 x 4 map reach Gemms through a Flatten,
    // a Reshape to [-1, 128] and a pooled Reshape to [0, 8]; every initializer is in reshape-net-external.onnx.data
    const source = join(dir, 'external');
    await mkdir(source);
    for (const f of ['reshape-net-external.onnx', 'reshape-net-external.onnx.data'])
      await copyFile(join(ROOT, 'models', 'test', 'fixtures', 'onnx', f), join(source, f));
    const exported = join(dir, 'external-pruned');
    const r = await crp(
      'prune',
      '--model',
      join(source, 'reshape-net-external.onnx'),
      '--data',
      DATA,
      '--samples',
      '4',
      '--layers',
      'conv2',
      '--export',
      exported,
      '--criterion',
      'weight',
      '--fraction',
      '0.25',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const written = new Uint8Array(readFileSync(join(exported, 'model.onnx')));
    const out = parseOnnxModel(written);
    expect(out.graph.initializers.filter((t) => t.external !== undefined)).toEqual([]);
    const shape = out.graph.nodes.find((n) => n.name === '/Reshape_shape')!.attributes.get('value')!.t!;
    expect(Array.from(onnxTensorValues(shape))).toEqual([-1, 6 * 16]); // 2 of conv2's 8 channels gone
    const small = await tfl.loadLayersModel(fileSystem(exported));
    const back = importOnnx(written);
    const x = tf.randomNormal([3, 8, 8, 3], 0, 1, 'float32', 11);
    const [a, b] = [small.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
    const [ya, yb] = [a.dataSync(), b.dataSync()];
    const scale = Math.max(...Array.from(ya, Math.abs));
    for (let i = 0; i < ya.length; i++) expect(Math.abs(ya[i]! - yb[i]!)).toBeLessThan(1e-5 * scale);
    tf.dispose([x, a, b]);
    small.dispose();
    back.dispose();
  });
});
