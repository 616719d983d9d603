import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrpError, isCrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { referencePath } from '@crp/testing/reference';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importOnnx, ONNX_SUPPORTED_OPS, parseOnnxModel } from '../src/index.js';
import { loadModel, readOnnx } from '../src/node.js';

/** Bad ONNX input gets a CrpError that says what was wrong and how to fix it; nothing is guessed. Fixtures from
 * scripts/golden/onnx/make_onnx_golden.py (vendor/reference/onnx/models). */
const MODELS = referencePath('onnx', 'models');
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
    // the whole list, as ONNX_SUPPORTED_OPS has it
    expect(e.message.endsWith(`Supported operators: ${ONNX_SUPPORTED_OPS.join(', ')}`)).toBe(true);
    expect(ONNX_SUPPORTED_OPS).toEqual(
      expect.arrayContaining(['Conv', 'Gemm', 'BatchNormalization', 'Concat']),
    );
  });

  it('a Reshape that mixes the elements of the samples is refused, not read as a flatten', () => {
    // fixtures-src/make-writer-refusals.py: [2, 3, 1, 1] to [-1, 2] is ONNX's [3, 2]
    const model = readFileSync(join(import.meta.dirname, 'fixtures', 'onnx', 'batch-mixing-reshape.onnx'));
    const e = thrown(() => importOnnx(new Uint8Array(model)));
    expect(e.code).toBe('unsupported-layer');
    expect(e.message).toBe(
      "ONNX node 'reshape' (Reshape): a reshape of [-1, 3, 1, 1] to [-1, 2] mixes the elements of the samples (3 per sample, the target rows hold 2); supported: targets that keep the batch axis, with -1, 0 or 2 (the batch size the input fixes) first and each sample's 3 elements in the rest",
    );
  });

  describe('a Reshape target must keep the batch axis', () => {
    // batch-mixing-reshape.onnx (conv -> global pool [N, 3, 1, 1] -> Reshape by `shape` -> Gemm by `g`), its
    // target, the input's batch dim and Gemm rows set per case
    const source = readFileSync(join(import.meta.dirname, 'fixtures', 'onnx', 'batch-mixing-reshape.onnx'));
    function graph(
      target: number[],
      opts: { batch?: number | string; allowzero?: number; unpooled?: true } = {},
    ) {
      const model = parseOnnxModel(new Uint8Array(source));
      const g = model.graph;
      const shape = g.initializers.find((t) => t.name === 'shape')!;
      Object.assign(shape, { dims: [target.length], int64Data: target, rawData: undefined });
      // the Gemm reads 3 features per sample ([N, 3] after the reshape)
      const gemm = g.initializers.find((t) => t.name === 'g')!;
      const rows = Array.from({ length: 12 }, (_, i) => ((i * 7) % 5) / 4 - 0.5);
      Object.assign(gemm, { dims: [4, 3], floatData: rows, rawData: undefined });
      g.inputs[0]!.shape![0] = opts.batch ?? 'N';
      const reshape = g.nodes.find((n) => n.name === 'reshape')!;
      if (opts.allowzero !== undefined)
        reshape.attributes.set('allowzero', {
          name: 'allowzero',
          type: 2,
          i: opts.allowzero,
          floats: [],
          ints: [],
        });
      if (opts.unpooled === true) reshape.inputs[0] = 'y'; // the conv's [N, 3, 4, 4], not the pooled map
      return model;
    }
    const logits = (model: ReturnType<typeof parseOnnxModel>): number[] => {
      const m = importOnnx(model);
      const x = tf.tidy(() => tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 3));
      const y = m.predict(x) as tf.Tensor;
      const out = Array.from(y.dataSync());
      tf.dispose([x, y]);
      m.dispose();
      return out;
    };

    it('-1 or 0 first, or the batch size the input fixes, then one sample: read as the same [N, 3]', () => {
      const expected = logits(graph([-1, 3]));
      expect(expected).toHaveLength(8);
      for (const [target, batch] of [
        [[0, 3], 'N'],
        [[0, -1], 'N'],
        [[-1, 0], 'N'],
        [[0, 0], 'N'],
        [[2, -1], 2],
        [[2, 3], 2],
      ] as const)
        expect(logits(graph([...target], { batch })), `${target} on batch ${batch}`).toEqual(expected);
    });

    it('another first count, which mixes the samples, is refused naming the node and what is supported', () => {
      const dynamic = thrown(() => importOnnx(graph([8, -1])));
      expect([dynamic.code, dynamic.message, dynamic.details]).toEqual([
        'unsupported-layer',
        "ONNX node 'reshape' (Reshape): a reshape of [-1, 3, 1, 1] to [8, -1] changes the batch axis (its first count 8, while the batch size is dynamic), which mixes the samples; supported: targets that keep the batch axis, with -1 or 0 first and each sample's 3 elements in the rest",
        { opType: 'Reshape', node: 'reshape', target: [8, -1] },
      ]);
      // torch's trace at batch 2 writes [2, -1]: the same as keeping the batch axis only where the input fixes 2
      expect(thrown(() => importOnnx(graph([2, -1]))).message).toContain(
        'changes the batch axis (its first count 2, while the batch size is dynamic)',
      );
      expect(thrown(() => importOnnx(graph([1, -1], { batch: 2 }))).message).toContain(
        'changes the batch axis (its first count 1, while the input fixes the batch size at 2), which mixes the samples; supported: targets that keep the batch axis, with -1, 0 or 2 (the batch size the input fixes) first',
      );
    });

    it('a target that folds spatial positions into the batch axis, or flattens the batch, is refused', () => {
      // [-1, 3] of [N, 3, 4, 4] is ONNX's [16 N, 3]: each row one position of one sample
      expect(thrown(() => importOnnx(graph([-1, 3], { unpooled: true }))).message).toBe(
        "ONNX node 'reshape' (Reshape): a reshape of [-1, 3, 4, 4] to [-1, 3] mixes the elements of the samples (48 per sample, the target rows hold 3); supported: targets that keep the batch axis, with -1 or 0 first and each sample's 48 elements in the rest",
      );
      expect(thrown(() => importOnnx(graph([-1]))).message).toContain(
        'a reshape of [-1, 3, 1, 1] to [-1] mixes the elements of the samples (3 per sample, the target rows hold 1)',
      );
      // counts that do not divide a sample
      expect(thrown(() => importOnnx(graph([0, 2, -1]))).message).toContain(
        '(3 per sample, which the fixed counts of the rest, 2 per row, do not divide)',
      );
    });

    it('what ONNX rejects or makes empty is refused too', () => {
      expect(thrown(() => importOnnx(graph([-1, -1]))).message).toBe(
        "ONNX node 'reshape' (Reshape): a reshape of [-1, 3, 1, 1] to [-1, -1] is not valid ONNX: one -1 at most, the other counts 0 or positive",
      );
      expect(thrown(() => importOnnx(graph([0, 3], { allowzero: 1 }))).message).toContain(
        'to [0, 3] with allowzero 1 makes a dimension of size 0; supported:',
      );
      expect(thrown(() => importOnnx(graph([-1, 3, 1, 1, 0]))).message).toContain(
        'copies (0) a dimension the 4-D input does not have',
      );
    });
  });

  it('an opset outside 11-20 is refused', () => {
    for (const opset of [9, 10, 21]) {
      const model = parseOnnxModel(bytes('se_net.onnx'));
      model.opsets.set('', opset);
      const e = thrown(() => importOnnx(model));
      expect([e.code, e.message]).toEqual([
        'unsupported-format',
        `ONNX opset ${opset} is not supported; supported: 11 to 20 (re-export with torch.onnx.export(..., opset_version=17))`,
      ]);
    }
  });

  it('a model without an opset of the default domain is refused, naming the domains it imports', () => {
    const model = parseOnnxModel(bytes('se_net.onnx'));
    model.opsets.delete('');
    model.opsets.set('com.microsoft', 1);
    const e = thrown(() => importOnnx(model));
    expect([e.code, e.message]).toEqual([
      'unsupported-format',
      "the ONNX model imports no opset of the default domain ('' or 'ai.onnx'), only of 'com.microsoft'; supported: opsets 11 to 20 of the default domain (re-export with torch.onnx.export(..., opset_version=17))",
    ]);
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
