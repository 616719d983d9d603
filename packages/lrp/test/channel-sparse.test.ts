import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { Attributor } from '../src/index.js';
import { linearMapOf } from '../src/internal.js';
import { mulberry32, randomizeWeights, uniform, useBackend } from './helpers.js';

useBackend('wasm');

function model(): tfl.LayersModel {
  const m = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 6, kernelSize: 3, padding: 'same', name: 'c1' }),
      tfl.layers.reLU({ name: 'r1' }),
      tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', name: 'c2' }),
      tfl.layers.reLU({ name: 'r2' }),
      tfl.layers.flatten({ name: 'f' }),
      tfl.layers.dense({ units: 12, name: 'd1' }),
      tfl.layers.reLU({ name: 'r3' }),
      tfl.layers.dense({ units: 3, name: 'out' }),
    ],
  });
  randomizeWeights(m, 11);
  return m;
}

describe('relevance masked to a few channels takes the channel-restricted transpose', () => {
  it('transposeChannels equals transpose for gradients that vanish outside the channels', () => {
    const m = model();
    const lrp = new Attributor(m);
    for (const [layer, inShape] of [
      ['c2', [2, 8, 8, 6]],
      ['d1', [2, 128]],
    ] as const) {
      const node = lrp.graph.node(layer);
      const map = linearMapOf(node, inShape)!;
      const p = node.params as { kernel: tf.Tensor };
      const back = map.backWeight(p.kernel)!;
      const outShape = layer === 'c2' ? [2, 4, 4, 8] : [2, 12];
      const channels = layer === 'c2' ? [1, 5] : [0, 7, 9];
      const c = outShape[outShape.length - 1]!;
      const mask = tf.tensor1d(Array.from({ length: c }, (_, i) => (channels.includes(i) ? 1 : 0)));
      const g = tf.mul(
        tf.tensor(
          Float32Array.from(
            uniform(
              mulberry32(5),
              outShape.reduce((a, b) => a * b),
            ),
          ),
          outShape,
        ),
        mask,
      );
      const full = map.transpose(g, back);
      const sparse = map.transposeChannels!(g, back, tf.tensor1d(channels, 'int32'));
      const a = full.dataSync();
      const b = sparse.dataSync();
      expect(b.length).toBe(a.length);
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5);
      tf.dispose([back, mask, g, full, sparse]);
    }
    lrp.dispose();
    m.dispose();
  });

  it('a masked backward pass gives the same input relevance as the same mask applied by hand', () => {
    const m = model();
    const lrp = new Attributor(m);
    const x = tf.tensor4d(Float32Array.from(uniform(mulberry32(8), 8 * 8 * 3, 0, 1)), [1, 8, 8, 3]);
    const pass = lrp.forward(x);
    const r0 = tf.tidy(() =>
      tf.mul(
        tf.tensor2d([
          [0, 1, 0],
          [0, 1, 0],
        ]),
        pass.prediction,
      ),
    );
    const mask = tf.tensor4d([0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1], [2, 1, 1, 8]);
    // through the engine's transform: the rule at c2 sees the hint and restricts its transposes
    const viaTransform = lrp.backward(pass, {
      from: 'out',
      relevance: r0,
      transform: (id, r) => (id === 'c2' ? tf.mul(r, mask) : undefined),
    });
    // by hand: relevance at c2's output, masked, then sent on from c2 without any hint
    const atC2 = lrp.backward(pass, { from: 'out', relevance: r0, stopAt: ['c2'] }).get('c2')!;
    const maskedAtC2 = tf.mul(atC2, mask);
    const byHand = lrp.backward(pass, { from: 'c2', relevance: maskedAtC2 });
    const a = viaTransform.get(lrp.graph.inputId)!.dataSync();
    const b = byHand.get(lrp.graph.inputId)!.dataSync();
    const max = Math.max(...Array.from(b).map(Math.abs));
    expect(max).toBeGreaterThan(0);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5 * max);
    tf.dispose([...viaTransform.values(), ...byHand.values(), atC2, maskedAtC2, r0, mask, x]);
    pass.dispose();
    lrp.dispose();
    m.dispose();
  });
});
