/**
 * torchvision ViTs through ONNX: the golden generator's small ViT exported by torch.onnx.export (Debian torch 1.13;
 * scripts/golden/onnx/export_vit_onnx.py) at opset 17 (LayerNormalization), 14 (LayerNorm decomposed), 11-13 (axes
 * and split sizes as attributes, Softmax's pre-13 semantics), with the exporter's defaults (constants folded), and
 * rewritten with one `Gelu` node per block (opset 20) is read
 * into the same model as its `.pth`: the same layer names, the same weights bit for bit, PyTorch's logits. Attention
 * variants the engine does not know and image sizes the position embeddings do not fit are refused by name. The
 * AttnLRP/CP-LRP/CRP golden cases run through these files in the conformance suite (kind `vit`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CrpError, isCrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { referencePath } from '@crp/testing/reference';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  importOnnx,
  importTorchVit,
  ONNX_VIT_SUPPORTED_OPS,
  type OnnxModel,
  PthFile,
  parseOnnxModel,
} from '../src/index.js';

const GOLDEN = referencePath('vit');
const PTH = join(import.meta.dirname, 'fixtures', 'pth', 'tiny-vit.pth');
// opset 17 (LayerNormalization), opset 14 (LayerNorm decomposed), torch.onnx.export's defaults (constants folded,
// batch fixed at 1, folded weights under generated names)
const FILES = [
  'tiny_vit.onnx',
  'tiny_vit.opset14.onnx',
  'tiny_vit.folded.onnx',
  'tiny_vit.opset11.onnx',
  'tiny_vit.opset12.onnx',
  'tiny_vit.opset13.onnx',
  'tiny_vit.gelu.onnx',
];
const onnxOf = (file: string): OnnxModel => parseOnnxModel(new Uint8Array(readFileSync(join(GOLDEN, file))));
const golden = JSON.parse(readFileSync(join(GOLDEN, 'cases', 'attn_lrp__tiny_vit.json'), 'utf8')) as {
  input: { shape: number[]; data: number[] };
  logits: { data: number[] };
};

beforeAll(async () => {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
});

/** The error a call throws (fails the test when it returns). */
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

/** Max |logits - PyTorch's| / max |PyTorch's| of a model on the golden input. */
async function logitsError(model: tfl.LayersModel): Promise<number> {
  const x = tf.tensor(golden.input.data, golden.input.shape);
  const y = model.predict(x) as tf.Tensor;
  const got = await y.data();
  tf.dispose([x, y]);
  const scale = Math.max(...golden.logits.data.map(Math.abs));
  return Math.max(...Array.from(got, (v, i) => Math.abs(v - golden.logits.data[i]!))) / scale;
}

describe.each(FILES)('the small ViT from %s', (file) => {
  it('has the .pth model’s layers, names and weights (bit for bit) and PyTorch’s logits', async () => {
    const model = importOnnx(onnxOf(file));
    const pth = await importTorchVit(PthFile.parse(readFileSync(PTH), 'tiny-vit.pth'), { numHeads: 2 });
    try {
      expect(model.layers.map((l) => l.name)).toEqual(pth.layers.map((l) => l.name));
      expect(model.layers.map((l) => l.name)).toContain('encoder.layers.encoder_layer_1.mlp.0');
      for (const layer of pth.layers) {
        const ours = model.getLayer(layer.name).getWeights();
        const theirs = layer.getWeights();
        expect(
          ours.map((w) => w.shape),
          layer.name,
        ).toEqual(theirs.map((w) => w.shape));
        for (let k = 0; k < theirs.length; k++)
          expect(Array.from(ours[k]!.dataSync()), `${layer.name}[${k}]`).toEqual(
            Array.from(theirs[k]!.dataSync()),
          );
      }
      const x = tf.tensor(golden.input.data, golden.input.shape);
      const y = model.predict(x) as tf.Tensor;
      const got = await y.data();
      const scale = Math.max(...golden.logits.data.map(Math.abs));
      for (let i = 0; i < got.length; i++)
        expect(Math.abs(got[i]! - golden.logits.data[i]!)).toBeLessThan(1e-5 * scale);
      tf.dispose([x, y]);
    } finally {
      model.dispose();
      pth.dispose();
    }
  });
});

describe('a timm-style ViT (one qkv Linear on [batch, tokens, features], unbind, k.transpose(-2, -1))', () => {
  // scripts/golden/onnx/export_timm_style_vit.py: timm's VisionTransformer layout, seeded weights, PyTorch's logits
  const FIXTURE = join(import.meta.dirname, 'fixtures', 'onnx');
  const timm = JSON.parse(readFileSync(join(FIXTURE, 'timm_style_vit.json'), 'utf8')) as typeof golden;
  const timmOnnx = (file = 'timm_style_vit.onnx') =>
    parseOnnxModel(new Uint8Array(readFileSync(join(FIXTURE, file))));

  // opset 17: Split sizes and Squeeze axes as inputs; opset 11: as attributes, Softmax axis 3 of 4 coerced to 2-D
  it.each(['timm_style_vit.onnx', 'timm_style_vit.opset11.onnx'])(
    "%s is read into the same vit() layers (torchvision's names) with PyTorch's logits",
    async (file) => {
      const model = importOnnx(timmOnnx(file));
      try {
        expect(model.layers.map((l) => l.name)).toContain(
          'encoder.layers.encoder_layer_1.self_attention.v_proj',
        );
        const x = tf.tensor(timm.input.data, timm.input.shape);
        const y = model.predict(x) as tf.Tensor;
        const got = await y.data();
        tf.dispose([x, y]);
        const scale = Math.max(...timm.logits.data.map(Math.abs));
        expect(got).toHaveLength(timm.logits.data.length);
        for (let i = 0; i < got.length; i++)
          expect(Math.abs(got[i]! - timm.logits.data[i]!)).toBeLessThan(1e-5 * scale);
      } finally {
        model.dispose();
      }
    },
  );

  it('q, k, v taken by three Gathers (qkv[0], qkv[1], qkv[2]) instead of unbind: the same logits', async () => {
    const onnx = timmOnnx();
    for (const b of [0, 1]) {
      const a = `/blocks/blocks.${b}/attn/`;
      const split = onnx.graph.nodes.find((n) => n.name === `${a}Split`)!;
      onnx.graph.nodes.splice(onnx.graph.nodes.indexOf(split), 1);
      ['Squeeze', 'Squeeze_1', 'Squeeze_2'].forEach((name, i) => {
        const sq = onnx.graph.nodes.find((n) => n.name === `${a}${name}`)!;
        const index = `${a}index_${i}`;
        onnx.graph.initializers.push({
          name: index,
          dims: [],
          dataType: 7,
          floatData: [],
          int32Data: [],
          int64Data: [i],
          doubleData: [],
        });
        sq.opType = 'Gather';
        sq.inputs = [split.inputs[0]!, index];
        sq.attributes = new Map([['axis', { name: 'axis', type: 2, i: 0 } as never]]);
      });
    }
    const model = importOnnx(onnx);
    const x = tf.tensor(timm.input.data, timm.input.shape);
    const y = model.predict(x) as tf.Tensor;
    const got = await y.data();
    tf.dispose([x, y]);
    model.dispose();
    const scale = Math.max(...timm.logits.data.map(Math.abs));
    for (let i = 0; i < got.length; i++)
      expect(Math.abs(got[i]! - timm.logits.data[i]!)).toBeLessThan(1e-5 * scale);
  });

  it('the logits test can tell q from k: with their rows of qkv swapped the logits differ', async () => {
    const onnx = timmOnnx();
    // q k^T = (k q^T)^T: swapping q and k transposes every attention map of block 0, which changes the logits
    const w = onnx.graph.initializers.find((t) => t.name === 'blocks.0.attn.qkv.weight')!;
    expect(w.dims).toEqual([48, 16]);
    const raw = w.rawData!;
    const rows = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const swapped = new Float32Array(rows);
    swapped.set(rows.subarray(256, 512), 0);
    swapped.set(rows.subarray(0, 256), 256);
    w.rawData = new Uint8Array(swapped.buffer);
    const b = onnx.graph.initializers.find((t) => t.name === 'blocks.0.attn.qkv.bias')!;
    const bias = new Float32Array(b.rawData!.slice().buffer);
    b.rawData = new Uint8Array(
      Float32Array.from([...bias.subarray(16, 32), ...bias.subarray(0, 16), ...bias.subarray(32)]).buffer,
    );
    const model = importOnnx(onnx);
    const x = tf.tensor(timm.input.data, timm.input.shape);
    const y = model.predict(x) as tf.Tensor;
    const got = await y.data();
    tf.dispose([x, y]);
    model.dispose();
    const scale = Math.max(...timm.logits.data.map(Math.abs));
    const worst = Math.max(...Array.from(got, (v, i) => Math.abs(v - timm.logits.data[i]!)));
    expect(worst / scale).toBeGreaterThan(1e-3);
  });
});

/** Puts `node` before the node named `before` (graph order is topological). */
function insertBefore(onnx: OnnxModel, before: string, node: OnnxModel['graph']['nodes'][number]): void {
  const at = onnx.graph.nodes.findIndex((n) => n.name === before);
  expect(at).toBeGreaterThan(0);
  onnx.graph.nodes.splice(at, 0, node);
}

describe('bad input is refused by name', () => {
  it('an attention variant the engine does not know: a relative position bias added to the scores', () => {
    for (const file of FILES) {
      const onnx = onnxOf(file);
      const a = '/encoder/layers/encoder_layer_1/self_attention/';
      const softmax = onnx.graph.nodes.find((n) => n.name === `${a}Softmax`)!;
      const scores = softmax.inputs[0]!;
      onnx.graph.initializers.push({
        name: 'relative_position_bias',
        dims: [1, 17, 17],
        dataType: 1,
        floatData: new Array(17 * 17).fill(0.5),
        int32Data: [],
        int64Data: [],
        doubleData: [],
      } as unknown as OnnxModel['graph']['initializers'][number]);
      const name = `${a}relative_position_bias/Add`;
      insertBefore(onnx, softmax.name, {
        name,
        opType: 'Add',
        domain: '',
        inputs: [scores, 'relative_position_bias'],
        outputs: ['biased_scores'],
        attributes: new Map(),
      });
      softmax.inputs[0] = 'biased_scores';
      const e = thrown(() => importOnnx(onnx));
      expect(isCrpError(e, 'unsupported-layer'), e.message).toBe(true);
      expect(e.message).toContain(`'${name}' (Add)`);
      expect(e.message).toMatch(/expected Softmax \(softmax of the scores/);
      expect(e.message).toMatch(/Supported: torchvision's VisionTransformer/);
    }
  });

  it('an image size whose patches do not match the position embeddings (no interpolation)', () => {
    const onnx = onnxOf('tiny_vit.onnx');
    const input = onnx.graph.inputs[0]!;
    expect(input.shape).toEqual(['batch', 3, 16, 16]);
    input.shape = ['batch', 3, 'height', 'width'];
    // 20 / 4 = 5 x 5 patches, the position embeddings hold 4 x 4 and the class token
    const e = thrown(() => importOnnx(onnx, { inputSize: 20 }));
    expect(isCrpError(e, 'invalid-shape'), e.message).toBe(true);
    expect(e.message).toMatch(/position embedding .* holds 17 tokens: 16 patches of 4x4 pixels/);
    expect(e.message).toMatch(/gives 25 patches\. Position embeddings are not interpolated; .* e\.g\. 16/);
    const odd = thrown(() => importOnnx(onnx, { inputSize: 18 }));
    expect(isCrpError(odd, 'invalid-shape')).toBe(true);
    expect(odd.message).toMatch(/18x18 is not a multiple of the ONNX ViT's patch size 4/);
    const dynamic = thrown(() => importOnnx(onnx));
    expect(isCrpError(dynamic, 'invalid-shape')).toBe(true);
    expect(dynamic.message).toMatch(/give the input size: inputSize/);
    // the size it was trained for
    const ok = importOnnx(onnx, { inputSize: 16 });
    expect(ok.inputs[0]!.shape).toEqual([null, 16, 16, 3]);
    ok.dispose();
  });

  it('a tanh-approximated GELU (not the exact one the .pth has) and a node outside the pattern', () => {
    const onnx = onnxOf('tiny_vit.onnx');
    const m = '/encoder/layers/encoder_layer_0/mlp/mlp.1/';
    const erf = onnx.graph.nodes.find((n) => n.name === `${m}Erf`)!;
    erf.opType = 'Tanh';
    const e = thrown(() => importOnnx(onnx));
    expect(isCrpError(e, 'unsupported-layer')).toBe(true);
    expect(e.message).toContain(`'${m}Erf' (Tanh)`);
    expect(e.message).toMatch(/expected Erf/);

    // a dead branch: an activation read by a node that is no part of the ViT
    const extra = onnxOf('tiny_vit.onnx');
    const ln = extra.graph.nodes.find((n) => n.opType === 'LayerNormalization')!;
    extra.graph.nodes.push({
      name: '/probe/Relu',
      opType: 'Relu',
      domain: '',
      inputs: [ln.outputs[0]!],
      outputs: ['probe'],
      attributes: new Map(),
    });
    const e2 = thrown(() => importOnnx(extra));
    expect(isCrpError(e2, 'unsupported-layer')).toBe(true);
    expect(e2.message).toContain("'/probe/Relu'");
  });

  it('Softmax before opset 13 (input coerced to 2-D at axis): axis 2 is the keys; the default 1 is refused', async () => {
    const softmaxOf = (onnx: OnnxModel) => onnx.graph.nodes.find((n) => n.opType === 'Softmax')!;
    const ok = onnxOf('tiny_vit.opset11.onnx');
    expect(ok.opsets.get('')).toBe(11);
    expect(softmaxOf(ok).attributes.get('axis')?.i).toBe(2);
    // no axis at opset 11: the default 1 normalises each row's [queries, keys] block jointly, not per query
    const noAxis = onnxOf('tiny_vit.opset11.onnx');
    softmaxOf(noAxis).attributes.delete('axis');
    const e = thrown(() => importOnnx(noAxis));
    expect(isCrpError(e, 'unsupported-layer'), e.message).toBe(true);
    expect(e.message).toContain(
      "'/encoder/layers/encoder_layer_0/self_attention/Softmax' (Softmax): softmax with axis 1 (the default before opset 13) at opset 11 normalises over axes 1 to 2 of the scores jointly (its input coerced to 2-D); supported: the keys alone (axis 2 or -1)",
    );
    const negative = onnxOf('tiny_vit.opset12.onnx');
    softmaxOf(negative).attributes.get('axis')!.i = -1; // -1 at opset 12: coerced at the last axis, the keys
    const m12 = importOnnx(negative);
    expect(await logitsError(m12)).toBeLessThan(1e-5);
    m12.dispose();
    // from opset 13 the default is -1, the keys: the same model
    const opset13 = onnxOf('tiny_vit.opset13.onnx');
    expect(softmaxOf(opset13).attributes.get('axis')?.i).toBe(-1);
    softmaxOf(opset13).attributes.delete('axis');
    const m13 = importOnnx(opset13);
    expect(await logitsError(m13)).toBeLessThan(1e-5);
    m13.dispose();
    const axis1 = onnxOf('tiny_vit.opset13.onnx');
    softmaxOf(axis1).attributes.get('axis')!.i = 1;
    expect(thrown(() => importOnnx(axis1)).message).toContain(
      'softmax over axis 1 of the scores; supported: the keys (axis 2 or -1)',
    );
  });

  it("the Gelu operator (opset 20): approximate 'none' is read, 'tanh' is refused (the engine's GELU is exact)", () => {
    const onnx = onnxOf('tiny_vit.gelu.onnx');
    expect(onnx.opsets.get('')).toBe(20);
    const gelus = onnx.graph.nodes.filter((n) => n.opType === 'Gelu');
    expect(gelus.map((n) => n.name)).toEqual([
      '/encoder/layers/encoder_layer_0/mlp/mlp.1/Gelu',
      '/encoder/layers/encoder_layer_1/mlp/mlp.1/Gelu',
    ]);
    expect(onnx.graph.nodes.some((n) => n.opType === 'Erf')).toBe(false);
    gelus[1]!.attributes.set('approximate', { name: 'approximate', s: 'tanh' } as never);
    const e = thrown(() => importOnnx(onnx));
    expect(isCrpError(e, 'unsupported-layer'), e.message).toBe(true);
    expect(e.message).toContain(
      "ONNX node '/encoder/layers/encoder_layer_1/mlp/mlp.1/Gelu' (Gelu): encoder.layers.encoder_layer_1.mlp.1: Gelu with approximate 'tanh'",
    );
    expect(e.message).toMatch(/supported: the exact GELU, approximate 'none'/);
  });

  it('an operator outside the ViT patterns: refused naming the node, the operator and the supported list', () => {
    for (const file of ['tiny_vit.onnx', 'tiny_vit.opset11.onnx']) {
      const onnx = onnxOf(file);
      // an Abs reading the first block's output, as a probe an exporter might leave behind
      const ln = onnx.graph.nodes.find((n) => n.name.startsWith('/encoder/layers/encoder_layer_1/ln_1/'))!;
      onnx.graph.nodes.push({
        name: '/probe/Abs',
        opType: 'Abs',
        domain: '',
        inputs: [ln.inputs[0]!],
        outputs: ['probe'],
        attributes: new Map(),
      });
      const e = thrown(() => importOnnx(onnx)) as CrpError;
      expect(isCrpError(e, 'unsupported-layer'), e.message).toBe(true);
      expect(e.message).toContain(
        "ONNX node '/probe/Abs' (Abs): operator Abs is not supported in a Vision Transformer. Supported: torchvision's VisionTransformer",
      );
      expect(e.message).toContain(
        `Operators: ${ONNX_VIT_SUPPORTED_OPS.join(', ')}; folded shape computations:`,
      );
      expect(e.details).toMatchObject({
        opType: 'Abs',
        node: '/probe/Abs',
        supported: [...ONNX_VIT_SUPPORTED_OPS],
      });
    }
    // every operator of the fixtures is in the list (or folded), and the list has none the reader never meets
    const timm = parseOnnxModel(
      new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures', 'onnx', 'timm_style_vit.onnx'))),
    );
    const used = new Set([...FILES.map(onnxOf), timm].flatMap((m) => m.graph.nodes.map((n) => n.opType)));
    for (const op of ONNX_VIT_SUPPORTED_OPS) expect(used.has(op), op).toBe(true);
  });

  it('leaves no tensor behind, imported or refused', () => {
    const before = tf.memory().numTensors;
    const model: tfl.LayersModel = importOnnx(onnxOf('tiny_vit.onnx'));
    model.dispose();
    const onnx = onnxOf('tiny_vit.onnx');
    onnx.graph.inputs[0]!.shape = ['batch', 3, 'height', 'width'];
    expect(() => importOnnx(onnx, { inputSize: 20 })).toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });
});
