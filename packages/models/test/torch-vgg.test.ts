import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isCrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { importTorchVgg, SafetensorsFile } from '../src/index.js';
import { readTorchVgg } from '../src/node.js';

/**
 * Fixtures made by fixtures-src/make-torch-vgg.py with PyTorch: a torchvision-style VGG (cfg [8, M, 16, M],
 * AdaptiveAvgPool2d((4, 4)), classifier 256-32-32-10) with and without batch norm, as F32, F16 and BF16
 * safetensors, and torch's logits for seeded NCHW inputs of 16x16 and 32x32.
 */
const FIXTURES = join(import.meta.dirname, 'fixtures');
interface Reference {
  inputs: Record<string, { shape: [number, number, number, number]; data: number[] }>;
  logits: Record<string, Record<string, number[]>>;
}
const reference = JSON.parse(readFileSync(join(FIXTURES, 'vgg-small.json'), 'utf8')) as Reference;

beforeAll(async () => {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
});

/** The fixture input `key` as NHWC. */
function input(key: string): tf.Tensor4D {
  const { shape, data } = reference.inputs[key]!;
  return tf.tidy(() => tf.transpose(tf.tensor4d(data, shape), [0, 2, 3, 1]) as tf.Tensor4D);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe('SafetensorsFile', () => {
  it('reads the header, metadata, dtypes and shapes', () => {
    const file = SafetensorsFile.parse(readFileSync(join(FIXTURES, 'vgg-small-bn.safetensors')));
    expect(file.metadata.format).toBe('pt');
    expect(JSON.parse(file.metadata.cfg!)).toEqual([8, 'M', 16, 'M']);
    expect(file.entry('features.0.weight')).toMatchObject({ dtype: 'F32', shape: [8, 3, 3, 3] });
    expect(file.entry('features.1.num_batches_tracked')).toMatchObject({ dtype: 'I64', shape: [] });
    expect(Array.from(file.float32('features.1.num_batches_tracked'))).toEqual([123]);
    expect(file.float32('classifier.0.weight').length).toBe(32 * 256);
  });

  it('widens F16 and BF16 exactly', () => {
    const f32 = SafetensorsFile.parse(readFileSync(join(FIXTURES, 'vgg-small.safetensors')));
    const bf16 = SafetensorsFile.parse(readFileSync(join(FIXTURES, 'vgg-small-bf16.safetensors')));
    const a = f32.float32('classifier.3.weight');
    const b = bf16.float32('classifier.3.weight');
    expect(bf16.entry('classifier.3.weight').dtype).toBe('BF16');
    // bf16 keeps 8 significant bits: relative error at most 2^-8
    for (let i = 0; i < a.length; i++)
      expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(Math.abs(a[i]!) / 256);
    // hand-made F16 values: 1, -2, 0.5, 65504 (max), 2^-24 (smallest subnormal), inf
    const halves = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00];
    const bytes = makeSafetensors({
      h: { dtype: 'F16', shape: [6], data: new Uint8Array(new Uint16Array(halves).buffer) },
    });
    expect(Array.from(SafetensorsFile.parse(bytes).float32('h'))).toEqual([
      1,
      -2,
      0.5,
      65504,
      2 ** -24,
      Infinity,
    ]);
  });

  it('says what is wrong with a broken file', () => {
    expect(() => SafetensorsFile.parse(new Uint8Array(4))).toThrow(/fewer than the 8-byte header length/);
    expect(() => SafetensorsFile.parse(new Uint8Array(4))).toThrow(
      expect.objectContaining({ code: 'corrupt-file' }),
    );
    const big = new Uint8Array(16);
    new DataView(big.buffer).setBigUint64(0, 1000n, true);
    expect(() => SafetensorsFile.parse(big)).toThrow(/header length says 1000 bytes but only 8 follow/);
    const odd = makeSafetensors({ x: { dtype: 'Q8', shape: [1], data: new Uint8Array(1) } });
    expect(() => SafetensorsFile.parse(odd)).toThrow(/dtype "Q8"; valid: F64, F32, F16, BF16/);
    const short = makeSafetensors({ x: { dtype: 'F32', shape: [3], data: new Uint8Array(8) } });
    expect(() => SafetensorsFile.parse(short)).toThrow(/needs 12 bytes but has 8/);
    const file = SafetensorsFile.parse(
      makeSafetensors({ x: { dtype: 'F32', shape: [2], data: new Uint8Array(8) } }),
    );
    expect(() => file.entry('y')).toThrow(/no tensor 'y'.*it has: x/);
  });
});

/** A safetensors file from tensors given as raw bytes. */
function makeSafetensors(
  tensors: Record<string, { dtype: string; shape: number[]; data: Uint8Array }>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of Object.values(tensors)) {
    out.set(t.data, at);
    at += t.data.length;
  }
  return out;
}

describe('importTorchVgg', () => {
  for (const file of Object.keys(reference.logits)) {
    it(`matches PyTorch's logits to 1e-4: ${file}`, async () => {
      const model = await readTorchVgg(join(FIXTURES, file), { inputShape: [16, 16, 3] });
      const large = await readTorchVgg(join(FIXTURES, file), { inputShape: [32, 32, 3] });
      for (const [key, m] of [
        ['16', model],
        ['32', large],
      ] as const) {
        const x = input(key);
        const y = m.predict(x) as tf.Tensor;
        expect(y.shape).toEqual([reference.inputs[key]!.shape[0], 10]);
        expect(maxAbsDiff(await y.data(), reference.logits[file]![key]!)).toBeLessThan(1e-4);
        tf.dispose([x, y]);
      }
      // 16x16 input: the 4x4 feature map is what classifier.0 expects, no pool; 32x32: a 2x2 average pool
      expect(model.layers.some((l) => l.name === 'avgpool')).toBe(false);
      expect(large.getLayer('avgpool').getClassName()).toBe('AveragePooling2D');
      model.dispose();
      large.dispose();
    });
  }

  it('gives the torch names by default and Keras-like names on request', async () => {
    const path = join(FIXTURES, 'vgg-small-bn.safetensors');
    const keras = await readTorchVgg(path, { inputShape: [16, 16, 3], layerNames: 'keras' });
    expect(keras.layers.map((l) => l.name)).toEqual([
      'block1_conv1',
      'block1_bn1',
      'block1_relu1',
      'block1_pool',
      'block2_conv1',
      'block2_bn1',
      'block2_relu1',
      'block2_pool',
      'flatten',
      'fc1',
      'fc1_relu',
      'fc1_dropout',
      'fc2',
      'fc2_relu',
      'fc2_dropout',
      'predictions',
    ]);
    const torch = await readTorchVgg(path, { inputShape: [16, 16, 3] });
    expect(torch.layers.map((l) => l.name)).toEqual([
      ...Array.from({ length: 8 }, (_, i) => `features.${i}`),
      'flatten',
      ...Array.from({ length: 7 }, (_, i) => `classifier.${i}`),
    ]);
    expect(torch.getLayer('features.0').getWeights()[0]!.shape).toEqual([3, 3, 3, 8]);
    // the same numbers either way
    const x = input('16');
    const [a, b] = [keras.predict(x) as tf.Tensor, torch.predict(x) as tf.Tensor];
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    tf.dispose([x, a, b]);
    keras.dispose();
    torch.dispose();
  });

  it('accepts an explicit cfg, a module. prefix and the bytes of the file, and leaves no tensors behind', async () => {
    const before = tf.memory().numTensors;
    const bytes = readFileSync(join(FIXTURES, 'vgg-small.safetensors'));
    const model = await importTorchVgg(bytes, { inputShape: [16, 16, 3], cfg: [8, 'M', 16, 'M'] });
    expect(model.countParams()).toBe(11002);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // a DataParallel-style prefix is found and ignored
    const file = SafetensorsFile.parse(bytes);
    const prefixed = makeSafetensors(
      Object.fromEntries(
        file.names.map((n) => [
          `module.${n}`,
          { dtype: file.entry(n).dtype, shape: [...file.entry(n).shape], data: file.raw(n) },
        ]),
      ),
    );
    const a = await importTorchVgg(prefixed, { inputShape: [16, 16, 3] });
    const b = await importTorchVgg(file, { inputShape: [16, 16, 3] });
    const x = input('16');
    const [ya, yb] = [a.predict(x) as tf.Tensor, b.predict(x) as tf.Tensor];
    expect(Array.from(await ya.data())).toEqual(Array.from(await yb.data()));
    tf.dispose([x, ya, yb]);
    a.dispose();
    b.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(importTorchVgg(bytes, { inputShape: [16, 16, 3], cfg: [8, 'M', 32, 'M'] })).rejects.toThrow(
      /cfg \[8, M, 32, M\] does not match the file, whose convolutions have 8, 16 filters/,
    );
  });

  it('pools any input size, and explains sizes and files it cannot use', async () => {
    const path = join(FIXTURES, 'vgg-small.safetensors');
    // 24x24 gives a 6x6 map that PyTorch pools to 4x4 with overlapping windows (tested against torch in
    // torch-pth.test.ts)
    const odd = await readTorchVgg(path, { inputSize: 24 });
    expect(odd.getLayer('avgpool').getClassName()).toBe('AdaptiveAveragePooling2D');
    odd.dispose();
    const err = await readTorchVgg(path, { inputShape: [3, 3, 3] }).catch((e: unknown) => e);
    expect(isCrpError(err, 'invalid-shape')).toBe(true);
    expect((err as Error).message).toMatch(
      /an input of 3x3 is too small for this VGG: its 2 max pools.*valid: inputSize >= 4/,
    );
    // the default 224x224 gives a 56x56 map: 14x14 windows
    const big = await readTorchVgg(path);
    expect(big.inputs[0]!.shape).toEqual([null, 224, 224, 3]);
    expect(big.getLayer('avgpool').getClassName()).toBe('AveragePooling2D');
    big.dispose();
    await expect(readTorchVgg(path, { inputShape: [16, 16, 1] })).rejects.toThrow(
      /takes 3; valid: \[h, w, 3\]/,
    );
    await expect(readTorchVgg(path, { layerNames: 'pytorch' as never })).rejects.toThrow(
      /valid: torch, keras/,
    );
    const other = makeSafetensors({ 'fc.weight': { dtype: 'F32', shape: [1], data: new Uint8Array(4) } });
    await expect(importTorchVgg(other)).rejects.toThrow(
      /no 'features.N.weight' and 'classifier.N.weight' tensors; it has 1 tensors in the modules fc, e.g. fc.weight \[1\]/,
    );
    await expect(readTorchVgg(join(FIXTURES, 'missing.safetensors'))).rejects.toThrow(
      /cannot read the weights file/,
    );
    await expect(readTorchVgg(join(FIXTURES, 'missing.safetensors'))).rejects.toMatchObject({
      code: 'not-found',
    });
  });
});
