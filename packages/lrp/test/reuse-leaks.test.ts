/**
 * Rules prepared on borrowed layers (`forward(x, { reuse })`) belong to the pass that owns those layers'
 * activations: disposing the borrower leaves them to the owner, disposing the owner frees them, nothing is freed
 * twice, and numTensors is unchanged once both passes are disposed. A borrower whose owner was disposed first
 * refuses to run (CrpError 'disposed') and its dispose() still frees exactly what it computed itself.
 */
import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { Attributor } from '../src/index.js';
import { explain, vggLike } from './fixtures/vgg-like.js';
import { mulberry32, switchBackend, uniform } from './helpers.js';

describe.each(['wasm', 'cpu'] as const)('rules prepared on borrowed layers (%s)', (backend) => {
  beforeAll(async () => {
    await switchBackend(backend);
  });

  // 'fc1' is only recomputed, not changed, so every pass explains the same model and results are bit-equal
  const changed = ['fc1'];

  function setup() {
    const model = vggLike();
    const x = tf.tensor4d(Float32Array.from(uniform(mulberry32(5), 2 * 128)), [2, 8, 8, 2]);
    const lrp = new Attributor(model, { composite: 'epsilon_plus_flat' });
    // warm-up: the attributor derives and keeps the rules' modified weights once
    const warm = lrp.forward(x);
    const expected = explain(lrp, warm);
    warm.dispose();
    const done = () => {
      lrp.dispose();
      x.dispose();
      model.dispose();
    };
    return { lrp, x, expected, done };
  }

  test('owner never explained: disposing both passes leaves numTensors unchanged', () => {
    const { lrp, x, expected, done } = setup();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const base = lrp.forward(x);
      const reused = lrp.forward(x, { reuse: { pass: base, changed } });
      // prepares the rules of conv1..flat on the base pass's activations
      expect(explain(lrp, reused)).toEqual(expected);
      reused.dispose();
      base.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
    done();
  });

  test('disposing the borrower keeps the owner’s rules; disposing the owner frees them', () => {
    const { lrp, x, expected, done } = setup();
    const before = tf.memory().numTensors;
    const base = lrp.forward(x);
    const afterForward = tf.memory().numTensors;
    const reused = lrp.forward(x, { reuse: { pass: base, changed } });
    expect(explain(lrp, reused)).toEqual(expected);
    reused.dispose();
    // the rules prepared on conv1..flat stay with the base pass (and are no longer the borrower's to free) ...
    const held = tf.memory().numTensors;
    expect(held).toBeGreaterThan(afterForward);
    // ... and still work: explaining the base pass uses them, and prepares only fc1 and out anew
    expect(explain(lrp, base)).toEqual(expected);
    // a second borrower finds them prepared and adds nothing to the base pass
    const again = lrp.forward(x, { reuse: { pass: base, changed } });
    expect(explain(lrp, again)).toEqual(expected);
    again.dispose();
    base.dispose();
    expect(tf.memory().numTensors).toBe(before);
    done();
  });

  test('a borrower of a borrower stores the rules with the pass that owns the layers', () => {
    const { lrp, x, expected, done } = setup();
    const before = tf.memory().numTensors;
    const base = lrp.forward(x);
    const middle = lrp.forward(x, { reuse: { pass: base, changed } });
    const last = lrp.forward(x, { reuse: { pass: middle, changed: ['out'] } });
    // 'last' borrows conv1..flat (base's) and fc1 (middle's)
    expect(last.output('conv1')).toBe(base.output('conv1'));
    expect(last.output('fc1')).toBe(middle.output('fc1'));
    expect(explain(lrp, last)).toEqual(expected);
    last.dispose();
    // middle is disposed before the pass it borrowed from, as documented, and frees fc1's rule with it
    middle.dispose();
    expect(explain(lrp, base)).toEqual(expected);
    base.dispose();
    expect(tf.memory().numTensors).toBe(before);
    done();
  });

  test('owner disposed first: the borrower refuses to run and its dispose frees only its own tensors', () => {
    const { lrp, x, done } = setup();
    const before = tf.memory().numTensors;
    const base = lrp.forward(x);
    const reused = lrp.forward(x, { reuse: { pass: base, changed } });
    explain(lrp, reused);
    base.dispose();
    const run = () => explain(lrp, reused);
    expect(run).toThrow(/borrowed .*'conv1'.* was disposed; dispose a pass made with reuse before/);
    let caught: unknown;
    try {
      run();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CrpError);
    expect((caught as CrpError).code).toBe('disposed');
    expect(() => reused.output('conv1')).toThrow(/borrowed .* was disposed/);
    expect(() => lrp.forward(x, { reuse: { pass: reused, changed: ['out'] } })).toThrow(/disposed/);
    reused.dispose();
    reused.dispose(); // idempotent
    expect(tf.memory().numTensors).toBe(before);
    done();
  });
});
