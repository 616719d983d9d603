import * as lrp from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { PaddedMaxPooling2D, paddedMaxPooling2d } from '../src/index.js';

/**
 * PyTorch's MaxPool2d(3, 2, padding=1): pads never win a window, so an all-negative window keeps its maximum
 * (zero padding would give 0) and the gradient sends a window's relevance to its first maximum among the real
 * elements (with zero padding a tie at 0 would hand it to a pad and lose it).
 */
beforeAll(async () => {
  await tf.setBackend('cpu');
});

// 4x4, one channel; the top-left 3x3 block is all zero (a tie that a zero pad would win)
const X = [0, 0, 0, -1, 0, 0, 0, -2, 0, 0, 0, -3, -4, -5, -6, -0.5];

function model(): tfl.LayersModel {
  const x = tfl.input({ shape: [4, 4, 1] });
  const p = paddedMaxPooling2d({ name: 'pool', poolSize: 3, strides: 2, padding: 1 }).apply(
    x,
  ) as tfl.SymbolicTensor;
  const f = tfl.layers.flatten({ name: 'flat' }).apply(p) as tfl.SymbolicTensor;
  const y = tfl.layers.dense({ name: 'out', units: 2, useBias: false }).apply(f) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: x, outputs: y });
  const k = tf.tensor2d([1, 0, 2, 0, 3, 0, 4, 0], [4, 2]);
  m.getLayer('out').setWeights([k]);
  k.dispose();
  return m;
}

describe('PaddedMaxPooling2D', () => {
  it('pools like PyTorch: windows rows/cols {-1..1, 1..3}, pads never win (hand-computed)', () => {
    const layer = paddedMaxPooling2d({ poolSize: 3, strides: 2, padding: 1 });
    const y = layer.apply(tf.tensor4d(X, [1, 4, 4, 1])) as tf.Tensor;
    // windows: [0..1]x[0..1] -> 0; [0..1]x[1..3] -> 0; [1..3]x[0..1] -> 0; [1..3]x[1..3] -> max(0,0,-2,0,-3,-5,-6,-.5)=0
    expect(Array.from(y.dataSync())).toEqual([0, 0, 0, 0]);
    const neg = layer.apply(
      tf.tensor4d(
        X.map((v) => v - 10),
        [1, 4, 4, 1],
      ),
    ) as tf.Tensor;
    expect(Array.from(neg.dataSync())).toEqual([-10, -10, -10, -10]);
    expect(layer.computeOutputShape([null, 4, 4, 1])).toEqual([null, 2, 2, 1]);
  });

  it('serialises: the config makes the same layer again', () => {
    const layer = paddedMaxPooling2d({
      poolSize: [3, 2],
      strides: [2, 1],
      padding: [
        [1, 0],
        [0, 1],
      ],
      name: 'p',
    });
    const again = PaddedMaxPooling2D.fromConfig(PaddedMaxPooling2D, layer.getConfig()) as PaddedMaxPooling2D;
    expect([again.poolSize, again.strides, again.padding]).toEqual([
      [3, 2],
      [2, 1],
      [
        [1, 0],
        [0, 1],
      ],
    ]);
    expect(() => paddedMaxPooling2d({ poolSize: 3, padding: -1 })).toThrowError(/padding -1; valid/);
  });

  it("the LRP gradient gives each window's relevance to its first real maximum (hand-computed)", () => {
    const m = model();
    const x = tf.tensor4d(X, [1, 4, 4, 1]);
    const composite = lrp.layerMapComposite([[['dense'], lrp.rules.gradient()]]);
    const r = lrp.attribute(m, x, { composite, canonizers: [], initRelevance: tf.tensor2d([[1, 0]]) });
    // pool outputs get 1, 2, 3, 4; their first maxima among real elements: (0,0), (0,1), (1,0), (1,1)
    const expected = new Array(16).fill(0);
    expected[0] = 1;
    expected[1] = 2;
    expected[4] = 3;
    expected[5] = 4;
    expect(Array.from(r.relevance.dataSync())).toEqual(expected);
    lrp.disposeResult(r);
    x.dispose();
    m.dispose();
  });

  it('dot-product test: the adjoint of its gradient is its transpose', () => {
    const m = model();
    const a = new lrp.Attributor(m, {
      composite: lrp.layerMapComposite([[['dense'], lrp.rules.gradient()]]),
    });
    const x = tf.tensor4d(
      X.map((v, i) => v + ((i * 7) % 5) * 0.25),
      [1, 4, 4, 1],
    );
    const pass = a.forward(x);
    const v = tf.tensor4d(
      Array.from({ length: 32 }, (_, i) => Math.sin(i + 1)),
      [2, 4, 4, 1],
    );
    const u = tf.tensor4d(
      Array.from({ length: 8 }, (_, i) => Math.cos(i + 1)),
      [2, 2, 2, 1],
    );
    const adj = a.adjoint(pass, { values: v, record: ['pool'] });
    const back = a.backward(pass, { from: 'pool', relevance: u });
    const dot = (p: tf.Tensor, q: tf.Tensor) => {
      const [pa, qa] = [Array.from(p.dataSync()), Array.from(q.dataSync())];
      return pa.reduce((s, e, i) => s + e * qa[i]!, 0);
    };
    expect(dot(v, back.get(a.graph.inputId)!)).toBeCloseTo(dot(adj.get('pool')!, u), 5);
    for (const t of [...adj.values(), ...back.values(), v, u, x]) t.dispose();
    pass.dispose();
    a.dispose();
    m.dispose();
  });
});
