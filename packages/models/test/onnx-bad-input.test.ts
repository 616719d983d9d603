import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrpError, isCrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importOnnx, parseOnnxModel } from '../src/index.js';
import { loadModel, readOnnx } from '../src/node.js';

/** Bad ONNX input gets a CrpError that says what was wrong and how to fix it; nothing is guessed. Fixtures from
 * scripts/golden/onnx/make_onnx_golden.py (vendor/reference/onnx/models). */
const MODELS = join(import.meta.dirname, '..', '..', '..', 'vendor', 'reference', 'onnx', 'models');
const CASES = join(MODELS, '..', 'cases');
const bytes = (name: string) => new Uint8Array(readFileSync(join(MODELS, name)));
const seCase = JSON.parse(readFileSync(join(CASES, 'onnx_lrp_EpsilonPlusFlat__se_net.json'), 'utf8')) as {
  input: { shape: number[]; data: number[] };
  logits: { data: number[] };
};
const tmp = mkdtempSync(join(tmpdir(), 'crp-onnx-'));

beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function thrown(f: () => unknown): CrpError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(CrpError);
    return err as CrpError;
  }
  throw new Error('no error thrown');
}

function expectLogits(model: { predict(x: tf.Tensor): unknown }) {
  const y = tf.tidy(() => model.predict(tf.tensor(seCase.input.data, seCase.input.shape)) as tf.Tensor);
  const got = y.dataSync();
  seCase.logits.data.forEach((v, i) => {
    expect(Math.abs(got[i]! - v)).toBeLessThan(1e-5);
  });
  y.dispose();
}

describe('bad ONNX input', () => {
  it('a truncated file: corrupt-file at any cut, with the byte offset', () => {
    const full = bytes('se_net.onnx');
    for (const cut of [1, 10, 100, 1000, 5000, full.length - 1]) {
      const e = thrown(() => importOnnx(full.subarray(0, cut)));
      expect(e.code, `cut at ${cut}`).toBe('corrupt-file');
      expect(e.message).toMatch(
        /not a valid ONNX model: .* \(the file may be truncated or not an \.onnx file\)/,
      );
    }
    expect(thrown(() => parseOnnxModel(new TextEncoder().encode('{"format": "layers-model"}'))).code).toBe(
      'corrupt-file',
    );
  });

  it('an unsupported operator: refused with the operator, the node and the supported list', () => {
    const e = thrown(() => importOnnx(bytes('unsupported_softplus.onnx')));
    expect(e.code).toBe('unsupported-layer');
    expect(e.message).toMatch(
      /ONNX node '\/act\/Softplus' \(Softplus\): operator Softplus is not supported. Supported operators: Conv, Gemm, MatMul, /,
    );
    expect(e.details).toMatchObject({ opType: 'Softplus', node: '/act/Softplus' });
  });

  it('a Reshape that mixes the elements of the samples is refused, not read as a flatten', () => {
    // fixtures-src/make-writer-refusals.py: [2, 3, 1, 1] to [-1, 2] is ONNX's [3, 2]
    const model = readFileSync(join(import.meta.dirname, 'fixtures', 'onnx', 'batch-mixing-reshape.onnx'));
    const e = thrown(() => importOnnx(new Uint8Array(model)));
    expect(e.code).toBe('unsupported-layer');
    expect(e.message).toBe(
      "ONNX node 'reshape' (Reshape): a reshape of [-1, 3, 1, 1] to [-1, 2] mixes the elements of the samples (3 per sample, the target rows hold 2); supported: targets that keep each sample's elements together",
    );
  });

  it('an opset outside 11-20 is refused', () => {
    for (const opset of [9, 21]) {
      const model = parseOnnxModel(bytes('se_net.onnx'));
      model.opsets.set('', opset);
      const e = thrown(() => importOnnx(model));
      expect([e.code, e.message]).toEqual([
        'unsupported-format',
        `ONNX opset ${opset} is not supported; supported: 11 to 20 (re-export with torch.onnx.export(..., opset_version=17))`,
      ]);
    }
  });

  it('an operator read only in a ViT (LayerNormalization) is refused in a CNN, saying where it is read', () => {
    const model = parseOnnxModel(bytes('unsupported_softplus.onnx'));
    const node = model.graph.nodes.find((n) => n.opType === 'Softplus')!;
    node.opType = 'LayerNormalization';
    const e = thrown(() => importOnnx(model));
    expect(e.code).toBe('unsupported-layer');
    expect(e.message).toContain(
      "(LayerNormalization): operator LayerNormalization is not supported in a CNN (it is read only inside torchvision's Vision Transformer, a graph with a MatMul of two activations). Supported operators: Conv, Gemm,",
    );
  });

  it('a dynamic input size: names the input and says how to fix it; inputSize fixes it', () => {
    const e = thrown(() => importOnnx(bytes('se_net_dynamic.onnx')));
    expect(e.code).toBe('invalid-shape');
    expect(e.message).toBe(
      "the ONNX input 'input' has a dynamic height ('height') in its shape [batch, 3, height, width], which the engine cannot fix by itself; give the input size: inputSize: [height, width] (crp: --input-size HxW)",
    );
    const model = importOnnx(bytes('se_net_dynamic.onnx'), { inputSize: 16 });
    expectLogits(model);
    model.dispose();
    const wide = importOnnx(bytes('se_net_dynamic.onnx'), { inputSize: [24, 32] });
    expect(wide.inputs[0]!.shape).toEqual([null, 24, 32, 3]);
    wide.dispose();
    expect(thrown(() => importOnnx(bytes('se_net.onnx'), { inputSize: 32 })).message).toBe(
      "inputSize 32x32 does not fit the ONNX input 'input', whose height is fixed at 16",
    );
  });

  it('external data: read from beside the model; missing, the tensor and the file are named', async () => {
    const model = await readOnnx(join(MODELS, 'se_net_external.onnx'));
    expectLogits(model);
    model.dispose();
    copyFileSync(join(MODELS, 'se_net_external.onnx'), join(tmp, 'se_net_external.onnx'));
    const missing = await readOnnx(join(tmp, 'se_net_external.onnx')).catch((err: unknown) => err);
    expect(isCrpError(missing, 'not-found')).toBe(true);
    expect((missing as CrpError).message).toMatch(
      /^ONNX tensor '.+' stores its data in the external file 'se_net_external.onnx.data', which was not found; keep it beside the .onnx file/,
    );
    expect(thrown(() => importOnnx(bytes('se_net_external.onnx'))).code).toBe('not-found');
    const file = readFileSync(join(MODELS, 'se_net_external.onnx.data'));
    writeFileSync(join(tmp, 'se_net_external.onnx.data'), file.subarray(0, 100));
    const short = await readOnnx(join(tmp, 'se_net_external.onnx')).catch((err: unknown) => err);
    expect(isCrpError(short, 'corrupt-file')).toBe(true);
  });

  it('loadModel reads .onnx files; a missing one is not-found', async () => {
    const model = await loadModel(join(MODELS, 'se_net.onnx'));
    expectLogits(model);
    model.dispose();
    const e = await readOnnx(join(tmp, 'nothing.onnx')).catch((err: unknown) => err);
    expect(isCrpError(e, 'not-found')).toBe(true);
  });

  it('importing and disposing leaves no tensors behind', () => {
    const first = importOnnx(bytes('densenet_like.onnx'));
    first.dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) importOnnx(bytes('densenet_like.onnx')).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
