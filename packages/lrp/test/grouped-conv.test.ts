/**
 * Grouped convolutions (PyTorch's `Conv2d(groups=g)`, the `GroupedConv2D` layer): forward and transpose against
 * the per-group loops of reference.ts, the dot-product test <A x, g> = <x, A^T g>, every rule zennit applies to a
 * conv against the reference formulas on the grouped map (zennit's rules re-run the same grouped conv with the
 * modified weight: Flat's ones stay inside the groups), the layer's gradients, conservation through a small
 * grouped network, model.json round trip, batch-norm merging and tensor accounting.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import {
  Attributor,
  type ConvParams,
  disposeResult,
  type GraphNode,
  GroupedConv2D,
  graphFromLayersModel,
  mergeBatchNorm,
  nameMapComposite,
  type Rule,
  rules,
} from '../src/index.js';
import { linearMapOf } from '../src/internal.js';
import { blockDiagonalKernel, groupedBackKernel, groupedConv2d } from '../src/ops/grouped-conv.js';
import {
  expectClose,
  gridValues,
  lrpInput,
  mulberry32,
  randomizeWeights,
  setWeights,
  sum,
  switchBackend,
  uniform,
  useBackend,
  values,
} from './helpers.js';
import {
  alphaBetaRef,
  type ConvGeom,
  convLin,
  epsilonRef,
  type F,
  filled,
  flatRef,
  gammaRef,
  groupedConvLin,
  type Lin,
  wSquareRef,
  zBoxRef,
  zPlusRef,
} from './reference.js';

useBackend('wasm');

const GEOMS: [string, ConvGeom, number][] = [
  ['5x5x4 -> 6, 3x3 same, 2 groups', { h: 5, w: 5, cin: 4, kh: 3, kw: 3, cout: 6, padding: 'same' }, 2],
  [
    '6x5x6 -> 6, [3,2] stride 2 valid, 3 groups',
    { h: 6, w: 5, cin: 6, kh: 3, kw: 2, cout: 6, sh: 2, sw: 2, padding: 'valid' },
    3,
  ],
  [
    '7x7x8 -> 4, 3x3 stride 2 same, 4 groups (one output per group)',
    { h: 7, w: 7, cin: 8, kh: 3, kw: 3, cout: 4, sh: 2, sw: 2, padding: 'same' },
    4,
  ],
];

function groupedModel(g: ConvGeom, groups: number, bias: boolean): tfl.LayersModel {
  const x = tfl.input({ shape: [g.h, g.w, g.cin], name: 'x' });
  const y = new GroupedConv2D({
    name: 'c',
    filters: g.cout,
    kernelSize: [g.kh, g.kw],
    strides: [g.sh ?? 1, g.sw ?? 1],
    padding: g.padding,
    groups,
    useBias: bias,
  }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: x, outputs: y });
}

function convNode(
  g: ConvGeom,
  groups: number,
  kernel: tf.Tensor,
  padding: ConvParams['padding'] = g.padding,
): GraphNode {
  return {
    id: 'c',
    layerName: 'c',
    className: 'GroupedConv2D',
    kind: 'conv2d',
    inputs: [],
    outputShape: [],
    activation: 'linear',
    params: {
      kind: 'conv2d',
      kernel,
      bias: null,
      groups,
      strides: [g.sh ?? 1, g.sw ?? 1],
      padding,
    },
    index: 0,
  };
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

describe('the grouped linear map', () => {
  GEOMS.forEach(([label, g, groups], gi) => {
    test(`${label}: forward and transpose equal the per-group loops; <A x, g> = <x, A^T g>`, () => {
      const L = groupedConvLin(g, groups);
      const rng = mulberry32(300 + gi);
      const w = uniform(rng, g.kh * g.kw * (g.cin / groups) * g.cout);
      const x = uniform(rng, 2 * L.nIn);
      const gr = uniform(rng, 2 * L.nOut);
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const kernel = tf.tensor4d(Array.from(w), [g.kh, g.kw, g.cin / groups, g.cout]);
        const map = linearMapOf(convNode(g, groups, kernel), [2, g.h, g.w, g.cin])!;
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
        // the adjoint identity on the engine's own maps (float32: relative to the terms' size)
        const lhs = dot(y, gr);
        const rhs = dot(x, back);
        expect(Math.abs(lhs - rhs)).toBeLessThan(1e-5 * dot(y.map(Math.abs), gr.map(Math.abs)));
      });
      expect(tf.memory().numTensors).toBe(before);
    });
  });

  test('explicit (PyTorch) padding, as after mergeZeroPadding: equals the loops on the zero-padded input', () => {
    const g: ConvGeom = { h: 6, w: 6, cin: 4, kh: 3, kw: 3, cout: 4, sh: 2, sw: 2, padding: 'valid' };
    const padded: ConvGeom = { ...g, h: 8, w: 8 };
    const L = groupedConvLin(padded, 2);
    const rng = mulberry32(320);
    const w = uniform(rng, 3 * 3 * 2 * 4);
    const x = uniform(rng, 6 * 6 * 4);
    const gr = uniform(rng, L.nOut);
    tf.tidy(() => {
      const kernel = tf.tensor4d(Array.from(w), [3, 3, 2, 4]);
      const explicit = convNode(g, 2, kernel, [
        [1, 1],
        [1, 1],
      ]);
      const map = linearMapOf(explicit, [1, 6, 6, 4])!;
      const xt = tf.tensor4d(Array.from(x), [1, 6, 6, 4]);
      const xp = values(
        tf.pad(xt, [
          [0, 0],
          [1, 1],
          [1, 1],
          [0, 0],
        ]),
      );
      expectClose(map.forward(xt, { weight: kernel, bias: null }), L.forward(xp, w, null), 1e-5);
      const back = map.transpose(tf.tensor4d(Array.from(gr), [1, L.ho, L.wo, 4]), map.backWeight(kernel));
      const full = values(
        tf.slice(tf.tensor4d(Array.from(L.back(w, gr)), [1, 8, 8, 4]), [0, 1, 1, 0], [1, 6, 6, 4]),
      );
      expectClose(back, full, 1e-5);
    });
  });
});

describe('the two forms of the grouped transpose', () => {
  test('per group (large kernels) and block-diagonal (the default) both equal the loops, forward and back', () => {
    const g: ConvGeom = { h: 5, w: 5, cin: 6, kh: 3, kw: 3, cout: 9, padding: 'same' };
    const L = groupedConvLin(g, 3);
    const rng = mulberry32(330);
    const w = uniform(rng, 3 * 3 * 2 * 9);
    const x = uniform(rng, L.nIn);
    const gr = uniform(rng, L.nOut);
    tf.tidy(() => {
      const kernel = tf.tensor4d(Array.from(w), [3, 3, 2, 9]);
      const back = groupedBackKernel(tf.reverse(kernel, [0, 1]) as tf.Tensor4D, 3);
      expect(back.shape).toEqual([3, 3, 3, 6]);
      const gt = tf.tensor4d(Array.from(gr), [1, 5, 5, 9]);
      expectClose(groupedConv2d(gt, back, [1, 1], 'same', 3, 0), L.back(w, gr), 1e-5);
      expectClose(tf.conv2d(gt, blockDiagonalKernel(back, 3), 1, 'same'), L.back(w, gr), 1e-5);
      const xt = tf.tensor4d(Array.from(x), [1, 5, 5, 6]);
      expectClose(tf.conv2d(xt, blockDiagonalKernel(kernel, 3), 1, 'same'), L.forward(x, w, null), 1e-5);
      expectClose(groupedConv2d(xt, kernel, [1, 1], 'same', 3, 0), L.forward(x, w, null), 1e-5);
    });
  });
});

type RuleCase = { name: string; rule: () => Rule; ref: (L: Lin, x: F, w: F, b: F, r: F) => F };
const RULE_CASES: RuleCase[] = [
  {
    name: 'Epsilon(0.25)',
    rule: () => rules.epsilon(0.25),
    ref: (L, x, w, b, r) => epsilonRef(L, x, w, b, r, 0.25),
  },
  { name: 'ZPlus', rule: () => rules.zPlus(), ref: (L, x, w, b, r) => zPlusRef(L, x, w, b, r) },
  {
    name: 'AlphaBeta(2,1)',
    rule: () => rules.alphaBeta(2, 1),
    ref: (L, x, w, b, r) => alphaBetaRef(L, x, w, b, r, 2, 1),
  },
  {
    name: 'Gamma(0.25)',
    rule: () => rules.gamma(0.25),
    ref: (L, x, w, b, r) => gammaRef(L, x, w, b, r, 0.25),
  },
  { name: 'Flat', rule: () => rules.flat(), ref: (L, _x, w, _b, r) => flatRef(L, w.length, r) },
  { name: 'WSquare', rule: () => rules.wSquare(), ref: (L, _x, w, b, r) => wSquareRef(L, w, b, r) },
  {
    name: 'ZBox(-2, 3)',
    rule: () => rules.zBox(-2, 3),
    ref: (L, x, w, b, r) => zBoxRef(L, x, w, b, r, filled(L.nIn, -2), filled(L.nIn, 3)),
  },
];

describe('rules on grouped convolutions (reference loops on the grouped map)', () => {
  GEOMS.forEach(([label, g, groups], gi) => {
    describe(label, () => {
      const L = groupedConvLin(g, groups);
      const rng = mulberry32(400 + gi);
      const w = gridValues(rng, g.kh * g.kw * (g.cin / groups) * g.cout, 1.5);
      const b = gridValues(rng, g.cout, 1);
      const x = gridValues(rng, L.nIn, 2);
      const R = uniform(rng, L.nOut, -1, 2);
      for (const c of RULE_CASES) {
        test(c.name, () => {
          const model = groupedModel(g, groups, true);
          setWeights(model, 'c', w, b);
          const at = nameMapComposite({ c: c.rule() });
          expectClose(lrpInput(model, x, at, R), c.ref(L, x, w, b, R), 1e-5);
          model.dispose();
        });
      }
    });
  });

  test('Flat spreads relevance inside its group only (not over all input channels as a dense conv would)', () => {
    const [, g, groups] = GEOMS[0]!;
    const L = groupedConvLin(g, groups);
    const nW = g.kh * g.kw * (g.cin / groups) * g.cout;
    const model = groupedModel(g, groups, false);
    setWeights(model, 'c', gridValues(mulberry32(9), nW));
    // relevance on output channel 0 (group 0) only
    const R = new Float64Array(L.nOut).map((_, i) => (i % g.cout === 0 ? 1 : 0));
    const r = lrpInput(model, filled(L.nIn, 1), nameMapComposite({ c: rules.flat() }), R);
    expectClose(r, flatRef(L, nW, R), 1e-6);
    // input channels 2, 3 belong to group 1
    expect(r.filter((_, i) => i % g.cin >= 2).every((v) => v === 0)).toBe(true);
    expect(sum(r)).toBeCloseTo(sum(R), 5);
    const dense = flatRef(convLin(g), g.kh * g.kw * g.cin * g.cout, R);
    expect(Math.max(...dense.map((v, i) => Math.abs(v - r[i]!)))).toBeGreaterThan(1e-3);
    model.dispose();
  });
});

describe('the GroupedConv2D layer', () => {
  // on cpu: wasm has no Conv2DBackpropFilter kernel (training registers its own, @crp/models)
  test('its gradients are those of the grouped map (input: A^T g; kernel: <dW, V> = <A(x; V), g>)', async () => {
    await switchBackend('cpu');
    const [, g, groups] = GEOMS[1]!;
    const L = groupedConvLin(g, groups);
    const rng = mulberry32(500);
    const nW = g.kh * g.kw * (g.cin / groups) * g.cout;
    const w = uniform(rng, nW);
    const x = uniform(rng, L.nIn);
    const gr = uniform(rng, L.nOut);
    const v = uniform(rng, nW);
    const model = groupedModel(g, groups, false);
    setWeights(model, 'c', w);
    const layer = model.getLayer('c');
    tf.tidy(() => {
      const xt = tf.tensor4d(Array.from(x), [1, g.h, g.w, g.cin]);
      const gt = tf.tensor4d(Array.from(gr), [1, L.ho, L.wo, L.co]);
      const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(layer.apply(a) as tf.Tensor, gt)))(xt);
      expectClose(dx, L.back(w, gr), 1e-5);
      const kernel = layer.getWeights()[0]!;
      const { grads } = tf.variableGrads(
        () => tf.sum(tf.mul(layer.apply(xt) as tf.Tensor, gt)) as tf.Scalar,
        [layer.trainableWeights[0]!.read() as tf.Variable],
      );
      const dW = values(Object.values(grads)[0]!);
      expect(dW.length).toBe(kernel.size);
      expect(dot(dW, v)).toBeCloseTo(dot(L.forward(x, v, null), gr), 4);
    });
    model.dispose();
    await switchBackend('wasm');
  });

  test('saves and loads as model.json (class GroupedConv2D) with the same outputs', async () => {
    const [, g, groups] = GEOMS[0]!;
    const model = groupedModel(g, groups, true);
    randomizeWeights(model, 11);
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (a) => {
        saved = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    expect(JSON.stringify(saved!.modelTopology)).toContain('"class_name":"GroupedConv2D"');
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
    const x = tf.tensor4d(Array.from(uniform(mulberry32(12), 2 * 5 * 5 * 4)), [2, 5, 5, 4]);
    const a = model.predict(x) as tf.Tensor;
    const b = loaded.predict(x) as tf.Tensor;
    expectClose(b, values(a), 1e-6);
    expect(loaded.getLayer('c').getConfig().groups).toBe(2);
    tf.dispose([x, a, b]);
    model.dispose();
    loaded.dispose();
  });

  test('a wrong group count is refused with what would be valid', () => {
    expect(() => new GroupedConv2D({ filters: 6, kernelSize: 3, groups: 4 })).toThrow(
      /dividing filters \(6\)/,
    );
    const x = tfl.input({ shape: [5, 5, 3] });
    expect(() => new GroupedConv2D({ filters: 6, kernelSize: 3, groups: 2 }).apply(x)).toThrow(
      /3 input channels do not divide into 2 groups/,
    );
  });
});

/** x -> grouped conv (2 groups) -> [BN] -> ReLU -> grouped conv (4 groups) -> ReLU -> GAP -> dense. */
function groupedNet(bias: boolean, bn: boolean): tfl.LayersModel {
  const x = tfl.input({ shape: [6, 6, 4], name: 'x' });
  let h = new GroupedConv2D({
    name: 'g1',
    filters: 8,
    kernelSize: 3,
    padding: 'same',
    groups: 2,
    useBias: bias,
  }).apply(x) as tfl.SymbolicTensor;
  if (bn) h = tfl.layers.batchNormalization({ name: 'bn' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.reLU({ name: 'r1' }).apply(h) as tfl.SymbolicTensor;
  h = new GroupedConv2D({
    name: 'g2',
    filters: 8,
    kernelSize: 3,
    strides: 2,
    padding: 'same',
    groups: 4,
    useBias: bias,
  }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.reLU({ name: 'r2' }).apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(h) as tfl.SymbolicTensor;
  const y = tfl.layers.dense({ name: 'fc', units: 3, useBias: bias }).apply(h) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: x, outputs: y });
  randomizeWeights(model, 21, 0.8);
  return model;
}

describe('a network of grouped convolutions', () => {
  test('mergeBatchNorm folds a batch norm into a grouped conv: same logits, groups kept', () => {
    const model = groupedNet(true, true);
    const graph = graphFromLayersModel(model);
    const merged = mergeBatchNorm().apply(graph);
    const node = merged.node('g1');
    expect(node.params.kind === 'conv2d' && node.params.groups).toBe(2);
    const x = tf.tensor4d(Array.from(uniform(mulberry32(31), 2 * 6 * 6 * 4)), [2, 6, 6, 4]);
    const lrp = new Attributor(model, { canonizers: [mergeBatchNorm()] });
    const pass = lrp.forward(x);
    const want = model.predict(x) as tf.Tensor;
    expectClose(pass.prediction, values(want), 1e-5);
    tf.dispose([x, want]);
    pass.dispose();
    lrp.dispose();
    merged.dispose();
    graph.dispose();
    model.dispose();
  });

  test('Epsilon conserves relevance through grouped convs without biases; no tensor left behind', () => {
    const model = groupedNet(false, false);
    const x = tf.tensor4d(Array.from(uniform(mulberry32(41), 2 * 6 * 6 * 4, 0, 1)), [2, 6, 6, 4]);
    const before = tf.memory().numTensors;
    const lrp = new Attributor(model, {
      composite: nameMapComposite({ g1: rules.epsilon(), g2: rules.epsilon(), fc: rules.epsilon() }),
    });
    const result = lrp.attribute(x, { target: [0, 2], recordLayers: ['g2', 'r1'] });
    const logits = values(result.prediction);
    const rel = values(result.relevance);
    const g2 = values(result.relevances.g2!);
    for (let b = 0; b < 2; b++) {
      const target = [0, 2][b]!;
      const logit = logits[b * 3 + target]!;
      expect(sum(rel.slice(b * 144, (b + 1) * 144))).toBeCloseTo(logit, 4);
      expect(sum(g2.slice(b * 72, (b + 1) * 72))).toBeCloseTo(logit, 4);
    }
    disposeResult(result);
    lrp.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  });
});
