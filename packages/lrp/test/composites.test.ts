import { CrpError } from '@crp/common';
/**
 * Composites: which rule each built-in assigns to each layer (README "Which rule applies where"), the first
 * layer logic, selection by name, and the builders by kind, by name and with a special first layer.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  Attributor,
  COMPOSITE_NAMES,
  type Composite,
  compositeByName,
  epsilonAlpha2Beta1,
  epsilonAlpha2Beta1Flat,
  epsilonGammaBox,
  epsilonPlus,
  epsilonPlusFlat,
  layerMapComposite,
  mixedComposite,
  nameMapComposite,
  rules,
  specialFirstLayerComposite,
} from '../src/index.js';
import { randomizeWeights, useBackend } from './helpers.js';

useBackend('wasm');

/** conv1 -> bn -> relu -> dw -> maxpool -> [conv2, identity] -> add -> avgpool -> gap -> dense1 -> dense2 */
function cnn(): tfl.LayersModel {
  const L = tfl.layers;
  const x = tfl.input({ shape: [8, 8, 2], name: 'x' });
  const c1 = L.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'conv1' }).apply(
    x,
  ) as tfl.SymbolicTensor;
  const bn = L.batchNormalization({ name: 'bn' }).apply(c1) as tfl.SymbolicTensor;
  const r = L.reLU({ name: 'relu' }).apply(bn) as tfl.SymbolicTensor;
  const dw = L.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'dw' }).apply(r) as tfl.SymbolicTensor;
  const mp = L.maxPooling2d({ poolSize: 2, name: 'maxpool' }).apply(dw) as tfl.SymbolicTensor;
  const c2 = L.conv2d({ filters: 3, kernelSize: 1, name: 'conv2' }).apply(mp) as tfl.SymbolicTensor;
  const add = L.add({ name: 'add' }).apply([c2, mp]) as tfl.SymbolicTensor;
  const ap = L.averagePooling2d({ poolSize: 2, name: 'avgpool' }).apply(add) as tfl.SymbolicTensor;
  const gap = L.globalAveragePooling2d({ name: 'gap' }).apply(ap) as tfl.SymbolicTensor;
  const d1 = L.dense({ units: 4, activation: 'relu', name: 'dense1' }).apply(gap) as tfl.SymbolicTensor;
  const d2 = L.dense({ units: 2, name: 'dense2' }).apply(d1) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: x, outputs: d2 });
  randomizeWeights(model, 5);
  return model;
}

/** dense -> reshape -> conv -> flatten -> dense: the first linear layer is a Dense, the first conv comes later. */
function denseFirst(): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({ units: 16, inputShape: [4], name: 'fc_in' }),
      tfl.layers.reshape({ targetShape: [4, 4, 1], name: 'reshape' }),
      tfl.layers.conv2d({ filters: 2, kernelSize: 3, name: 'conv_a' }),
      tfl.layers.conv2d({ filters: 2, kernelSize: 2, name: 'conv_b' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 3, name: 'fc_out' }),
    ],
  });
}

function rulesOf(model: tfl.LayersModel, composite: Composite | string, layers: string[]): string[] {
  const lrp = new Attributor(model, { composite, canonizers: [] });
  const names = layers.map((l) => lrp.ruleOf(l).name);
  lrp.dispose();
  return names;
}

const LAYERS = ['conv1', 'bn', 'relu', 'dw', 'maxpool', 'conv2', 'add', 'avgpool', 'gap', 'dense1', 'dense2'];
//                                     conv1      bn      relu    dw       maxpool     conv2    add     avgpool  gap     dense1     dense2
const BASE = (conv: string, first: string) => [
  first,
  'Pass',
  'Pass',
  conv,
  'gradient',
  conv,
  'Norm',
  'Norm',
  'Norm',
  'Epsilon',
  'Epsilon',
];

let model: tfl.LayersModel;
beforeAll(() => {
  model = cnn();
});
afterAll(() => model.dispose());

describe('built-in composites', () => {
  const box = { low: -1, high: 1 };
  test.each([
    ['EpsilonPlus', epsilonPlus(), BASE('ZPlus', 'ZPlus')],
    ['EpsilonPlusFlat', epsilonPlusFlat(), BASE('ZPlus', 'Flat')],
    ['EpsilonAlpha2Beta1', epsilonAlpha2Beta1(), BASE('AlphaBeta', 'AlphaBeta')],
    ['EpsilonAlpha2Beta1Flat', epsilonAlpha2Beta1Flat(), BASE('AlphaBeta', 'Flat')],
    ['EpsilonGammaBox', epsilonGammaBox(box), BASE('Gamma', 'ZBox')],
  ] as const)('%s', (name, composite, expected) => {
    expect(composite.name).toBe(name);
    expect(rulesOf(model, composite, LAYERS)).toEqual(expected);
  });

  test('parameters: Epsilon 1e-6 on dense, AlphaBeta(2, 1), Gamma 0.25, ZBox bounds, stabiliser 1e-6', () => {
    const lrp = (c: Composite) => new Attributor(model, { composite: c, canonizers: [] });
    const a = lrp(epsilonAlpha2Beta1());
    expect(a.ruleOf('dense2').params).toEqual({ epsilon: 1e-6 });
    expect(a.ruleOf('conv2').params).toEqual({ alpha: 2, beta: 1, stabilizer: 1e-6 });
    const g = lrp(epsilonGammaBox({ low: -2, high: 3 }));
    expect(g.ruleOf('conv2').params).toEqual({ gamma: 0.25, stabilizer: 1e-6 });
    expect(g.ruleOf('conv1').params).toEqual({ low: -2, high: 3, stabilizer: 1e-6 });
    const e = lrp(epsilonPlus({ epsilon: 0.25 }));
    expect(e.ruleOf('dense1').params).toEqual({ epsilon: 0.25 });
    for (const x of [a, g, e]) x.dispose();
  });

  test('by name: every COMPOSITE_NAMES entry, e.g. "epsilon_plus_flat"', () => {
    expect(COMPOSITE_NAMES).toEqual([
      'epsilon_plus',
      'epsilon_plus_flat',
      'epsilon_alpha2_beta1',
      'epsilon_alpha2_beta1_flat',
      'epsilon_gamma_box',
      'attn_lrp',
      'cp_lrp',
    ]);
    expect(compositeByName('epsilon_plus_flat').name).toBe('EpsilonPlusFlat');
    expect([compositeByName('attn_lrp').name, compositeByName('cp_lrp').name]).toEqual(['AttnLRP', 'CP-LRP']);
    expect(rulesOf(model, 'epsilon_plus_flat', LAYERS)).toEqual(BASE('ZPlus', 'Flat'));
    expect(rulesOf(model, 'epsilon_alpha2_beta1_flat', LAYERS)).toEqual(BASE('AlphaBeta', 'Flat'));
    expect(rulesOf(model, compositeByName('epsilon_gamma_box', box), LAYERS)).toEqual(BASE('Gamma', 'ZBox'));
    expect(compositeByName('epsilon_plus').name).toBe('EpsilonPlus');
    expect(compositeByName('epsilon_alpha2_beta1').name).toBe('EpsilonAlpha2Beta1');
    // the Attributor's default is epsilon_plus_flat
    const lrp = new Attributor(model);
    expect(lrp.composite.name).toBe('EpsilonPlusFlat');
    lrp.dispose();
  });

  test('unknown name: CrpError listing the valid names', () => {
    const err = (() => {
      try {
        compositeByName('epsilon_plus_flatt');
      } catch (e) {
        return e;
      }
    })() as CrpError;
    expect(err).toBeInstanceOf(CrpError);
    expect(err.code).toBe('unknown-composite');
    expect(err.message).toContain('epsilon_plus_flatt');
    for (const n of COMPOSITE_NAMES) expect(err.message).toContain(n);
    expect(() => new Attributor(model, { composite: 'lrp_magic' })).toThrowError(
      /valid names: epsilon_plus, epsilon_plus_flat/,
    );
  });

  test('epsilon_gamma_box needs the input range', () => {
    expect(() => compositeByName('epsilon_gamma_box')).toThrowError(CrpError);
    expect(() => compositeByName('epsilon_gamma_box')).toThrowError(/low, high/);
  });
});

describe('first-layer logic', () => {
  test('*Flat composites: the first conv OR dense; EpsilonGammaBox: the first conv', () => {
    const model = denseFirst();
    const layers = ['fc_in', 'conv_a', 'conv_b', 'fc_out'];
    expect(rulesOf(model, epsilonPlusFlat(), layers)).toEqual(['Flat', 'ZPlus', 'ZPlus', 'Epsilon']);
    expect(rulesOf(model, epsilonAlpha2Beta1Flat(), layers)).toEqual([
      'Flat',
      'AlphaBeta',
      'AlphaBeta',
      'Epsilon',
    ]);
    expect(rulesOf(model, epsilonGammaBox({ low: 0, high: 1 }), layers)).toEqual([
      'Epsilon',
      'ZBox',
      'Gamma',
      'Epsilon',
    ]);
    model.dispose();
  });

  test('a dense-only model: the first dense is Flat under EpsilonPlusFlat', () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({ units: 4, inputShape: [3], name: 'a' }),
        tfl.layers.dense({ units: 4, name: 'b' }),
        tfl.layers.dense({ units: 2, name: 'c' }),
      ],
    });
    expect(rulesOf(model, 'epsilon_plus_flat', ['a', 'b', 'c'])).toEqual(['Flat', 'Epsilon', 'Epsilon']);
    expect(rulesOf(model, 'epsilon_plus', ['a', 'b', 'c'])).toEqual(['Epsilon', 'Epsilon', 'Epsilon']);
    model.dispose();
  });

  test('one composite object serves several models, each with its own first layer', () => {
    const composite = epsilonPlusFlat();
    const m2 = denseFirst();
    expect(rulesOf(model, composite, ['conv1', 'conv2'])).toEqual(['Flat', 'ZPlus']);
    expect(rulesOf(m2, composite, ['fc_in', 'conv_a'])).toEqual(['Flat', 'ZPlus']);
    m2.dispose();
  });
});

describe('composite builders', () => {
  test('layerMapComposite: first matching entry wins; kinds, kind lists, predicates; the rest get the defaults', () => {
    const c = layerMapComposite([
      [(n) => n.id === 'conv2', rules.wSquare()],
      ['conv2d', rules.gamma(0.5)],
      [['depthwiseConv2d', 'dense'], rules.epsilon(0.1)],
      ['conv2d', rules.flat()], // shadowed
    ]);
    expect(rulesOf(model, c, LAYERS)).toEqual([
      'Gamma',
      'Pass',
      'Pass',
      'Epsilon',
      'gradient',
      'WSquare',
      'Norm',
      'Norm',
      'Norm',
      'Epsilon',
      'Epsilon',
    ]);
  });

  test('nameMapComposite: rules by layer name', () => {
    const c = nameMapComposite({ conv1: rules.zBox(0, 1), dense2: rules.alphaBeta(1, 0) });
    const got = rulesOf(model, c, LAYERS);
    expect(got[0]).toBe('ZBox');
    expect(got[10]).toBe('AlphaBeta');
    expect(got[5]).toBe('gradient'); // unmapped conv: the plain gradient, as zennit leaves it
    expect(got[6]).toBe('Norm');
  });

  test('nameMapComposite with an unknown layer name: CrpError listing the layers', () => {
    const lrp = new Attributor(model, {
      composite: nameMapComposite({ conv_1: rules.flat() }),
      canonizers: [],
    });
    let err: unknown;
    try {
      lrp.ruleOf('conv2');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CrpError);
    expect((err as CrpError).code).toBe('unknown-layer');
    expect((err as CrpError).message).toContain("'conv_1'");
    expect((err as CrpError).message).toContain('conv1, bn, relu');
    // and attribute fails the same way
    const x = tf.zeros([1, 8, 8, 2]);
    expect(() => lrp.attribute(x, { target: 0 })).toThrowError(/unknown layer 'conv_1'/);
    x.dispose();
    lrp.dispose();
  });

  test('nameMapComposite: an unknown name fails even when every layer that asks has a rule', () => {
    const dense = tfl.sequential({ layers: [tfl.layers.dense({ units: 2, inputShape: [3], name: 'd' })] });
    const lrp = new Attributor(dense, {
      composite: nameMapComposite({ d: rules.epsilon(), dd: rules.flat() }),
    });
    expect(() => lrp.ruleOf('d')).toThrowError(/unknown layer 'dd'.*d_input, d/);
    lrp.dispose();
    dense.dispose();
  });

  test('specialFirstLayerComposite and mixedComposite', () => {
    const first = specialFirstLayerComposite(
      [[['conv2d', 'depthwiseConv2d'], rules.zPlus()]],
      [['depthwiseConv2d', rules.wSquare()]],
    );
    expect(rulesOf(model, first, ['conv1', 'dw', 'conv2'])).toEqual(['ZPlus', 'WSquare', 'ZPlus']);
    const mixed = mixedComposite([nameMapComposite({ conv2: rules.flat() }), epsilonPlus()]);
    expect(rulesOf(model, mixed, ['conv1', 'conv2', 'dense1', 'relu'])).toEqual([
      'ZPlus',
      'Flat',
      'Epsilon',
      'Pass',
    ]);
  });
});
