/**
 * The explorer's bookkeeping of replaced objects: a retired tensor stays alive while an action that ran when it was
 * retired still runs (that action may hold it), and is disposed the moment the last of those ends, while actions
 * started later go on running: a page that is never idle holds no more than its running actions may use.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { RetiredObjects } from '../src/retired.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('RetiredObjects', () => {
  it('disposes a retired tensor once the actions running at its retirement have ended, while a later one runs', () => {
    const level = tf.memory().numTensors;
    const r = new RetiredObjects();
    const a = r.begin();
    const x = tf.tensor1d([1, 2, 3]);
    const b = r.begin();
    // b replaces x while a (which may hold x) still runs
    r.retire(x);
    const c = r.begin();
    r.end(b);
    // a still runs and may read x
    expect(x.isDisposed).toBe(false);
    expect(x.dataSync()).toEqual(new Float32Array([1, 2, 3]));
    r.end(a);
    // c began after x was replaced, so it never had it: x is gone while c runs
    expect(r.busy).toBe(true);
    expect(x.isDisposed).toBe(true);
    expect(r.pending).toBe(0);
    expect(tf.memory().numTensors).toBe(level);
    r.end(c);
    expect(r.busy).toBe(false);
  });

  it('holds at most what the running actions may use on a page that is never idle', () => {
    const level = tf.memory().numTensors;
    const r = new RetiredObjects();
    // each action starts before the one before it ends and replaces that one's input, 50 times over
    let running = r.begin();
    let input = tf.scalar(0);
    let maxPending = 0;
    for (let k = 1; k <= 50; k++) {
      const next = r.begin();
      r.retire(input);
      input = tf.scalar(k);
      r.end(running);
      running = next;
      maxPending = Math.max(maxPending, r.pending);
      // the running action's input, and the one it replaced (it ran when that was retired)
      expect(tf.memory().numTensors).toBe(level + 2);
    }
    expect(maxPending).toBe(1);
    expect(r.busy).toBe(true);
    r.end(running);
    expect(r.pending).toBe(0);
    input.dispose();
    expect(tf.memory().numTensors).toBe(level);
  });

  it('disposes at once when no action runs, in the order retired, and each object once', () => {
    const r = new RetiredObjects();
    const order: string[] = [];
    const object = (name: string) => ({ dispose: () => order.push(name) });
    r.retire(object('idle'));
    expect(order).toEqual(['idle']);
    const a = r.begin();
    r.retire(object('explainer'), object('model'));
    const b = r.begin();
    r.retire(object('input'));
    expect(r.pending).toBe(3);
    r.end(a);
    // input waits for b as well
    expect(order).toEqual(['idle', 'explainer', 'model']);
    r.end(b);
    expect(order).toEqual(['idle', 'explainer', 'model', 'input']);
    expect(r.pending).toBe(0);
  });

  it('says which actions run when asked to end one that does not', () => {
    const r = new RetiredObjects();
    const a = r.begin();
    r.end(a);
    expect(() => r.end(a)).toThrow('action 0 is not running (running: none)');
  });
});

describe('RetiredObjects, when retiring goes wrong', () => {
  it('disposes an object retired twice once, after the actions of both retirements', () => {
    const r = new RetiredObjects();
    let disposed = 0;
    const model = {
      dispose: () => {
        // a LayersModel throws on a second dispose
        if (++disposed > 1) throw new Error('already disposed');
      },
    };
    const a = r.begin();
    r.retire(model, model);
    const b = r.begin();
    r.retire(model);
    expect(r.pending).toBe(1);
    r.end(a);
    // b ran at the second retirement and may hold it
    expect(disposed).toBe(0);
    r.end(b);
    expect(disposed).toBe(1);
    // and once disposed, not again
    r.retire(model);
    expect(disposed).toBe(1);
  });

  it('disposes the others when one dispose throws, then throws its error, with nothing left waiting', () => {
    const r = new RetiredObjects();
    const x = tf.tensor1d([1, 2]);
    const y = tf.tensor1d([3, 4]);
    const brokenObject = () => ({
      dispose: () => {
        throw new Error('dispose failed');
      },
    });
    const broken = brokenObject();
    const a = r.begin();
    r.retire(x, broken, y);
    expect(() => r.end(a)).toThrow('dispose failed');
    expect(x.isDisposed).toBe(true);
    expect(y.isDisposed).toBe(true);
    expect(r.pending).toBe(0);
    expect(r.busy).toBe(false);
    // the same when nothing runs
    const z = tf.scalar(1);
    expect(() => r.retire(brokenObject(), z)).toThrow('dispose failed');
    expect(z.isDisposed).toBe(true);
  });
});
