/**
 * Back to PyTorch: a model with PyTorch's layer names is written as a state_dict .pth that reads back (with this
 * package's reader, which parses what torch.save writes) to exactly the tensors it was imported from: a VGG with
 * batch norm and a first Linear after a Flatten (rows back in torch's (c, h, w) order), and a torchvision resnet18.
 * That torch itself loads such a file into torchvision's architecture is tested in @crp/pruning (a pruned ResNet,
 * checked once by a committed Python script).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectCrpError } from '@crp/testing';
import { formulaStateDict } from '@crp/testing/torch-weights';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  encodeTorchStateDict,
  PthFile,
  SafetensorsFile,
  type StateDict,
  torchResNetFromStateDict,
  torchResNetShapes,
  torchStateDictOf,
  torchVggFromStateDict,
} from '../src/index.js';
import { writeTorchStateDict } from '../src/node.js';

beforeAll(async () => {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
});

/** Every float tensor of `original` equals the one read back, bit for bit; the names are the same set. */
function expectSameTensors(original: StateDict, back: StateDict): void {
  expect([...back.names].sort()).toEqual([...original.names].sort());
  for (const name of original.names) {
    expect(back.entry(name).shape, name).toEqual(original.entry(name).shape);
    if (name.endsWith('num_batches_tracked')) continue;
    const a = original.float32(name);
    const b = back.float32(name);
    let differ = 0;
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) differ++;
    expect(differ, name).toBe(0);
  }
}

describe('encodeTorchStateDict / torchStateDictOf', () => {
  it('writes an imported VGG back to its tensors (batch norm, the first Linear in torch order)', () => {
    const original = SafetensorsFile.parse(
      readFileSync(join(import.meta.dirname, 'fixtures', 'vgg-small-bn.safetensors')),
    );
    const model = torchVggFromStateDict(original, { inputShape: [16, 16, 3] });
    const bytes = encodeTorchStateDict(torchStateDictOf(model));
    const back = PthFile.parse(bytes, 'written');
    expect(back.content).toBe('state-dict');
    expectSameTensors(original, back);
    expect(back.entry('features.1.num_batches_tracked').dtype).toBe('int64');
    // deterministic: the same model gives the same bytes
    expect(encodeTorchStateDict(torchStateDictOf(model))).toEqual(bytes);
    model.dispose();
  });

  it('writes an imported resnet18 back to its tensors, atomically through writeTorchStateDict', async () => {
    const original = formulaStateDict(
      torchResNetShapes({ block: 'basic', layers: [2, 2, 2, 2], classes: 3 }),
      3,
    ) as StateDict;
    const model = torchResNetFromStateDict(original, { inputSize: 32 });
    const dir = await mkdtemp(join(tmpdir(), 'crp-pth-'));
    try {
      const path = join(dir, 'state_dict.pth');
      await writeTorchStateDict(model, path);
      expectSameTensors(original, PthFile.parse(await readFile(path), path));
    } finally {
      await rm(dir, { recursive: true, force: true });
      model.dispose();
    }
  });

  it('refuses a layer without a PyTorch counterpart and a tensor whose size does not fit its shape', () => {
    const x = tfl.input({ shape: [4, 4, 2] });
    const y = tfl.layers.depthwiseConv2d({ kernelSize: 3, name: 'dw' }).apply(x) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: x, outputs: y });
    expectCrpError(() => torchStateDictOf(model), 'unsupported-model', "layer 'dw' (DepthwiseConv2D)");
    model.dispose();
    expectCrpError(
      () => encodeTorchStateDict(new Map([['w', { shape: [2, 3], data: new Float32Array(5) }]])),
      'invalid-argument',
      "tensor 'w' has shape [2, 3] (6 values) but 5 values",
    );
  });
});
