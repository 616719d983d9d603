/**
 * Dilated convolutions (ConvParams.dilations, PyTorch's and ONNX's dilation, TF's dilationRate). With stride 1 the
 * engine runs the forward map and its transpose on TF.js's own dilations (the kernel as it is); TF.js refuses
 * dilations with a stride > 1, so there it runs a plain conv on the kernel spread out by zeros. Checked, on wasm
 * and cpu: forward and transpose against float64 loops over the taps (reference.ts) for plain, depthwise and
 * grouped convs, both forms of the grouped conv, and the strided fallback; the dot-product test; Flat and ZPlus
 * against the reference formulas (Flat's ones sit on the taps only, as zennit); tensor accounting. (zennit's
 * relevances on a dilated model: vendor/reference/onnx `dilated_net`, in @crp/models' ONNX tests and
 * `pnpm conformance --kind onnx-lrp`, also in headless Chromium's WebGL.)
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import {
  type ConvParams,
  type GraphNode,
  GroupedConv2D,
  graphFromLayersModel,
  nameMapComposite,
  rules,
} from '../src/index.js';
import { groupedConv2d } from '../src/ops/grouped-conv.js';
import { dilateKernel, linearMapOf } from '../src/ops/linear.js';
import {
  expectClose,
  gridValues,
  lrpInput,
  mulberry32,
  setWeights,
  switchBackend,
  uniform,
  useBackend,
  values,
} from './helpers.js';
import { type ConvGeom, type ConvLin, convLin, flatRef, groupedConvLin, zPlusRef } from './reference.js';

useBackend('cpu');

const u = (seed: number, n: number) => Float32Array.from(uniform(mulberry32(seed), n));

function convNode(
  kernel: tf.Tensor4D,
  padding: ConvParams['padding'],
  {
    strides = [1, 1],
    dilations = [2, 3],
    groups = 1,
    depthwise = false,
  }: {
    strides?: [number, number];
    dilations?: [number, number];
    groups?: number;
    depthwise?: boolean;
  } = {},
): GraphNode {
  const kind = depthwise ? ('depthwiseConv2d' as const) : ('conv2d' as const);
  return {
    id: 'c',
    layerName: 'c',
    className: depthwise ? 'DepthwiseConv2D' : 'Conv2D',
    kind,
    inputs: ['x'],
    outputShape: [],
    activation: 'linear',
    index: 1,
    params: {
      kind,
      kernel,
      bias: null,
      strides,
      dilations,
      padding,
      ...(groups > 1 ? { groups } : {}),
    },
  };
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

describe('dilated convolution', () => {
  test('dilateKernel (the strided fallback) puts the taps d apart with zeros between them', () => {
    const w = tf.tensor4d([1, 2, 3, 4], [2, 2, 1, 1]);
    const d = dilateKernel(w, [2, 3]);
    expect(d.shape).toEqual([3, 4, 1, 1]);
    expect(Array.from(d.dataSync())).toEqual([1, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 4]);
    tf.dispose([w, d]);
  });

  test("dilateKernel runs on tensors of rank 4 at most (TF.js's WebGL pad does not compile above rank 4)", async () => {
    const before = tf.memory().numTensors;
    // [2, 3, 2, 3] taps, dilations [3, 2]: hand-spread, every tap at (3 i, 2 j)
    const w = tf.tensor4d(
      Array.from({ length: 36 }, (_, i) => i + 1),
      [2, 3, 2, 3],
    );
    const profile = await tf.profile(() => dilateKernel(w, [3, 2]));
    const d = profile.result as tf.Tensor4D;
    for (const k of profile.kernels)
      for (const shape of [...k.inputShapes, ...k.outputShapes])
        expect(shape.length, `${k.name} ${JSON.stringify(shape)}`).toBeLessThanOrEqual(4);
    expect(d.shape).toEqual([4, 5, 2, 3]);
    const got = d.arraySync();
    const taps = w.arraySync();
    const gap = [
      [0, 0, 0],
      [0, 0, 0],
    ];
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 5; j++)
        expect(got[i]![j], `(${i}, ${j})`).toEqual(i % 3 === 0 && j % 2 === 0 ? taps[i / 3]![j / 2] : gap);
    tf.dispose([w, d]);
    expect(tf.memory().numTensors).toBe(before);
  });

  for (const padding of [
    'same',
    'valid',
    [
      [2, 1],
      [3, 0],
    ],
  ] as const) {
    test(`padding ${JSON.stringify(padding)}: forward equals tf.conv2d with dilations, transpose passes the dot-product test`, () => {
      const before = tf.memory().numTensors;
      const kernel = tf.tensor4d(u(3, 3 * 2 * 2 * 4), [3, 2, 2, 4]);
      const x = tf.tensor4d(u(4, 9 * 8 * 2), [1, 9, 8, 2]);
      const map = linearMapOf(convNode(kernel, padding as never), x.shape)!;
      const y = map.forward(x, { weight: kernel, bias: null });
      const pads = Array.isArray(padding) ? [[0, 0], ...padding, [0, 0]] : padding;
      const native = tf.conv2d(x, kernel, 1, pads as never, 'NHWC', [2, 3]);
      expect(y.shape).toEqual(native.shape);
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(y, native))).dataSync()[0]!);
      expect(diff).toBeLessThan(1e-6);
      const g = tf.tensor4d(u(5, y.size), y.shape as [number, number, number, number]);
      const back = map.backWeight(kernel);
      // stride 1: the transpose's kernel is the flipped kernel itself, not the spread one
      expect(back!.shape).toEqual([3, 2, 4, 2]);
      const t = map.transpose(g, back);
      expect(t.shape).toEqual(x.shape);
      const lhs = dot(y.dataSync(), g.dataSync());
      const rhs = dot(x.dataSync(), t.dataSync());
      expect(Math.abs(lhs - rhs)).toBeLessThan(1e-4 * Math.max(1, Math.abs(lhs)));
      tf.dispose([kernel, x, y, native, g, back!, t]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

/** [label, geometry, groups (0: depthwise)] */
const GEOMS: [string, ConvGeom, number][] = [
  [
    'conv 9x8x2 -> 4, [3, 2] dilation [2, 3], same',
    { h: 9, w: 8, cin: 2, kh: 3, kw: 2, cout: 4, dh: 2, dw: 3, padding: 'same' },
    1,
  ],
  [
    'depthwise 8x8x3 x2, 3x3 dilation 2, same (group = channels)',
    { h: 8, w: 8, cin: 3, kh: 3, kw: 3, cout: 2, dh: 2, dw: 2, padding: 'same', depthwise: true },
    0,
  ],
  [
    'grouped 8x7x4 -> 6, 2 groups, 3x3 dilation [2, 1], valid',
    { h: 8, w: 7, cin: 4, kh: 3, kw: 3, cout: 6, dh: 2, dw: 1, padding: 'valid' },
    2,
  ],
  [
    'conv 11x10x3 -> 2, 3x3 stride 2 dilation 2, valid (spread-kernel fallback)',
    { h: 11, w: 10, cin: 3, kh: 3, kw: 3, cout: 2, sh: 2, sw: 2, dh: 2, dw: 2, padding: 'valid' },
    1,
  ],
  [
    'conv 9x9x2 -> 3, 3x3 stride [2, 1] dilation 2, same (spread-kernel fallback)',
    { h: 9, w: 9, cin: 2, kh: 3, kw: 3, cout: 3, sh: 2, sw: 1, dh: 2, dw: 2, padding: 'same' },
    1,
  ],
];

function linOf(g: ConvGeom, groups: number): ConvLin {
  return groups > 1 ? groupedConvLin(g, groups) : convLin(g);
}

function kernelShape(g: ConvGeom, groups: number): [number, number, number, number] {
  return [g.kh, g.kw, groups > 1 ? g.cin / groups : g.cin, g.cout];
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`the dilated linear map against float64 loops over the taps (${backend})`, () => {
    GEOMS.forEach(([label, g, groups], gi) => {
      test(`${label}: forward, transpose, <A x, g> = <x, A^T g>, no tensor left`, async () => {
        await switchBackend(backend);
        const L = linOf(g, groups);
        const shape = kernelShape(g, groups);
        const rng = mulberry32(600 + gi);
        const w = uniform(
          rng,
          shape.reduce((a, b) => a * b),
        );
        const x = uniform(rng, 2 * L.nIn);
        const gr = uniform(rng, 2 * L.nOut);
        const node = convNode(tf.tensor4d(Array.from(w), shape), g.padding, {
          strides: [g.sh ?? 1, g.sw ?? 1],
          dilations: [g.dh ?? 1, g.dw ?? 1],
          groups: Math.max(groups, 1),
          depthwise: groups === 0,
        });
        const kernel = (node.params as ConvParams).kernel as tf.Tensor4D;
        const before = tf.memory().numTensors;
        tf.tidy(() => {
          const map = linearMapOf(node, [2, g.h, g.w, g.cin])!;
          const xt = tf.tensor4d(Array.from(x), [2, g.h, g.w, g.cin]);
          const gt = tf.tensor4d(Array.from(gr), [2, L.ho, L.wo, L.co]);
          const y = values(map.forward(xt, { weight: kernel, bias: null }));
          const back = values(map.transpose(gt, map.backWeight(kernel)));
          for (let b = 0; b < 2; b++) {
            const xb = x.slice(b * L.nIn, (b + 1) * L.nIn);
            const gb = gr.slice(b * L.nOut, (b + 1) * L.nOut);
            expectClose(y.slice(b * L.nOut, (b + 1) * L.nOut), L.forward(xb, w, null), 1e-5);
            expectClose(back.slice(b * L.nIn, (b + 1) * L.nIn), L.back(w, gb), 1e-5);
          }
          const lhs = dot(y, gr);
          const rhs = dot(x, back);
          expect(Math.abs(lhs - rhs)).toBeLessThan(1e-5 * dot(y.map(Math.abs), gr.map(Math.abs)));
        });
        expect(tf.memory().numTensors).toBe(before);
        kernel.dispose();
      });
    });

    test('a grouped dilated conv per group (large kernels) equals the loops too', async () => {
      await switchBackend(backend);
      const [, g, groups] = GEOMS[2]!;
      const L = groupedConvLin(g, groups);
      const rng = mulberry32(650);
      const w = uniform(rng, g.kh * g.kw * (g.cin / groups) * g.cout);
      const x = uniform(rng, L.nIn);
      tf.tidy(() => {
        const kernel = tf.tensor4d(Array.from(w), kernelShape(g, groups));
        const xt = tf.tensor4d(Array.from(x), [1, g.h, g.w, g.cin]);
        const dil: [number, number] = [g.dh!, g.dw!];
        expectClose(groupedConv2d(xt, kernel, [1, 1], 'valid', groups, 0, dil), L.forward(x, w, null), 1e-5);
      });
    });
  });
}

describe('rules on a dilated Keras Conv2D (dilationRate 2, stride 1): the reference formulas on the taps', () => {
  const g: ConvGeom = { h: 7, w: 7, cin: 2, kh: 3, kw: 3, cout: 3, dh: 2, dw: 2, padding: 'same' };
  const L = convLin(g);
  const nW = g.kh * g.kw * g.cin * g.cout;
  const model = () => {
    const x = tfl.input({ shape: [g.h, g.w, g.cin], name: 'x' });
    const y = tfl.layers
      .conv2d({ name: 'c', filters: g.cout, kernelSize: 3, dilationRate: 2, padding: 'same', useBias: true })
      .apply(x) as tfl.SymbolicTensor;
    return tfl.model({ inputs: x, outputs: y });
  };
  const rng = mulberry32(700);
  const w = gridValues(rng, nW, 1.5);
  const b = gridValues(rng, g.cout, 1);
  const x = gridValues(rng, L.nIn, 2);
  const R = uniform(rng, L.nOut, -1, 2);

  test('ZPlus', async () => {
    await switchBackend('wasm');
    const m = model();
    setWeights(m, 'c', w, b);
    expectClose(lrpInput(m, x, nameMapComposite({ c: rules.zPlus() }), R), zPlusRef(L, x, w, b, R), 1e-5);
    m.dispose();
  });

  test('Flat: the ones sit on the taps only (a spread kernel of ones would reach the inputs between them)', async () => {
    await switchBackend('wasm');
    const m = model();
    setWeights(m, 'c', w, b);
    const r = lrpInput(m, x, nameMapComposite({ c: rules.flat() }), R);
    expectClose(r, flatRef(L, nW, R), 1e-5);
    // the same window filled (a 5x5 kernel of ones) gives other values
    const full = flatRef(convLin({ ...g, kh: 5, kw: 5, dh: 1, dw: 1 }), 25 * g.cin * g.cout, R);
    expect(Math.max(...full.map((v, i) => Math.abs(v - r[i]!)))).toBeGreaterThan(1e-3);
    m.dispose();
  });
});

describe('GroupedConv2D with dilationRate (a dilated depthwise conv from ONNX: group = channels)', () => {
  for (const [label, strides] of [
    ['stride 1 (TF.js dilations)', [1, 1]],
    ['stride 2 (spread kernel)', [2, 2]],
  ] as const) {
    test(`${label}: predict equals the loops, the engine reads the dilations, the config round-trips`, async () => {
      await switchBackend('wasm');
      const g: ConvGeom = {
        h: 9,
        w: 9,
        cin: 4,
        kh: 3,
        kw: 3,
        cout: 8,
        sh: strides[0],
        sw: strides[1],
        dh: 2,
        dw: 2,
        padding: 'same',
      };
      const L = groupedConvLin(g, 4);
      const rng = mulberry32(800 + strides[0]);
      const w = uniform(rng, 3 * 3 * 1 * 8);
      const x = uniform(rng, L.nIn);
      const input = tfl.input({ shape: [9, 9, 4] });
      const layer = new GroupedConv2D({
        name: 'c',
        filters: 8,
        kernelSize: 3,
        groups: 4,
        strides: [...strides],
        dilationRate: 2,
        padding: 'same',
        useBias: false,
      });
      const model = tfl.model({ inputs: input, outputs: layer.apply(input) as tfl.SymbolicTensor });
      setWeights(model, 'c', w);
      expect(model.outputs[0]!.shape).toEqual([null, L.ho, L.wo, 8]);
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const y = model.predict(tf.tensor4d(Array.from(x), [1, 9, 9, 4])) as tf.Tensor;
        expectClose(y, L.forward(x, w, null), 1e-5);
      });
      expect(tf.memory().numTensors).toBe(before);
      expect(layer.getConfig().dilationRate).toEqual([2, 2]);
      const graph = graphFromLayersModel(model);
      const node = graph.nodes.find((n) => n.layerName === 'c')!;
      expect((node.params as ConvParams).dilations).toEqual([2, 2]);
      expect((node.params as ConvParams).groups).toBe(4);
      model.dispose();
    });
  }
});
