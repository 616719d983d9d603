/**
 * Every rule on tiny layers against values computed by hand (literal numbers worked out in the comments)
 * and against the float64 loops of reference.ts, which implement the README formulas independently.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import {
  Attributor,
  type Composite,
  disposeResult,
  layerMapComposite,
  nameMapComposite,
  type Rule,
  rules,
} from '../src/index.js';
import {
  expectClose,
  gridValues,
  lrpInput,
  mulberry32,
  setWeights,
  uniform,
  useBackend,
  values,
  weightsOf,
} from './helpers.js';
import {
  addNormRef,
  alphaBetaRef,
  avgPoolNormRef,
  type ConvGeom,
  convLin,
  denseLin,
  epsilonRef,
  type F,
  f64,
  filled,
  flatRef,
  gammaRef,
  gapNormRef,
  type Lin,
  maxPoolGradRef,
  maxPoolRef,
  type PoolGeom,
  poolOutSize,
  relu,
  wSquareRef,
  zBoxRef,
  zPlusRef,
} from './reference.js';

useBackend('wasm');

// Dense 3 -> 3: z = [1, -4.75, 0] for x = [2, -1, 1] (a positive, a negative and an exactly-zero output)
const W3 = [1, -2, 1, 0.5, 1, 2, -1, 0.5, 0]; // [in, out] row-major
const B3 = [0.5, -0.25, 0];
const X3 = [2, -1, 1];

function dense(
  nIn: number,
  nOut: number,
  w: ArrayLike<number>,
  b: ArrayLike<number> | null,
  activation = 'linear',
) {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({
        units: nOut,
        inputShape: [nIn],
        name: 'd',
        useBias: b !== null,
        activation: activation as 'linear',
      }),
    ],
  });
  if (b === null) setWeights(model, 'd', w);
  else setWeights(model, 'd', w, b);
  return model;
}

function conv(g: ConvGeom, bias: boolean) {
  const common = {
    kernelSize: [g.kh, g.kw] as [number, number],
    strides: [g.sh ?? 1, g.sw ?? 1] as [number, number],
    dilationRate: [g.dh ?? 1, g.dw ?? 1] as [number, number],
    padding: g.padding,
    inputShape: [g.h, g.w, g.cin],
    name: 'c',
    useBias: bias,
  };
  const layer = g.depthwise
    ? tfl.layers.depthwiseConv2d({ ...common, depthMultiplier: g.cout })
    : tfl.layers.conv2d({ ...common, filters: g.cout });
  return tfl.sequential({ layers: [layer] });
}

const at = (name: string, rule: Rule): Composite => nameMapComposite({ [name]: rule });

describe('hand-computed dense cases (literal values)', () => {
  test('Epsilon(0.25): stab(0) = +eps, negative z divides by z - eps', () => {
    // z = [1, -4.75, 0]; s = R / stab(z) = [1/1.25, 2/-5, 3/0.25] = [0.8, -0.4, 12]
    // back = W s = [0.8 + 0.8 + 12, 0.4 - 0.4 + 24, -0.8 - 0.2 + 0] = [13.6, 24, -1]; R_in = x * back
    const model = dense(3, 3, W3, B3);
    const r = lrpInput(model, X3, at('d', rules.epsilon(0.25)), [1, 2, 3]);
    expectClose(r, [27.2, -24, -1], 1e-6);
    model.dispose();
  });

  test('ZPlus: positive bias in the denominator, x- W- term', () => {
    // W (3x2) = [[1,-2],[0.5,1],[-1,0.5]], b = [0.5,-0.25], x = [2,-1,1], R = [1,2]
    // z = f(x+; W+, b+) + f(x-; W-) = [2 + 0.5, 0.5 + 0] = [2.5, 0.5] -> s = [0.4, 4]
    // x+ * W+ s = [2*0.4, 0, 1*(0.5*4)] = [0.8, 0, 2]; x- * W- s = [0, -1 * 0, 0] = 0
    const model = dense(3, 2, [1, -2, 0.5, 1, -1, 0.5], [0.5, -0.25]);
    const r = lrpInput(model, X3, at('d', rules.zPlus()), [1, 2]);
    expectClose(r, [0.8, 0, 2], 1e-5);
    model.dispose();
  });

  test('ZPlus with a negative input and negative weight (x- W- is a positive contribution)', () => {
    // W (2x1) = [[2],[-1]], b = [0], x = [1, -3]: z = 2*1 + (-3)(-1) = 5; R = 10 -> s = 2
    // R_in = [1 * 2 * 2, -3 * -1 * 2] = [4, 6]
    const model = dense(2, 1, [2, -1], [0]);
    const r = lrpInput(model, [1, -3], at('d', rules.zPlus()), [10]);
    expectClose(r, [4, 6], 1e-5);
    model.dispose();
  });

  test('AlphaBeta(2, 1) splits positive and negative contributions', () => {
    // W (2x1) = [[2],[-1]], b = 0, x = [1, 1], R = 1: zp = 2, zn = -1
    // R_in = 2 * [1*2/2, 0] - 1 * [0, 1*(-1)/(-1)] = [2, -1]
    const model = dense(2, 1, [2, -1], [0]);
    const r = lrpInput(model, [1, 1], at('d', rules.alphaBeta(2, 1)), [1]);
    expectClose(r, [2, -1], 1e-5);
    model.dispose();
  });

  test('Gamma(0.5): z > 0 uses W + g W+, z < 0 uses W + g W-, z = 0 passes nothing', () => {
    // one input x = [1]; W = [[2, -2, 0]], b = 0 -> z = [2, -2, 0]
    // z>0: Wp = 2 + 1 = 3, R_in = 1 * 3 * R0 / 3 = R0; z<0: Wn = -2 - 1 = -3, R_in += 1 * -3 * R1 / -3 = R1
    // z = 0: nothing. R = [1, 2, 4] -> R_in = 3
    const model = dense(1, 3, [2, -2, 0], [0, 0, 0]);
    const r = lrpInput(model, [1], at('d', rules.gamma(0.5)), [1, 2, 4]);
    expectClose(r, [3], 1e-5);
    model.dispose();
  });

  test('WSquare: squared bias in the denominator, independent of x', () => {
    // W (3x2) = [[1,-2],[0.5,1],[-1,0.5]], b = [0.5,-0.25]
    // o = [1 + 0.25 + 1 + 0.25, 4 + 1 + 0.25 + 0.0625] = [2.5, 5.3125]; R = [1, 2]
    const model = dense(3, 2, [1, -2, 0.5, 1, -1, 0.5], [0.5, -0.25]);
    const s1 = 2 / 5.3125;
    const expected = [1 * 0.4 + 4 * s1, 0.25 * 0.4 + 1 * s1, 1 * 0.4 + 0.25 * s1];
    expectClose(lrpInput(model, X3, at('d', rules.wSquare()), [1, 2]), expected, 1e-5);
    expectClose(lrpInput(model, [-5, 7, 0.5], at('d', rules.wSquare()), [1, 2]), expected, 1e-5);
    model.dispose();
  });

  test('Flat: uniform over the inputs, independent of x and W', () => {
    // o = [3, 3]; R = [1, 2] -> every input gets 1/3 + 2/3 = 1
    const model = dense(3, 2, [1, -2, 0.5, 1, -1, 0.5], [0.5, -0.25]);
    expectClose(lrpInput(model, X3, at('d', rules.flat()), [1, 2]), [1, 1, 1], 1e-5);
    model.dispose();
  });

  test('ZBox(low, high): the bias cancels', () => {
    // W (2x1) = [[2],[-1]], b = [3], x = [1, 1], low = -1, high = 2, R = 1
    // z = (2 - 1 + 3) - (2*-1 + 3) - (-1*2 + 0) = 4 - 1 + 2 = 5
    // R_in = x*W/5 - low*W+/5 - high*W-/5 = [2/5 + 2/5, -1/5 + 2/5] = [0.8, 0.2]
    const model = dense(2, 1, [2, -1], [3]);
    expectClose(lrpInput(model, [1, 1], at('d', rules.zBox(-1, 2)), [1]), [0.8, 0.2], 1e-5);
    model.dispose();
  });

  test('Flat on a padded 3x3 conv: border outputs spread over fewer inputs', () => {
    // 'same' 3x3 kernel on 3x3: corner outputs see 4 inputs, edges 6, the centre 9. R = 1 everywhere.
    // corner input: 1/4 + 1/6 + 1/6 + 1/9 = 25/36; edge input: 2/4 + 3/6 + 1/9 = 10/9;
    // centre: 4/4 + 4/6 + 1/9 = 16/9 (sum 9 = sum R)
    const g: ConvGeom = { h: 3, w: 3, cin: 1, kh: 3, kw: 3, cout: 1, padding: 'same' };
    const model = conv(g, true);
    setWeights(model, 'c', gridValues(mulberry32(3), 9), [0.75]);
    const c = 25 / 36;
    const e = 10 / 9;
    const expected = [c, e, c, e, 16 / 9, e, c, e, c];
    expectClose(
      lrpInput(model, gridValues(mulberry32(4), 9), at('c', rules.flat()), filled(9, 1)),
      expected,
      1e-5,
    );
    expectClose(flatRef(convLin(g), 9, filled(9, 1)), expected, 1e-5); // the reference agrees
    model.dispose();
  });
});

interface RuleCase {
  name: string;
  rule: () => Rule;
  ref: (L: Lin, x: F, w: F, b: F | null, r: F) => F;
}

const RULE_CASES: RuleCase[] = [
  {
    name: 'Epsilon(0.25)',
    rule: () => rules.epsilon(0.25),
    ref: (L, x, w, b, r) => epsilonRef(L, x, w, b, r, 0.25),
  },
  {
    name: 'Epsilon(1e-6)',
    rule: () => rules.epsilon(),
    ref: (L, x, w, b, r) => epsilonRef(L, x, w, b, r, 1e-6),
  },
  { name: 'ZPlus', rule: () => rules.zPlus(), ref: (L, x, w, b, r) => zPlusRef(L, x, w, b, r) },
  {
    name: 'AlphaBeta(2,1)',
    rule: () => rules.alphaBeta(2, 1),
    ref: (L, x, w, b, r) => alphaBetaRef(L, x, w, b, r, 2, 1),
  },
  {
    name: 'AlphaBeta(1,0)',
    rule: () => rules.alphaBeta(1, 0),
    ref: (L, x, w, b, r) => alphaBetaRef(L, x, w, b, r, 1, 0),
  },
  {
    name: 'Gamma(0.25)',
    rule: () => rules.gamma(0.25),
    ref: (L, x, w, b, r) => gammaRef(L, x, w, b, r, 0.25),
  },
  { name: 'Gamma(1)', rule: () => rules.gamma(1), ref: (L, x, w, b, r) => gammaRef(L, x, w, b, r, 1) },
  { name: 'Flat', rule: () => rules.flat(), ref: (L, _x, w, _b, r) => flatRef(L, w.length, r) },
  { name: 'WSquare', rule: () => rules.wSquare(), ref: (L, _x, w, b, r) => wSquareRef(L, w, b, r) },
  {
    name: 'ZBox(-2, 3)',
    rule: () => rules.zBox(-2, 3),
    ref: (L, x, w, b, r) => zBoxRef(L, x, w, b, r, filled(L.nIn, -2), filled(L.nIn, 3)),
  },
];

describe('rules on Dense 3->3 with z > 0, z < 0 and z = 0 outputs (reference loops)', () => {
  test('the inputs give the intended signs of z', () => {
    expect(Array.from(denseLin(3, 3).forward(f64(X3), f64(W3), f64(B3)))).toEqual([1, -4.75, 0]);
  });
  for (const c of RULE_CASES) {
    test(c.name, () => {
      const model = dense(3, 3, W3, B3);
      const R = f64([1, 2, 3]);
      const expected = c.ref(denseLin(3, 3), f64(X3), f64(W3), f64(B3), R);
      expectClose(lrpInput(model, X3, at('d', c.rule()), R), expected, 1e-5);
      model.dispose();
    });
  }

  test('Gamma ignores R at outputs with z exactly 0', () => {
    const model = dense(3, 3, W3, B3);
    const a = lrpInput(model, X3, at('d', rules.gamma()), [1, 2, 0]);
    const b = lrpInput(model, X3, at('d', rules.gamma()), [1, 2, 1000]);
    expectClose(a, b, 1e-6);
    model.dispose();
  });

  test('the fused ReLU of a Dense is Pass: rules see z before the activation and R is not gated', () => {
    const model = dense(3, 3, W3, B3, 'relu');
    const R = f64([1, 2, 3]);
    // the output with z = -4.75 is 0 after the ReLU, but its relevance still goes through the Epsilon rule
    const expected = epsilonRef(denseLin(3, 3), f64(X3), f64(W3), f64(B3), R, 0.25);
    expectClose(lrpInput(model, X3, at('d', rules.epsilon(0.25)), R), expected, 1e-5);
    model.dispose();
  });
});

const CONV_GEOMS: [string, ConvGeom][] = [
  ['conv 4x4x2 -> 3x3 same, 2 filters', { h: 4, w: 4, cin: 2, kh: 3, kw: 3, cout: 2, padding: 'same' }],
  [
    'conv 5x4x1 -> [2,3] stride 2 valid',
    { h: 5, w: 4, cin: 1, kh: 2, kw: 3, cout: 2, sh: 2, sw: 2, padding: 'valid' },
  ],
  [
    'conv 5x5x2 -> 3x3 stride 2 same',
    { h: 5, w: 5, cin: 2, kh: 3, kw: 3, cout: 1, sh: 2, sw: 2, padding: 'same' },
  ],
  [
    'depthwise 4x4x2 x2 -> 3x3 same',
    { h: 4, w: 4, cin: 2, kh: 3, kw: 3, cout: 2, padding: 'same', depthwise: true },
  ],
  [
    'depthwise 5x5x1 x2 -> 2x2 stride 2 valid',
    { h: 5, w: 5, cin: 1, kh: 2, kw: 2, cout: 2, sh: 2, sw: 2, padding: 'valid', depthwise: true },
  ],
];

describe('rules on small convolutions (reference loops)', () => {
  CONV_GEOMS.forEach(([label, g], gi) => {
    describe(label, () => {
      const L = convLin(g);
      const rng = mulberry32(100 + gi);
      const w = gridValues(rng, g.kh * g.kw * g.cin * g.cout, 1.5);
      const b = gridValues(rng, L.co, 1);
      const x = gridValues(rng, L.nIn, 2); // negative inputs included
      const R = uniform(rng, L.nOut, -1, 2);
      for (const c of RULE_CASES) {
        test(c.name, () => {
          const model = conv(g, true);
          setWeights(model, 'c', w, b);
          expectClose(lrpInput(model, x, at('c', c.rule()), R), c.ref(L, x, w, b, R), 1e-5);
          model.dispose();
        });
      }
      test('the input gives outputs of both signs', () => {
        const z = L.forward(x, w, b);
        expect(z.some((v) => v > 0)).toBe(true);
        expect(z.some((v) => v < 0)).toBe(true);
      });
    });
  });

  test('ZBox with per-channel tensor bounds', () => {
    const g: ConvGeom = { h: 4, w: 4, cin: 2, kh: 2, kw: 2, cout: 2, padding: 'valid' };
    const L = convLin(g);
    const rng = mulberry32(7);
    const w = gridValues(rng, 16, 1.5);
    const b = gridValues(rng, 2, 1);
    const x = gridValues(rng, L.nIn, 1);
    const R = uniform(rng, L.nOut, 0, 1);
    const lowC = [-1, -2];
    const highC = [1, 3];
    const low = f64(Array.from({ length: L.nIn }, (_, i) => lowC[i % 2]!));
    const high = f64(Array.from({ length: L.nIn }, (_, i) => highC[i % 2]!));
    const lowT = tf.tensor1d(lowC);
    const highT = tf.tensor1d(highC);
    const model = conv(g, true);
    setWeights(model, 'c', w, b);
    const expected = zBoxRef(L, x, w, b, R, low, high);
    expectClose(lrpInput(model, x, at('c', rules.zBox(lowT, highT)), R), expected, 1e-5);
    // and it differs from scalar bounds, so the per-channel values are really used
    const scalar = zBoxRef(L, x, w, b, R, filled(L.nIn, -1), filled(L.nIn, 1));
    expect(Math.max(...expected.map((v, i) => Math.abs(v - scalar[i]!)))).toBeGreaterThan(1e-3);
    lowT.dispose();
    highT.dispose();
    model.dispose();
  });

  test('Flat on a padded conv with two output channels and stride 2', () => {
    const g: ConvGeom = { h: 5, w: 5, cin: 2, kh: 3, kw: 3, cout: 2, sh: 2, sw: 2, padding: 'same' };
    const L = convLin(g);
    const model = conv(g, false);
    setWeights(model, 'c', gridValues(mulberry32(9), 36));
    const R = uniform(mulberry32(10), L.nOut, 0, 1);
    expectClose(lrpInput(model, filled(L.nIn, 1), at('c', rules.flat()), R), flatRef(L, 36, R), 1e-5);
    model.dispose();
  });

  // Flat on a conv runs on one channel (cin * taps, the transpose of the channel sum): a stem-like 7x7 / 2 with 3
  // inputs and 4 outputs, and a dilated 3x3; the relevance of negative R included, no tensor left behind
  const FLAT_GEOMS: [string, ConvGeom][] = [
    [
      '7x7 stride 2 same, 3 -> 4',
      { h: 11, w: 12, cin: 3, kh: 7, kw: 7, cout: 4, sh: 2, sw: 2, padding: 'same' },
    ],
    [
      '3x3 dilation 2 same, 2 -> 3',
      { h: 7, w: 6, cin: 2, kh: 3, kw: 3, cout: 3, dh: 2, dw: 2, padding: 'same' },
    ],
  ];
  for (const [label, g] of FLAT_GEOMS) {
    test(`Flat on one channel: ${label}`, () => {
      const L = convLin(g);
      const model = conv(g, true);
      const nW = g.kh * g.kw * g.cin * g.cout;
      setWeights(model, 'c', gridValues(mulberry32(11), nW), gridValues(mulberry32(12), g.cout));
      const R = uniform(mulberry32(13), L.nOut, -1, 1);
      const x = gridValues(mulberry32(14), L.nIn, 2);
      const before = tf.memory().numTensors;
      expectClose(lrpInput(model, x, at('c', rules.flat()), R), flatRef(L, nW, R), 1e-5);
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });
  }
});

function poolModel(kind: 'max' | 'avg', g: PoolGeom) {
  const args = {
    poolSize: [g.kh, g.kw] as [number, number],
    strides: [g.sh, g.sw] as [number, number],
    padding: g.padding,
    inputShape: [g.h, g.w, g.c],
    name: 'pool',
  };
  return tfl.sequential({
    layers: [kind === 'max' ? tfl.layers.maxPooling2d(args) : tfl.layers.averagePooling2d(args)],
  });
}

describe('Norm', () => {
  const geoms: [string, PoolGeom][] = [
    ['avgPool 2x2 valid on 4x4x2', { h: 4, w: 4, c: 2, kh: 2, kw: 2, sh: 2, sw: 2, padding: 'valid' }],
    [
      'avgPool 3x3 stride 2 same on 5x5x1 (border windows count fewer inputs)',
      { h: 5, w: 5, c: 1, kh: 3, kw: 3, sh: 2, sw: 2, padding: 'same' },
    ],
    ['avgPool 2x2 stride 2 same on 5x5x1', { h: 5, w: 5, c: 1, kh: 2, kw: 2, sh: 2, sw: 2, padding: 'same' }],
    [
      'avgPool [2,3] stride 1 valid on 4x5x1 (overlapping)',
      { h: 4, w: 5, c: 1, kh: 2, kw: 3, sh: 1, sw: 1, padding: 'valid' },
    ],
  ];
  geoms.forEach(([label, g], gi) => {
    test(label, () => {
      const rng = mulberry32(200 + gi);
      const x = uniform(rng, g.h * g.w * g.c, -0.5, 2);
      const R = uniform(rng, poolOutSize(g), -1, 1);
      const model = poolModel('avg', g);
      expectClose(lrpInput(model, x, 'epsilon_plus', R), avgPoolNormRef(x, g, R), 1e-5);
      model.dispose();
    });
  });

  test('avgPool 2x2 valid by hand', () => {
    // window [1, 2; 3, 6]: o = 3, R = 6 -> s = 2, each input gets x * 2 / 4 = [0.5, 1, 1.5, 3]
    const model = poolModel('avg', { h: 2, w: 2, c: 1, kh: 2, kw: 2, sh: 2, sw: 2, padding: 'valid' });
    expectClose(lrpInput(model, [1, 2, 3, 6], 'epsilon_plus', [6]), [0.5, 1, 1.5, 3], 1e-5);
    model.dispose();
  });

  test('global average pooling', () => {
    const rng = mulberry32(300);
    const x = uniform(rng, 3 * 3 * 2, -0.5, 2);
    const R = f64([1.5, -2]);
    const model = tfl.sequential({
      layers: [tfl.layers.globalAveragePooling2d({ inputShape: [3, 3, 2], name: 'gap' })],
    });
    expectClose(lrpInput(model, x, 'epsilon_plus', R), gapNormRef(x, 9, 2, R), 1e-5);
    model.dispose();
  });

  test('Add: R_i = x_i * R / stab(sum x), at a single layer via the engine', () => {
    // x -> d1, x -> d2, add([d1, d2]); relevance from the add down to its inputs
    const input = tfl.input({ shape: [3], name: 'x' });
    const d1 = tfl.layers.dense({ units: 3, name: 'd1' }).apply(input) as tfl.SymbolicTensor;
    const d2 = tfl.layers.dense({ units: 3, name: 'd2' }).apply(input) as tfl.SymbolicTensor;
    const sumT = tfl.layers.add({ name: 'add' }).apply([d1, d2]) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: sumT });
    const rng = mulberry32(400);
    setWeights(model, 'd1', gridValues(rng, 9, 1), gridValues(rng, 3, 1));
    setWeights(model, 'd2', gridValues(rng, 9, 1), gridValues(rng, 3, 1));
    const x = f64([1.5, -0.5, 1]);
    const L = denseLin(3, 3);
    const [w1, b1] = weightsOf(model, 'd1');
    const [w2, b2] = weightsOf(model, 'd2');
    const y1 = L.forward(x, w1!, b1!);
    const y2 = L.forward(x, w2!, b2!);
    const R = f64([1, -2, 0.5]);
    const [e1, e2] = addNormRef([y1, y2], R);

    const lrp = new Attributor(model, { composite: 'epsilon_plus', canonizers: [] });
    expect(lrp.ruleOf('add').name).toBe('Norm');
    const xt = tf.tensor2d([Array.from(x)]);
    const rt = tf.tensor2d([Array.from(R)]);
    const pass = lrp.forward(xt);
    const out = lrp.backward(pass, { from: 'add', relevance: rt, stopAt: ['d1', 'd2'] });
    expectClose(out.get('d1')!, e1!, 1e-5);
    expectClose(out.get('d2')!, e2!, 1e-5);
    // the split conserves relevance up to the stabiliser
    expect(
      values(out.get('d1')!).reduce((s, v) => s + v, 0) + values(out.get('d2')!).reduce((s, v) => s + v, 0),
    ).toBeCloseTo(-0.5, 4);
    for (const t of out.values()) t.dispose();
    pass.dispose();
    for (const t of [xt, rt]) t.dispose();
    lrp.dispose();
    model.dispose();
  });
});

describe('Pass', () => {
  test('ReLU and Activation(relu) pass relevance unchanged, even where x < 0', () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.reLU({ inputShape: [4], name: 'r' }),
        tfl.layers.activation({ activation: 'relu', name: 'a' }),
      ],
    });
    const R = [1, -2, 3, 0.5];
    expectClose(lrpInput(model, [-1, 2, -3, 0], 'epsilon_plus_flat', R), R, 0);
    const lrp = new Attributor(model);
    expect(lrp.ruleOf('r').name).toBe('Pass');
    expect(lrp.ruleOf('a').name).toBe('Pass');
    lrp.dispose();
    model.dispose();
  });

  test('BatchNormalization (not merged) passes relevance unchanged', () => {
    const model = tfl.sequential({
      layers: [tfl.layers.batchNormalization({ inputShape: [2, 2, 2], name: 'bn' })],
    });
    setWeights(model, 'bn', [2, 0.5], [1, -1], [0.5, 0.25], [4, 0.25]);
    const R = uniform(mulberry32(5), 8, -1, 1);
    expectClose(lrpInput(model, uniform(mulberry32(6), 8), 'epsilon_plus', R), R, 0);
    model.dispose();
  });
});

describe('MaxPool: the plain gradient with the first-maximum tie-break', () => {
  test('2x2 windows by hand: a tie, an all-zero window, a negative window, a tie of 5s', () => {
    // windows (row-major): [3 1; 3 3] -> first 3 at (0,0); [0 0; 0 0] -> (0,2);
    // [-3 -1; -1 -2] -> first -1 at (2,1); [5 2; 1 5] -> first 5 at (2,2). R = [1, 2, 3, 4]
    const x = [3, 1, 0, 0, 3, 3, 0, 0, -3, -1, 5, 2, -1, -2, 1, 5];
    const expected = [1, 0, 2, 0, 0, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0, 0];
    const g: PoolGeom = { h: 4, w: 4, c: 1, kh: 2, kw: 2, sh: 2, sw: 2, padding: 'valid' };
    const model = poolModel('max', g);
    expectClose(lrpInput(model, x, 'epsilon_plus', [1, 2, 3, 4]), expected, 0);
    expect(Array.from(maxPoolGradRef(f64(x), g, f64([1, 2, 3, 4])))).toEqual(expected);
    const lrp = new Attributor(model);
    expect(lrp.ruleOf('pool').name).toBe('gradient');
    lrp.dispose();
    model.dispose();
  });

  test("'same' padding: padded positions never win, even in all-negative windows", () => {
    // 3x3 input, 2x2 stride 2 'same' -> pads one row/column at the bottom/right
    const x = [-5, -4, -1, -3, -2, -2, -1, -7, -6];
    // windows: [-5 -4; -3 -2] -> (1,1); [-1; -2] -> (0,2); [-1 -7] -> (2,0); [-6] -> (2,2)
    const expected = [0, 0, 2, 0, 1, 0, 3, 0, 4];
    const g: PoolGeom = { h: 3, w: 3, c: 1, kh: 2, kw: 2, sh: 2, sw: 2, padding: 'same' };
    const model = poolModel('max', g);
    expectClose(lrpInput(model, x, 'epsilon_plus', [1, 2, 3, 4]), expected, 0);
    expect(Array.from(maxPoolGradRef(f64(x), g, f64([1, 2, 3, 4])))).toEqual(expected);
    model.dispose();
  });

  test('overlapping 3x3 stride 2: a shared maximum collects every window it wins', () => {
    // 5x5 zeros with a 1 at the centre (2,2), which lies in all four windows; R = [1, 2, 3, 4]
    const x = new Array<number>(25).fill(0);
    x[12] = 1;
    const expected = new Array<number>(25).fill(0);
    expected[12] = 10;
    const g: PoolGeom = { h: 5, w: 5, c: 1, kh: 3, kw: 3, sh: 2, sw: 2, padding: 'valid' };
    const model = poolModel('max', g);
    expectClose(lrpInput(model, x, 'epsilon_plus', [1, 2, 3, 4]), expected, 0);
    // all zeros: every window's first element (0,0), (0,2), (2,0), (2,2)
    const zeros = lrpInput(model, new Array<number>(25).fill(0), 'epsilon_plus', [1, 2, 3, 4]);
    const z = new Array<number>(25).fill(0);
    z[0] = 1;
    z[2] = 2;
    z[10] = 3;
    z[12] = 4;
    expectClose(zeros, z, 0);
    model.dispose();
  });

  const geoms: [string, PoolGeom][] = [
    ['2x2 stride 2 valid, 6x6x2', { h: 6, w: 6, c: 2, kh: 2, kw: 2, sh: 2, sw: 2, padding: 'valid' }],
    [
      '2x2 stride 1 valid, 4x4x1 (overlap)',
      { h: 4, w: 4, c: 1, kh: 2, kw: 2, sh: 1, sw: 1, padding: 'valid' },
    ],
    [
      '3x3 stride 2 valid, 7x7x2 (overlap)',
      { h: 7, w: 7, c: 2, kh: 3, kw: 3, sh: 2, sw: 2, padding: 'valid' },
    ],
    [
      '3x3 stride 2 same, 6x6x1 (overlap, padding after)',
      { h: 6, w: 6, c: 1, kh: 3, kw: 3, sh: 2, sw: 2, padding: 'same' },
    ],
    [
      '3x3 stride 2 same, 5x5x2 (padding both sides)',
      { h: 5, w: 5, c: 2, kh: 3, kw: 3, sh: 2, sw: 2, padding: 'same' },
    ],
    ['3x3 stride 1 same, 4x4x1', { h: 4, w: 4, c: 1, kh: 3, kw: 3, sh: 1, sw: 1, padding: 'same' }],
    // phases that no window offset reaches (the kernel is smaller than the stride), and rows no window reads
    [
      '2x2 stride 3 valid, 8x8x1 (gaps between windows)',
      { h: 8, w: 8, c: 1, kh: 2, kw: 2, sh: 3, sw: 3, padding: 'valid' },
    ],
    [
      '3x3 stride 2 valid, 8x8x1 (last row unread)',
      { h: 8, w: 8, c: 1, kh: 3, kw: 3, sh: 2, sw: 2, padding: 'valid' },
    ],
    ['[2,3] strides [1,2] same, 5x6x1', { h: 5, w: 6, c: 1, kh: 2, kw: 3, sh: 1, sw: 2, padding: 'same' }],
  ];
  geoms.forEach(([label, g], gi) => {
    test(`${label}: many ties ({-1, 0, 1}), all-negative and all-zero inputs`, () => {
      const rng = mulberry32(500 + gi);
      const model = poolModel('max', g);
      const n = g.h * g.w * g.c;
      const R = uniform(rng, poolOutSize(g), 0.5, 2);
      const inputs = [
        gridValues(rng, n, 1, 1), // values in {-1, 0, 1}: ties everywhere
        gridValues(rng, n, 2, 1).map((v) => -Math.abs(v) - 1), // all negative, with ties
        filled(n, 0),
        uniform(rng, n, -1, 1),
      ];
      for (const x of inputs) {
        expectClose(lrpInput(model, x, 'epsilon_plus', R), maxPoolGradRef(x, g, R), 1e-6);
      }
      model.dispose();
    });
  });

  test('batch of 2 with different tie patterns', () => {
    const g: PoolGeom = { h: 4, w: 4, c: 2, kh: 2, kw: 2, sh: 2, sw: 2, padding: 'valid' };
    const model = poolModel('max', g);
    const rng = mulberry32(600);
    const x0 = gridValues(rng, 32, 1, 1);
    const x1 = gridValues(rng, 32, 1, 1).map((v) => v - 2);
    const R = uniform(rng, poolOutSize(g), 0, 1);
    const lrp = new Attributor(model, { canonizers: [] });
    const xt = tf.tensor4d([...x0, ...x1], [2, 4, 4, 2]);
    const result = lrp.attribute(xt, { initRelevance: (p) => tf.tensor([...R, ...R], p.shape) });
    const got = values(result.relevance);
    expectClose(got.slice(0, 32), maxPoolGradRef(x0, g, R), 0);
    expectClose(got.slice(32), maxPoolGradRef(x1, g, R), 0);
    result.relevance.dispose();
    result.prediction.dispose();
    xt.dispose();
    lrp.dispose();
    model.dispose();
  });
});

describe('a conv -> ReLU -> maxpool -> flatten -> dense chain, whole and layer by layer', () => {
  const g: ConvGeom = { h: 4, w: 4, cin: 1, kh: 3, kw: 3, cout: 2, padding: 'same' };
  const pg: PoolGeom = { h: 4, w: 4, c: 2, kh: 2, kw: 2, sh: 2, sw: 2, padding: 'valid' };
  const rng = mulberry32(700);
  const w = gridValues(rng, 18, 1);
  const b = gridValues(rng, 2, 0.5);
  const wd = gridValues(rng, 8 * 3, 1);
  const bd = gridValues(rng, 3, 0.5);
  const x = gridValues(rng, 16, 2);
  const R = f64([0.5, -1, 2]);
  const build = () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({
          filters: 2,
          kernelSize: 3,
          padding: 'same',
          inputShape: [4, 4, 1],
          name: 'conv',
        }),
        tfl.layers.reLU({ name: 'relu' }),
        tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
        tfl.layers.flatten({ name: 'flat' }),
        tfl.layers.dense({ units: 3, name: 'dense' }),
      ],
    });
    setWeights(model, 'conv', w, b);
    setWeights(model, 'dense', wd, bd);
    return model;
  };
  // independent forward and backward
  const L = convLin(g);
  const zc = L.forward(x, w, b);
  const a = relu(zc);
  const pooled = maxPoolRef(a, pg);
  const rDense = epsilonRef(denseLin(8, 3), pooled, wd, bd, R, 0.01);
  const rRelu = maxPoolGradRef(a, pg, rDense);
  const rIn = zPlusRef(L, x, w, b, rRelu);
  const composite = layerMapComposite([
    ['conv2d', rules.zPlus()],
    ['dense', rules.epsilon(0.01)],
  ]);

  test('attribute equals the chained hand computation, and records each layer', () => {
    const model = build();
    const xt = tf.tensor4d(Array.from(x), [1, 4, 4, 1]);
    const lrp = new Attributor(model, { composite, canonizers: [] });
    const result = lrp.attribute(xt, {
      initRelevance: (p) => tf.tensor2d([Array.from(R)], p.shape as [number, number]),
      recordLayers: ['flat', 'pool', 'relu', 'conv'],
    });
    expectClose(result.prediction, denseLin(8, 3).forward(pooled, wd, bd), 1e-6);
    expectClose(result.relevances.flat!, rDense, 1e-5);
    expectClose(result.relevances.pool!, rDense, 1e-5); // flatten is a reshape
    expectClose(result.relevances.relu!, rRelu, 1e-5);
    expectClose(result.relevances.conv!, rRelu, 1e-5); // ReLU is Pass
    expectClose(result.relevance, rIn, 1e-5);
    disposeResult(result);
    xt.dispose();
    lrp.dispose();
    model.dispose();
  });

  test('each rule at a single layer via backward(from, stopAt)', () => {
    const model = build();
    const lrp = new Attributor(model, { composite, canonizers: [] });
    const xt = tf.tensor4d(Array.from(x), [1, 4, 4, 1]);
    const pass = lrp.forward(xt);
    const one = (from: string, stop: string, r: F, shape: number[]) => {
      const rt = tf.tensor(Array.from(r), shape);
      const out = lrp.backward(pass, { from, relevance: rt, stopAt: [stop] });
      const v = values(out.get(stop)!);
      out.get(stop)!.dispose();
      rt.dispose();
      return v;
    };
    expectClose(one('dense', 'flat', R, [1, 3]), rDense, 1e-5);
    expectClose(one('pool', 'relu', rDense, [1, 2, 2, 2]), rRelu, 1e-5);
    expectClose(one('relu', 'conv', rRelu, [1, 4, 4, 2]), rRelu, 1e-6); // Pass (up to float32 rounding)
    expectClose(one('conv', 'conv_input', rRelu, [1, 4, 4, 2]), rIn, 1e-5);
    pass.dispose();
    xt.dispose();
    lrp.dispose();
    model.dispose();
  });
});
