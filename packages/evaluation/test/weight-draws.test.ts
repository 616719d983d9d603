/**
 * MPRT's draws in a worker thread: the worker's values are the in-line draws to the last bit, whichever of the
 * two draws a layer, and MPRT gives the same scores with and without the worker, leaking no tensor.
 */

import { switchBackend } from '@crp/testing';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, describe, expect, it } from 'vitest';
import { lrpExplainer, mprt, resetParameters } from '../src/index.js';
import { closeDrawWorker, type DrawJob, fillDraws, startDraws } from '../src/weight-draws.js';
import { images, mulberry32, smallCnn, useBackend } from './helpers.js';

useBackend('cpu');
afterAll(() => closeDrawWorker());

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function inLine(job: DrawJob, seed: number): Float32Array[] {
  const out = job.sizes.map((n) => new Float32Array(n));
  fillDraws(out, job.bound, seed);
  return out;
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(done()).toBe(true);
}

const jobs: DrawJob[] = [
  { sizes: [27 * 4, 4], bound: 1 / Math.sqrt(27) },
  { sizes: [5000, 7], bound: 0.01 },
  { sizes: [3], bound: 1 },
];

describe('draws in a worker', () => {
  it('fills kernel then bias from mulberry32(seed + 1), uniform in +-bound', () => {
    const [kernel, bias] = inLine({ sizes: [3, 2], bound: 0.5 }, 6);
    const next = mulberry32(7);
    const expected = Array.from({ length: 5 }, () => Math.fround((2 * next() - 1) * 0.5));
    expect([...kernel!, ...bias!]).toEqual(expected);
  });

  it("the worker's values are the in-line ones to the last bit", async () => {
    const pending = await startDraws(jobs, 42);
    expect(pending).toBeDefined();
    await until(() => pending!.drawn());
    for (const [j, job] of jobs.entries()) {
      const got = pending!.take(j);
      // shared memory: the worker wrote them
      expect(got[0]!.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(got.map(bits)).toEqual(inLine(job, 42).map(bits));
    }
  });

  it('a job taken before the worker reaches it is drawn in-line, with the same values', async () => {
    const many: DrawJob[] = [{ sizes: [400_000], bound: 0.1 }, ...jobs];
    const pending = await startDraws(many, 3);
    // taken at once, last first: the worker is still on the first job (or has not started)
    for (let j = many.length - 1; j >= 0; j--)
      expect(pending!.take(j).map(bits)).toEqual(inLine(many[j]!, 3).map(bits));
  });

  it("a released buffer takes the next call's values; one still in use is not shared", async () => {
    closeDrawWorker();
    const first = await startDraws(jobs, 42);
    await until(() => first!.drawn());
    const buffer = first!.take(1)[0]!.buffer;
    first!.release();
    // smaller than the first call's jobs: the same buffer
    const other: DrawJob[] = [
      { sizes: [900, 3], bound: 0.2 },
      { sizes: [4000], bound: 0.05 },
    ];
    const second = await startDraws(other, 9);
    // the pooled buffer is second's now: a call meanwhile gets a buffer of its own
    const third = await startDraws(jobs, 42);
    await until(() => second!.drawn() && third!.drawn());
    expect(second!.take(1)[0]!.buffer).toBe(buffer);
    expect(third!.take(1)[0]!.buffer).not.toBe(buffer);
    for (const [j, job] of other.entries())
      expect(second!.take(j).map(bits)).toEqual(inLine(job, 9).map(bits));
    for (const [j, job] of jobs.entries())
      expect(third!.take(j).map(bits)).toEqual(inLine(job, 42).map(bits));
    second!.release();
    third!.release();
  });

  it('closeDrawWorker stops the thread; the next call starts another', async () => {
    closeDrawWorker();
    const pending = await startDraws(jobs, 5);
    await until(() => pending!.drawn());
    expect(pending!.take(1).map(bits)).toEqual(inLine(jobs[1]!, 5).map(bits));
  });
});

/** conv, ReLU, max pool, two dense layers: the batched top_down cascade takes its layers in model order. */
function chain(seed: number): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, padding: 'same', name: 'c1' }),
      tfl.layers.reLU({ name: 'r1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'p1' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 7, activation: 'relu', name: 'fc1' }),
      tfl.layers.dense({ units: 3, name: 'logits' }),
    ],
  });
  const next = mulberry32(seed);
  model.setWeights(
    model.getWeights().map((w) =>
      tf.tensor(
        Float32Array.from({ length: w.size }, () => next() - 0.4),
        w.shape,
      ),
    ),
  );
  return model;
}

describe('MPRT with the draws in a worker', () => {
  it('calls at the same time (one takes the pooled buffer, the other its own) give the in-line values', async () => {
    const models = [smallCnn(5), chain(8), smallCnn(6)];
    const x = images(2, 8, 8, 3, 4);
    const labels = [2, 0];
    const explainer = lrpExplainer('epsilon_plus_flat');
    const inline = [];
    for (const model of models)
      inline.push(await mprt({ model, x, labels }, explainer, { drawInWorker: false }));
    for (let i = 0; i < 2; i++) {
      const together = await Promise.all(models.map((model) => mprt({ model, x, labels }, explainer)));
      expect(together.map((r) => r.layers)).toEqual(inline.map((r) => r.layers));
    }
    x.dispose();
    for (const m of models) m.dispose();
  });

  for (const layerOrder of ['top_down', 'bottom_up', 'independent'] as const) {
    it(`${layerOrder}: the same scores and weights as in-line, no tensor leaked, the model unchanged`, async () => {
      for (const model of [smallCnn(5), chain(8)]) {
        const x = images(2, 8, 8, 3, 4);
        const labels = [2, 0];
        const explainer = lrpExplainer('epsilon_plus_flat');
        const weights = () => model.getWeights().map((w) => bits(w.dataSync() as Float32Array));
        const original = weights();
        const inline = await mprt({ model, x, labels }, explainer, { layerOrder, drawInWorker: false });
        // twice: the first call may find the worker starting (then it draws in-line), the second finds it up
        for (let i = 0; i < 2; i++) {
          const before = tf.memory().numTensors;
          const worker = await mprt({ model, x, labels }, explainer, { layerOrder });
          expect(tf.memory().numTensors).toBe(before);
          expect(worker.layers).toEqual(inline.layers);
          expect(weights()).toEqual(original);
        }
        expect(new Set(Object.values(inline.layers!).flat()).size).toBeGreaterThan(3);
        // a given randomiser takes the layers in Quantus's order, all before the tops (no anyOrder): the same
        const given = await mprt({ model, x, labels }, explainer, {
          layerOrder,
          randomiseLayer: resetParameters,
        });
        expect(given.layers).toEqual(inline.layers);
        // the worker's weights for each layer are resetParameters'
        const weighted = model.layers.filter((l) => l.getWeights().length > 0);
        const pending = await startDraws(
          weighted.map((l) => ({
            sizes: l.weights.map((w) => w.shape.reduce((a, b) => a! * b!, 1)!),
            bound: 1 / Math.sqrt(l.weights[0]!.shape.slice(0, -1).reduce((a, b) => a! * b!, 1)!),
          })),
          42,
        );
        await until(() => pending!.drawn());
        for (const [j, layer] of weighted.entries()) {
          const expected = resetParameters(layer, 42);
          expect(pending!.take(j).map(bits)).toEqual(expected.map((t) => bits(t.dataSync() as Float32Array)));
          tf.dispose(expected);
        }
        x.dispose();
        model.dispose();
      }
    });
  }
});

describe('resetParameters on wasm (reused arrays: the backend copies the values at once)', () => {
  it("each call's tensors keep their values after later calls, and equal the fresh arrays' values", async () => {
    const model = chain(8);
    const layers = model.layers.filter((l) => l.getWeights().length > 0);
    // on cpu: fresh arrays, kept by the backend
    const onCpu = layers.map((l) => resetParameters(l, 42));
    const expected = onCpu.map((ts) => ts.map((t) => bits(t.dataSync() as Float32Array)));
    tf.dispose(onCpu);
    await switchBackend('wasm');
    try {
      const before = tf.memory().numTensors;
      const drawn = layers.map((l) => resetParameters(l, 42));
      // later draws reuse the same arrays
      tf.dispose(layers.map((l) => resetParameters(l, 3)));
      expect(drawn.map((ts) => ts.map((t) => bits(t.dataSync() as Float32Array)))).toEqual(expected);
      tf.dispose(drawn);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      await switchBackend('cpu');
      model.dispose();
    }
  });
});
