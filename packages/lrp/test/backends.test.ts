/**
 * The rest of the suite runs on wasm; this file repeats a few rule checks on the cpu backend and checks that
 * wasm and cpu give the same relevance on a small model (every built-in composite, negative max-pool
 * windows included, where TF.js's own wasm MaxPoolGrad is wrong).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, test } from 'vitest';
import { Attributor, COMPOSITE_NAMES, compositeByName, nameMapComposite, rules } from '../src/index.js';
import {
  expectClose,
  gridValues,
  lrpInput,
  mulberry32,
  randomizeWeights,
  setWeights,
  switchBackend,
  uniform,
  useBackend,
  values,
} from './helpers.js';
import { avgPoolNormRef, convLin, filled, gammaRef, maxPoolGradRef, type PoolGeom } from './reference.js';

useBackend('cpu');

describe('rules on the cpu backend', () => {
  test('backend is cpu', () => {
    expect(tf.getBackend()).toBe('cpu');
  });

  test('Epsilon(0.25) on Dense 3->3 by hand', () => {
    const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [3], name: 'd' })] });
    setWeights(model, 'd', [1, -2, 1, 0.5, 1, 2, -1, 0.5, 0], [0.5, -0.25, 0]);
    expectClose(
      lrpInput(model, [2, -1, 1], nameMapComposite({ d: rules.epsilon(0.25) }), [1, 2, 3]),
      [27.2, -24, -1],
      1e-6,
    );
    model.dispose();
  });

  test('ZPlus on Dense 3->2 by hand', () => {
    const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 2, inputShape: [3], name: 'd' })] });
    setWeights(model, 'd', [1, -2, 0.5, 1, -1, 0.5], [0.5, -0.25]);
    expectClose(
      lrpInput(model, [2, -1, 1], nameMapComposite({ d: rules.zPlus() }), [1, 2]),
      [0.8, 0, 2],
      1e-5,
    );
    model.dispose();
  });

  test('Flat on a padded 3x3 conv by hand', () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ filters: 1, kernelSize: 3, padding: 'same', inputShape: [3, 3, 1], name: 'c' }),
      ],
    });
    const c = 25 / 36;
    const e = 10 / 9;
    expectClose(
      lrpInput(model, filled(9, 0.3), nameMapComposite({ c: rules.flat() }), filled(9, 1)),
      [c, e, c, e, 16 / 9, e, c, e, c],
      1e-5,
    );
    model.dispose();
  });

  test('Gamma on a conv with negative inputs and outputs of both signs', () => {
    const g = { h: 4, w: 4, cin: 2, kh: 3, kw: 3, cout: 2, padding: 'same' as const };
    const L = convLin(g);
    const rng = mulberry32(100);
    const w = gridValues(rng, 36, 1.5);
    const b = gridValues(rng, 2, 1);
    const x = gridValues(rng, 32, 2);
    const R = uniform(rng, 32, -1, 2);
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', inputShape: [4, 4, 2], name: 'c' }),
      ],
    });
    setWeights(model, 'c', w, b);
    expectClose(
      lrpInput(model, x, nameMapComposite({ c: rules.gamma(0.25) }), R),
      gammaRef(L, x, w, b, R, 0.25),
      1e-5,
    );
    model.dispose();
  });

  test('MaxPool tie-break and Norm at a same-padded average pooling', () => {
    const g: PoolGeom = { h: 5, w: 5, c: 2, kh: 3, kw: 3, sh: 2, sw: 2, padding: 'same' };
    const args = { poolSize: 3, strides: 2, padding: 'same' as const, inputShape: [5, 5, 2] };
    const mp = tfl.sequential({ layers: [tfl.layers.maxPooling2d(args)] });
    const ap = tfl.sequential({ layers: [tfl.layers.averagePooling2d(args)] });
    const rng = mulberry32(7);
    const R = uniform(rng, 18, 0.5, 1.5);
    for (const x of [gridValues(rng, 50, 1, 1), gridValues(rng, 50, 1, 1).map((v) => v - 2), filled(50, 0)]) {
      expectClose(lrpInput(mp, x, 'epsilon_plus', R), maxPoolGradRef(x, g, R), 1e-6);
    }
    const x = uniform(rng, 50, -0.5, 2);
    expectClose(lrpInput(ap, x, 'epsilon_plus', R), avgPoolNormRef(x, g, R), 1e-5);
    mp.dispose();
    ap.dispose();
  });
});

describe('wasm and cpu agree', () => {
  function buildModel(): tfl.LayersModel {
    const L = tfl.layers;
    const x = tfl.input({ shape: [10, 10, 2], name: 'x' });
    const c1 = L.conv2d({ filters: 4, kernelSize: 3, strides: 1, padding: 'same', name: 'c1' }).apply(
      x,
    ) as tfl.SymbolicTensor;
    const bn = L.batchNormalization({ name: 'bn' }).apply(c1) as tfl.SymbolicTensor;
    const r1 = L.reLU({ name: 'r1' }).apply(bn) as tfl.SymbolicTensor;
    const mp = L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'mp' }).apply(
      r1,
    ) as tfl.SymbolicTensor;
    const dw = L.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'dw' }).apply(
      mp,
    ) as tfl.SymbolicTensor;
    const c2 = L.conv2d({ filters: 4, kernelSize: [3, 2], strides: 2, padding: 'same', name: 'c2' }).apply(
      dw,
    ) as tfl.SymbolicTensor;
    const mpNeg = L.maxPooling2d({ poolSize: 2, strides: 1, padding: 'same', name: 'mp_neg' }).apply(
      c2,
    ) as tfl.SymbolicTensor;
    const ap = L.averagePooling2d({ poolSize: 2, padding: 'same', name: 'ap' }).apply(
      mpNeg,
    ) as tfl.SymbolicTensor;
    const f = L.flatten({ name: 'f' }).apply(ap) as tfl.SymbolicTensor;
    const d = L.dense({ units: 4, name: 'd' }).apply(f) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: x, outputs: d });
    randomizeWeights(model, 31, 0.7);
    return model;
  }

  test('same prediction and relevance for every built-in composite (1e-4 relative)', async () => {
    const input = uniform(mulberry32(32), 2 * 200, -1, 1);
    const results: Record<string, Float64Array[]> = {};
    for (const backend of ['wasm', 'cpu'] as const) {
      await switchBackend(backend);
      const model = buildModel();
      const x = tf.tensor4d(Array.from(input), [2, 10, 10, 2]);
      const out: Float64Array[] = [];
      for (const name of COMPOSITE_NAMES) {
        const lrp = new Attributor(model, { composite: compositeByName(name, { low: -1, high: 1 }) });
        const result = lrp.attribute(x, { target: [1, 3], recordLayers: ['mp_neg', 'r1'] });
        out.push(
          values(result.prediction),
          values(result.relevance),
          values(result.relevances.mp_neg!),
          values(result.relevances.r1!),
        );
        for (const t of [result.prediction, result.relevance, ...Object.values(result.relevances)])
          t.dispose();
        lrp.dispose();
      }
      results[backend] = out;
      x.dispose();
      model.dispose();
    }
    await switchBackend('cpu');
    const [wasm, cpu] = [results.wasm!, results.cpu!];
    expect(wasm.length).toBe(cpu.length);
    wasm.forEach((w, i) => {
      expect(w.some((v) => v !== 0)).toBe(true);
      expectClose(w, cpu[i]!, 1e-4);
    });
  });
});
