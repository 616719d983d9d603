import { mulberry32 } from '@crp/common';
import { ChannelConcept, CondAttribution, disposeCondResult } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LabelledBatch, maximization } from '../src/index.js';

let model: tfl.Sequential;
let crp: CondAttribution;
let images: tf.Tensor4D;
const labels = [0, 1, 2, 1, 0, 2, 2, 1, 0, 1, 1];

beforeAll(async () => {
  await tf.setBackend('wasm');
  const rand = mulberry32(42);
  model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, padding: 'same', name: 'c1' }),
      tfl.layers.reLU({ name: 'r1' }),
      tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', name: 'c2' }),
      tfl.layers.reLU({ name: 'r2' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'p' }),
      tfl.layers.flatten({ name: 'f' }),
      tfl.layers.dense({ units: 3, name: 'out' }),
    ],
  });
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    layer.setWeights(
      ws.map((w) =>
        tf.tensor(
          Float32Array.from({ length: w.size }, () => rand() * 2 - 1),
          w.shape,
        ),
      ),
    );
  }
  images = tf.tensor4d(
    Float32Array.from({ length: labels.length * 8 * 8 * 3 }, () => rand() * 2 - 1),
    [labels.length, 8, 8, 3],
  );
  crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
});

afterAll(() => {
  crp.dispose();
  model.dispose();
  images.dispose();
});

/** Scores computed directly: each sample explained for its label, channel relevance and activation sums. */
function directScores(absNorm: boolean): { relevance: number[][]; activation: number[][] } {
  const concept = new ChannelConcept();
  const r = crp.run(
    images,
    labels.map((y) => ({ y: [y] })),
    { recordLayers: ['c2'], recordActivations: ['c2'] },
  );
  const rel = concept.attribute(r.relevances.c2!, { absNorm });
  const act = concept.attribute(r.activations.c2!, { absNorm });
  const out = { relevance: rel.arraySync() as number[][], activation: act.arraySync() as number[][] };
  rel.dispose();
  act.dispose();
  disposeCondResult(r);
  return out;
}

describe('relevance and activation maximisation', () => {
  it('ranks every channel by the directly computed scores', async () => {
    const direct = directScores(true);
    const result = await maximization(
      crp,
      { images, labels },
      { layers: ['c2'], topK: 4, batchSize: 3, keepScores: true },
    );
    for (const kind of ['relevance', 'activation'] as const) {
      const table = result[kind].c2!;
      expect(table.samples).toBe(labels.length);
      expect(table.channels).toBe(6);
      expect(table.mapSize).toEqual([8, 8]);
      for (let ch = 0; ch < 6; ch++) {
        const expected = direct[kind]
          .map((row, sample) => ({ sample, score: row[ch]! }))
          .sort((a, b) => b.score - a.score || a.sample - b.sample)
          .slice(0, 4);
        const top = table.top[ch]!;
        expect(top.map((t) => t.sample)).toEqual(expected.map((e) => e.sample));
        top.forEach((t, i) => {
          expect(t.score).toBeCloseTo(expected[i]!.score, 5);
        });
      }
      expect(
        Array.from(table.scores!)
          .slice(0, 6)
          .map((v) => Number(v.toFixed(5))),
      ).toEqual(direct[kind][0]!.map((v) => Number(v.toFixed(5))));
    }
  });

  it('gives the same ranking for any batch size and for an async iterable source', async () => {
    const once = await maximization(crp, { images, labels }, { layers: ['c2'], topK: 5, batchSize: 64 });
    async function* batches(): AsyncGenerator<LabelledBatch> {
      for (let start = 0; start < labels.length; start += 4) {
        const size = Math.min(4, labels.length - start);
        yield { images: tf.slice(images, start, size), labels: labels.slice(start, start + size) };
      }
    }
    const streamed = await maximization(crp, batches(), { layers: ['c2'], topK: 5, batchSize: 2 });
    expect(streamed.relevance.c2!.top.map((l) => l.map((t) => t.sample))).toEqual(
      once.relevance.c2!.top.map((l) => l.map((t) => t.sample)),
    );
  });

  it('max target uses the largest position and its argmax', async () => {
    const result = await maximization(
      crp,
      { images, labels },
      { layers: ['c2'], maxTarget: 'max', absNorm: false, topK: 1 },
    );
    const best = result.activation.c2!.top[0]![0]!;
    const act = model.predict(images) as tf.Tensor; // touch the model to be sure it is usable
    act.dispose();
    const one = tf.slice(images, best.sample, 1);
    const r = crp.run(one, [{ y: [labels[best.sample]!] }], { recordActivations: ['c2'] });
    one.dispose();
    const map = Array.from(
      tf.tidy(() => tf.reshape(tf.slice(r.activations.c2!, [0, 0, 0, 0], [1, 8, 8, 1]), [64])).dataSync(),
    );
    disposeCondResult(r);
    expect(best.score).toBeCloseTo(Math.max(...map), 5);
    expect(best.argmaxPosition).toBe(map.indexOf(Math.max(...map)));
  });

  it('rejects bad options with the valid values', async () => {
    await expect(maximization(crp, { images, labels }, { layers: [] })).rejects.toThrow(/at least one layer/);
    await expect(maximization(crp, { images, labels }, { layers: ['nope'] })).rejects.toThrow(/c1, r1, c2/);
    await expect(
      maximization(crp, { images, labels }, { layers: ['c2'], maxTarget: 'mean' as never }),
    ).rejects.toThrow(/'sum' or 'max'/);
  });

  it('leaks no tensors', async () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++)
      await maximization(crp, { images, labels }, { layers: ['c1', 'c2'], batchSize: 4 });
    expect(tf.memory().numTensors).toBe(before);
  });
});
