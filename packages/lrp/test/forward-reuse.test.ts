/**
 * Attributor.forward with `reuse`: after some layers' weights changed (and were refreshed), a pass that borrows
 * the unchanged layers from an earlier pass on the same input explains exactly as a fresh pass, computes only the
 * layers that depend on a changed one, and owns nothing it borrowed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { expect, test } from 'vitest';
import { Attributor, type ForwardPass } from '../src/index.js';
import { explain, vggLike } from './fixtures/vgg-like.js';
import { mulberry32, uniform, useBackend, values } from './helpers.js';

useBackend('cpu');

function explainReused(lrp: Attributor, base: ForwardPass, x: tf.Tensor, changed: string[]): void {
  const pass = lrp.forward(x, { reuse: { pass: base, changed } });
  explain(lrp, pass);
  pass.dispose();
}

function randomise(model: tfl.LayersModel, name: string): void {
  const layer = model.getLayer(name);
  const rng = mulberry32(name.length + 11);
  const fresh = layer.getWeights().map((w) => tf.tensor(Float32Array.from(uniform(rng, w.size)), w.shape));
  layer.setWeights(fresh);
  tf.dispose(fresh);
}

test('a pass reusing the unchanged layers equals a fresh pass, layer by layer from the top, and leaks nothing', () => {
  const model = vggLike();
  const x = tf.tensor4d(Float32Array.from(uniform(mulberry32(5), 2 * 128)), [2, 8, 8, 2]);
  const lrp = new Attributor(model, { composite: 'epsilon_plus_flat' });
  const base = lrp.forward(x);
  explain(lrp, base);
  const logits = values(base.prediction);
  const changed: string[] = [];
  for (const name of ['out', 'fc1', 'conv2', 'conv1']) {
    randomise(model, name);
    expect(lrp.refreshLayers(model, [name])).toBe(true);
    changed.push(name);
    // the first reusing pass derives the changed layer's rule parameters (kept by the attributor); a second one
    // then adds nothing: whatever it borrowed stays the base pass's
    explainReused(lrp, base, x, changed);
    const before = tf.memory().numTensors;
    const reused = lrp.forward(x, { reuse: { pass: base, changed } });
    // the layers below the changed ones are the base pass's own tensors
    const below = name === 'conv1' ? [] : ['conv1', 'relu1'];
    for (const id of below) expect(reused.output(id)).toBe(base.output(id));
    expect(reused.output('out')).not.toBe(base.output('out'));
    const fresh = new Attributor(model, { composite: 'epsilon_plus_flat' });
    const pass = fresh.forward(x);
    expect(values(reused.prediction)).toEqual(values(pass.prediction));
    expect(explain(lrp, reused)).toEqual(explain(fresh, pass));
    pass.dispose();
    fresh.dispose();
    reused.dispose();
    expect(tf.memory().numTensors).toBe(before);
  }
  // the base pass still holds the original model's activations (its rules of refreshed layers are stale)
  expect(values(base.prediction)).toEqual(logits);
  for (const id of ['conv1', 'relu1', 'pool']) expect(base.output(id).isDisposed).toBe(false);
  base.dispose();
  lrp.dispose();
  x.dispose();
  model.dispose();
});

test('reuse needs a pass of the same attributor on the same input tensor', () => {
  const model = vggLike();
  const x = tf.tensor4d(Float32Array.from(uniform(mulberry32(5), 128)), [1, 8, 8, 2]);
  const copy = tf.clone(x);
  const lrp = new Attributor(model);
  const other = new Attributor(model);
  const base = lrp.forward(x);
  expect(() => lrp.forward(copy, { reuse: { pass: base, changed: [] } })).toThrow(/same input tensor/);
  expect(() => other.forward(x, { reuse: { pass: base, changed: [] } })).toThrow(/same input tensor/);
  expect(() => lrp.forward(x, { reuse: { pass: base, changed: ['fc9'] } })).toThrow(/unknown layer 'fc9'/);
  base.dispose();
  expect(() => lrp.forward(x, { reuse: { pass: base, changed: [] } })).toThrow(/disposed/);
  tf.dispose([x, copy]);
  other.dispose();
  lrp.dispose();
  model.dispose();
});
