import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CrpError } from '@crp/common';
import { graphFromLayersModel } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { referencePath } from '@crp/testing/reference';
import { beforeAll, describe, expect, it } from 'vitest';
import { HardSigmoid, HardSwish, importOnnx, type OnnxModel, parseOnnxModel } from '../src/index.js';

/**
 * The operators of scripts/golden/onnx/make_onnx_ops.py (vendor/reference/onnx): HardSwish, HardSigmoid, constant
 * Sub/Div/Mul/Add (mobile_like, exported by torch.onnx at opsets 14 and 13) and tf2onnx's channels-last graphs
 * (tf2onnx_gap, tf2onnx_flatten; tf2onnx_se: a channels-last squeeze-excitation and a standalone batch norm;
 * tf2onnx_dw: a dilated depthwise conv). Their logits and zennit relevances are checked for every case by
 * onnx-import.test.ts and `pnpm conformance --kind onnx-lrp`; here: what the importer builds from them, the opset-13
 * form of Hardswish, hand-computed values of the new layers, and bad input.
 */
const REF = referencePath('onnx');
const bytes = (name: string) => new Uint8Array(readFileSync(join(REF, 'models', name)));
interface Case {
  input: { shape: number[]; data: number[] };
  logits: { data: number[] };
}
const caseOf = (id: string) => JSON.parse(readFileSync(join(REF, 'cases', `${id}.json`), 'utf8')) as Case;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function thrown(f: () => unknown): CrpError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(CrpError);
    return err as CrpError;
  }
  throw new Error('no error thrown');
}

/** max |ours - torch| / max |torch| of the logits of a case */
function logitsDeviation(model: { predict(x: tf.Tensor): unknown }, c: Case): number {
  const y = tf.tidy(() => model.predict(tf.tensor(c.input.data, c.input.shape)) as tf.Tensor);
  const got = y.dataSync();
  y.dispose();
  const scale = Math.max(...c.logits.data.map(Math.abs));
  return Math.max(...c.logits.data.map((v, i) => Math.abs(got[i]! - v))) / scale;
}

const layersOf = (model: { layers: { name: string; getClassName(): string }[] }) =>
  model.layers.map((l) => `${l.name}:${l.getClassName()}`);

describe('HardSigmoid and HardSwish layers', () => {
  it('compute max(0, min(1, alpha x + beta)) and x * max(0, min(1, x / 6 + 1/2)), by hand', () => {
    const x = tf.tensor1d([-4, -3, -1.5, 0, 1.5, 3, 4]);
    const swish = new HardSwish({}).apply(x) as tf.Tensor;
    // -1.5: -1.5 * 0.25; 1.5: 1.5 * 0.75
    expect(Array.from(swish.dataSync())).toEqual([-0, -0, -0.375, 0, 1.125, 3, 4]);
    const torch = new HardSigmoid({}).apply(x) as tf.Tensor;
    expect(Array.from(torch.dataSync()).map((v) => Math.round(v * 1e6) / 1e6)).toEqual([
      0, 0, 0.25, 0.5, 0.75, 1, 1,
    ]);
    const onnxDefault = new HardSigmoid({ alpha: 0.2, beta: 0.5 }).apply(x) as tf.Tensor;
    expect(Array.from(onnxDefault.dataSync()).map((v) => Math.round(v * 1e6) / 1e6)).toEqual([
      0, 0, 0.2, 0.5, 0.8, 1, 1,
    ]);
    tf.dispose([x, swish, torch, onnxDefault]);
  });
});

describe('importOnnx: HardSwish, HardSigmoid and constant operands (mobile_like)', () => {
  const c = caseOf('onnx_lrp_EpsilonPlusFlat__mobile_like');

  it('opset 14: HardSwish layers; (x - mean) / std and x * 0.5 + 0.25 each one per-channel affine layer', () => {
    const model = importOnnx(bytes('mobile_like.onnx'));
    const layers = layersOf(model);
    expect(layers).toContain('normalize.sub:BatchNormalization');
    expect(layers).toContain('features.8.mul:BatchNormalization');
    expect(layers.filter((l) => l.endsWith(':BatchNormalization'))).toHaveLength(2);
    expect(layers.filter((l) => l.endsWith(':HardSwish'))).toEqual([
      'features.2:HardSwish',
      'features.5:HardSwish',
      'features.9:HardSwish',
    ]);
    expect(layers).toContain('features.6.hardsigmoid:HardSigmoid');
    // (x - mean) / std: scale 1 / std, offset -mean / std
    const norm = model.getLayer('normalize.sub').getWeights();
    const [gamma, beta] = [norm[0]!.dataSync(), norm[1]!.dataSync()];
    expect(gamma[0]).toBeCloseTo(1 / 0.229, 5);
    expect(beta[2]).toBeCloseTo(-0.406 / 0.225, 5);
    expect(logitsDeviation(model, c)).toBeLessThan(1e-5);
    model.dispose();
  });

  it("opset 13: x * HardSigmoid(x), torch's export of Hardswish, becomes the same HardSwish layer", () => {
    const model = importOnnx(bytes('mobile_like_opset13.onnx'));
    const layers = layersOf(model);
    expect(layers.filter((l) => l.endsWith(':HardSwish'))).toHaveLength(3);
    expect(layers.filter((l) => l.endsWith(':Multiply'))).toHaveLength(1); // the squeeze-excitation only
    expect(logitsDeviation(model, c)).toBeLessThan(1e-5);
    model.dispose();
  });
});

describe('importOnnx: dilated convolutions (dilated_net)', () => {
  it('a Conv2D with the dilation rate, its pads from the dilated span; logits as torch', () => {
    const model = importOnnx(bytes('dilated_net.onnx'));
    const config = model.getLayer('features.3').getConfig();
    expect([config.dilationRate, config.padding]).toEqual([[2, 1], 'same']);
    expect(logitsDeviation(model, caseOf('onnx_lrp_EpsilonPlusFlat__dilated_net'))).toBeLessThan(1e-5);
    model.dispose();
  });
});

describe('importOnnx: tf2onnx graphs (channels-last input)', () => {
  it('takes the NHWC input as it is: no layer for the Transposes, Keras layer names, logits as computed', () => {
    for (const name of ['tf2onnx_gap', 'tf2onnx_flatten']) {
      const model = importOnnx(bytes(`${name}.onnx`));
      expect(model.inputs[0]!.shape).toEqual([null, 16, 16, 3]);
      const layers = layersOf(model);
      expect(layers).toEqual(
        expect.arrayContaining([
          'rescaling:BatchNormalization',
          'conv2d:Conv2D',
          'conv2d_1:Conv2D',
          'dense:Dense',
        ]),
      );
      expect(layers.some((l) => /Permute|Reshape/.test(l))).toBe(false);
      expect(logitsDeviation(model, caseOf(`onnx_lrp_EpsilonPlusFlat__${name}`)), name).toBeLessThan(1e-5);
      model.dispose();
    }
  });

  it('a channels-last squeeze-excitation (Reshape((1, 1, C)) gate times the NHWC map) and a standalone batch norm after it', () => {
    const model = importOnnx(bytes('tf2onnx_se.onnx'));
    const layers = layersOf(model);
    expect(layers).toEqual(
      expect.arrayContaining([
        'reshape:Reshape',
        'multiply:Multiply',
        'batch_normalization:BatchNormalization',
      ]),
    );
    // the Multiply's first input is the feature map (relevance goes to it), the second the [N, 1, 1, C] gate
    const mul = model.getLayer('multiply');
    const inputs = mul.inboundNodes[0]!.inputTensors.map((t) => t.shape);
    expect(inputs).toEqual([
      [null, 16, 16, 8],
      [null, 1, 1, 8],
    ]);
    expect(layers.some((l) => /Permute/.test(l))).toBe(false);
    expect(logitsDeviation(model, caseOf('onnx_lrp_EpsilonPlusFlat__tf2onnx_se'))).toBeLessThan(1e-5);
    model.dispose();
  });

  it('a dilated depthwise conv (group = channels, dilations 2) becomes a GroupedConv2D with the dilation rate', () => {
    const model = importOnnx(bytes('tf2onnx_dw.onnx'));
    const config = model.getLayer('depthwise_conv2d').getConfig();
    expect(model.getLayer('depthwise_conv2d').getClassName()).toBe('GroupedConv2D');
    expect([config.groups, config.dilationRate, config.padding]).toEqual([8, [2, 2], 'same']);
    expect(logitsDeviation(model, caseOf('onnx_lrp_EpsilonPlusFlat__tf2onnx_dw'))).toBeLessThan(1e-5);
    model.dispose();
  });

  it('importing and disposing the new models leaves no tensors behind', () => {
    importOnnx(bytes('mobile_like.onnx')).dispose();
    const before = tf.memory().numTensors;
    for (const name of [
      'mobile_like',
      'mobile_like_opset13',
      'tf2onnx_gap',
      'tf2onnx_flatten',
      'tf2onnx_se',
      'tf2onnx_dw',
    ])
      importOnnx(bytes(`${name}.onnx`)).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('bad input for the new operators', () => {
  const mobile = () => parseOnnxModel(bytes('mobile_like.onnx'));
  const node = (m: OnnxModel, name: string) => m.graph.nodes.find((n) => n.name === name)!;
  const initializer = (m: OnnxModel, name: string) => m.graph.initializers.find((t) => t.name === name)!;

  it('a constant of a shape that does not broadcast per channel: the node, the shapes and what is valid', () => {
    const m = mobile();
    const sub = node(m, '/normalize/Sub');
    const mean = initializer(m, sub.inputs[1]!);
    mean.dims = [1, 1, 16, 16]; // one value per pixel: not a per-channel affine map
    mean.rawData = new Uint8Array(new Float32Array(256).fill(0.5).buffer);
    mean.floatData = [];
    const e = thrown(() => importOnnx(m));
    expect([e.code, e.message]).toEqual([
      'unsupported-layer',
      "ONNX node '/normalize/Sub' (Sub): Sub of a tensor [-1, 3, 16, 16] and a constant of shape [1, 1, 16, 16] is not supported; supported: a scalar or one value per channel ([C, 1, 1] or [1, C, 1, 1])",
    ]);
    expect(e.details).toMatchObject({ opType: 'Sub', node: '/normalize/Sub' });
  });

  it('a constant divided by a tensor is not affine: refused', () => {
    const m = mobile();
    const div = node(m, '/normalize/Div');
    div.inputs.reverse();
    expect(thrown(() => importOnnx(m)).message).toBe(
      "ONNX node '/normalize/Div' (Div): Div of a constant by a tensor (c / x) is not supported; supported: x / c, x * c, x + c, x - c, c - x",
    );
  });

  it('a Transpose that is not a layout change between NCHW and NHWC is refused with the valid ones', () => {
    const m = parseOnnxModel(bytes('tf2onnx_gap.onnx'));
    node(m, 'model/conv2d/BiasAdd__6').attributes.get('perm')!.ints = [0, 3, 2, 1];
    const e = thrown(() => importOnnx(m));
    expect(e.code).toBe('unsupported-layer');
    expect(e.message).toContain(
      'supported: [0, 3, 1, 2] of a channels-last and [0, 2, 3, 1] of a channels-first',
    );
  });

  it('a channels-last tensor given to an NCHW operator (no Transpose before the Conv) is refused', () => {
    const m = parseOnnxModel(bytes('tf2onnx_gap.onnx'));
    const transpose = node(m, 'model/conv2d/BiasAdd__6');
    const conv = node(m, 'model/conv2d/BiasAdd');
    conv.inputs[0] = transpose.inputs[0]!;
    m.graph.nodes = m.graph.nodes.filter((n) => n !== transpose);
    // without the Transpose the input reads as NCHW [N, 16, 16, 3]: 16 channels for a conv of 3
    expect(thrown(() => importOnnx(m)).message).toMatch(
      /^ONNX node 'model\/conv2d\/BiasAdd' \(Conv\): weight \[8, 3, 3, 3\] does not fit an input of 16 channels/,
    );
  });

  const ints = (name: string, values: number[]) => ({ name, type: 7, floats: [], ints: values });

  it('a conv with dilations and strides (group 1) is a one-group GroupedConv2D with ONNX’s semantics', () => {
    const strided = parseOnnxModel(bytes('dilated_net.onnx'));
    const conv = strided.graph.nodes.filter((n) => n.opType === 'Conv')[2]!;
    // features.6: 3x3, stride 2, pads 1; with dilations 2 its span is 5, so the 16-pixel map gives 7 (not 8)
    conv.attributes.set('dilations', ints('dilations', [2, 2]));
    const before = tf.memory().numTensors;
    const model = importOnnx(strided);
    const layer = model.getLayer('features.6');
    expect([layer.getClassName(), layer.getConfig().groups, layer.getConfig().dilationRate]).toEqual([
      'GroupedConv2D',
      1,
      [2, 2],
    ]);
    expect(layer.outputShape).toEqual([null, 7, 7, 12]);
    // the layer against the definition, from its (padded) input: y[i, j] = sum over taps (p, q) of
    // x[2i + 2p, 2j + 2q] . W[p, q], written out in loops
    const probe = tfl.model({
      inputs: model.inputs,
      outputs: [layer.input as tfl.SymbolicTensor, layer.output as tfl.SymbolicTensor],
    });
    const c = caseOf('onnx_lrp_EpsilonPlusFlat__dilated_net');
    const [xin, yout] = tf.tidy(() => probe.predict(tf.tensor(c.input.data, c.input.shape)) as tf.Tensor[]);
    const [, H, W, C] = xin!.shape as number[];
    const x = xin!.dataSync();
    const y = yout!.dataSync();
    const weights = layer.getWeights();
    const k = weights[0]!.dataSync(); // [3, 3, C, 12]
    const bias = weights[1]?.dataSync();
    let worst = 0;
    for (let i = 0; i < 7; i++)
      for (let j = 0; j < 7; j++)
        for (let o = 0; o < 12; o++) {
          let sum = bias?.[o] ?? 0;
          for (let p = 0; p < 3; p++)
            for (let q = 0; q < 3; q++)
              for (let ci = 0; ci < C!; ci++)
                sum +=
                  x[((2 * i + 2 * p) * W! + 2 * j + 2 * q) * C! + ci]! * k[((p * 3 + q) * C! + ci) * 12 + o]!;
          worst = Math.max(worst, Math.abs(sum - y[(i * 7 + j) * 12 + o]!));
        }
    expect([H, W]).toEqual([18, 18]); // the 16-pixel map padded by 1 on each side
    expect(worst).toBeLessThan(1e-4);
    tf.dispose([xin!, yout!]);
    // the LRP engine reads it as one conv with both (its transposes: lrp's transpose tests)
    const graph = graphFromLayersModel(model);
    expect(graph.node('features.6').params).toMatchObject({ strides: [2, 2], dilations: [2, 2], groups: 1 });
    graph.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('dilations: refused on pooling, saying what is valid; a dilated depthwise conv imports', () => {
    const depthwise = mobile();
    node(depthwise, '/features/features.3/Conv').attributes.set('dilations', ints('dilations', [2, 2]));
    // torch's padding 1 with dilation 2 shrinks the map to 14 x 14 (the SE product after it broadcasts as before)
    const dilated = importOnnx(depthwise);
    const layer = dilated.getLayer('features.3');
    expect([layer.getClassName(), layer.getConfig().dilationRate]).toEqual(['GroupedConv2D', [2, 2]]);
    expect(layer.outputShape).toEqual([null, 14, 14, 8]);
    dilated.dispose();
    const pool = parseOnnxModel(bytes('densenet_like.onnx'));
    const maxPool = pool.graph.nodes.find((n) => n.opType === 'MaxPool')!;
    maxPool.attributes.set('dilations', ints('dilations', [2, 2]));
    expect(thrown(() => importOnnx(pool)).message).toBe(
      `ONNX node '${maxPool.name}' (MaxPool): dilations [2, 2] of MaxPool are not supported (the LRP engine has no dilated pooling); supported: [1, 1]`,
    );
  });

  it('ceil_mode that changes the output size and an unknown auto_pad are refused', () => {
    const m = parseOnnxModel(bytes('densenet_like.onnx'));
    const maxPool = m.graph.nodes.find((n) => n.opType === 'MaxPool')!; // 3/2 pad 1 on 16 px: 8, ceil 9
    maxPool.attributes.set('ceil_mode', { name: 'ceil_mode', type: 2, i: 1, floats: [], ints: [] });
    expect(thrown(() => importOnnx(m)).message).toBe(
      `ONNX node '${maxPool.name}' (MaxPool): ceil_mode = 1 changes the output size here; supported: ceil_mode = 0 (or sizes where it makes no difference)`,
    );
    const d = parseOnnxModel(bytes('dilated_net.onnx'));
    const conv = d.graph.nodes.find((n) => n.opType === 'Conv')!;
    conv.attributes.set('auto_pad', { name: 'auto_pad', type: 3, s: 'SAME_LEFT', floats: [], ints: [] });
    expect(thrown(() => importOnnx(d)).message).toBe(
      `ONNX node '${conv.name}' (Conv): auto_pad 'SAME_LEFT' is unknown`,
    );
  });

  it("x * HardSigmoid(x) with other constants than PyTorch's is no HardSwish: the product of two maps is refused", () => {
    const m = parseOnnxModel(bytes('mobile_like_opset13.onnx'));
    const first = m.graph.nodes.find((n) => n.opType === 'HardSigmoid')!;
    first.attributes.get('alpha')!.f = 0.2;
    const e = thrown(() => importOnnx(m));
    expect(e.message).toMatch(
      /^ONNX node '.+' \(Mul\): Mul of two tensors of shapes \[-1, 8, 16, 16\] and \[-1, 8, 16, 16\] is not supported; supported: a feature map times a gate .* A product of two full-size maps has no LRP convention in zennit for splitting its relevance between the factors, so it is not guessed$/,
    );
    expect(e.details).toEqual({ opType: 'Mul', node: expect.stringMatching(/Mul/) });
  });
});
