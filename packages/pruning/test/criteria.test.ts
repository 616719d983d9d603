import { Attributor, graphFromLayersModel } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  activationScores,
  type ChannelScores,
  defaultScoredLayers,
  randomScores,
  rankChannels,
  relevanceScores,
  scoreChannels,
  selectLowest,
  taylorScores,
  topChannels,
  weightScores,
} from '../src/index.js';
import {
  expectClose,
  expectCrpError,
  objectiveAt,
  runGraph,
  tinyImages,
  tinyModel,
  useBackend,
  values,
} from './helpers.js';

useBackend('cpu');

const LAYERS = ['conv1', 'conv2', 'dense1'];
const CHANNELS: Record<string, number> = { conv1: 4, conv2: 6, dense1: 5 };
let model: tfl.LayersModel;
let x: tf.Tensor4D;
const labels = [0, 2, 1, 2, 0];

beforeAll(() => {
  model = tinyModel();
  x = tinyImages(5, 3);
});

/** Per channel sums of f(v) over the leading axes of a flat [rows..., C] array. */
function perChannel(v: ArrayLike<number>, c: number, f = Math.abs): number[] {
  const out = new Array(c).fill(0);
  for (let i = 0; i < v.length; i++) out[i % c] += f(v[i]!);
  return out;
}

function normalized(s: number[]): number[] {
  const t = s.reduce((a, b) => a + b, 0);
  return s.map((v) => v / t);
}

describe('criteria against hand computations', () => {
  it('weight: L1 norm of each kernel column, normalised per layer', () => {
    const raw = weightScores(model, { normalize: false });
    expect(Object.keys(raw.layers)).toEqual(LAYERS); // the output layer is not scored by default
    for (const l of LAYERS) {
      const k = model.getLayer(l).getWeights()[0]!;
      const expected = perChannel(values(k), CHANNELS[l]!);
      expectClose(raw.layers[l]!, expected, 1e-6);
    }
    const norm = weightScores(model);
    for (const l of LAYERS) {
      expect(norm.layers[l]!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      expectClose(norm.layers[l]!, normalized(raw.layers[l]!), 1e-6);
    }
  });

  it('activation: mean |output| over positions and samples', () => {
    const outs = runGraph(model, x);
    const scores = activationScores(model, { data: { images: x, labels }, normalize: false, batchSize: 2 });
    for (const l of LAYERS) {
      const v = outs[l]!;
      const c = CHANNELS[l]!;
      const expected = perChannel(v, c).map((s) => s / (v.length / c));
      expectClose(scores.layers[l]!, expected, 1e-5);
    }
  });

  it('taylor: |mean_positions(a * dL/da)| averaged over samples, gradient as tf.grad computes it', () => {
    const graph = graphFromLayersModel(model);
    for (const objective of ['loss', 'logit'] as const) {
      const scores = taylorScores(model, {
        data: { images: x, labels },
        normalize: false,
        objective,
        batchSize: 3,
      });
      for (const l of LAYERS) {
        // the objective as a function of layer l's output, run by lrp's forwardNode; tf.grad on cpu
        const a0 = tf.tensor(Float32Array.from(runGraph(model, x)[l]!), [
          5,
          ...(graph.node(l).outputShape as number[]),
        ]);
        const g = tf.grad(objectiveAt(graph, l, x, labels, objective))(a0);
        const ag = values(tf.mul(a0, g));
        const c = CHANNELS[l]!;
        const perSample = ag.length / 5;
        const expected = new Array(c).fill(0);
        for (let s = 0; s < 5; s++) {
          const means = perChannel(ag.subarray(s * perSample, (s + 1) * perSample), c, (v) => v).map(
            (v) => v / (perSample / c),
          );
          for (let k = 0; k < c; k++) expected[k] += Math.abs(means[k]!) / 5;
        }
        expectClose(scores.layers[l]!, expected, 1e-4);
        a0.dispose();
        g.dispose();
      }
    }
    graph.dispose();
  });

  it('relevance: sum |R| per channel over positions and samples, each sample explained for its label', () => {
    const scores = relevanceScores(model, { data: { images: x, labels }, normalize: false, batchSize: 2 });
    // the same with lrp's Attributor directly (EpsilonPlusFlat, batch-norm merge: the CondAttribution default)
    const lrp = new Attributor(model, { composite: 'epsilon_plus_flat' });
    const r = lrp.attribute(x, { target: labels, recordLayers: LAYERS });
    for (const l of LAYERS) {
      const expected = perChannel(values(r.relevances[l]!), CHANNELS[l]!);
      expect(Math.max(...expected)).toBeGreaterThan(1e-4);
      expectClose(scores.layers[l]!, expected, 1e-4);
    }
    for (const t of [r.relevance, r.prediction, ...Object.values(r.relevances)]) t.dispose();
    lrp.dispose();
    const normed = relevanceScores(model, { data: { images: x, labels }, layers: ['conv2'] });
    expect(Object.keys(normed.layers)).toEqual(['conv2']);
    expectClose(normed.layers.conv2!, normalized(scores.layers.conv2!), 1e-5);
  });

  it('leaves the classifier out by default, also behind a separate softmax', () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [4], units: 3, name: 'hidden', activation: 'relu' }));
    m.add(tfl.layers.dense({ units: 2, name: 'classifier' }));
    m.add(tfl.layers.activation({ activation: 'softmax', name: 'probs' }));
    expect(defaultScoredLayers(m)).toEqual(['hidden']);
    expect(defaultScoredLayers(model)).toEqual(LAYERS);
    m.dispose();
  });

  it('random: reproducible per seed, in [0, 1) before normalising', () => {
    const a = randomScores(model, { seed: 3, normalize: false });
    expect(randomScores(model, { seed: 3, normalize: false })).toEqual(a);
    expect(randomScores(model, { seed: 4, normalize: false })).not.toEqual(a);
    for (const s of Object.values(a.layers)) for (const v of s) expect(v >= 0 && v < 1).toBe(true);
    expect(scoreChannels(model, 'random', { seed: 3, normalize: false })).toEqual(a);
  });

  it('errors say what is valid', async () => {
    await expectCrpError(() => activationScores(model), 'invalid-argument', 'needs reference samples');
    await expectCrpError(
      () => weightScores(model, { layers: ['pool'] }),
      'unknown-layer',
      "'pool'",
      'conv1, conv2, dense1, dense2',
    );
    await expectCrpError(
      () => taylorScores(model, { data: { images: x, labels: [0, 1, 2, 3, 0] } }),
      'invalid-target',
      'valid: 0..2',
    );
    await expectCrpError(
      () => relevanceScores(model, { data: { images: x, labels: [0] } }),
      'invalid-argument',
      '5 images but 1 labels',
    );
    await expectCrpError(
      () => scoreChannels(model, 'magic' as never),
      'invalid-argument',
      'relevance, activation, weight, taylor, random',
    );
  });

  it('leaks no tensors', () => {
    const start = tf.memory().numTensors;
    for (const c of ['relevance', 'activation', 'weight', 'taylor', 'random'] as const) {
      scoreChannels(model, c, { data: { images: x, labels }, batchSize: 2 });
    }
    expect(tf.memory().numTensors).toBe(start);
  });
});

describe('ranking and selection', () => {
  const scores: ChannelScores = {
    criterion: 'hand',
    layers: { a: [0.4, 0.1, 0.3, 0.2], b: [0.05, 0.5, 0.1, 0.35, 0.0, 0.0] },
  };

  it('ranks ascending, ties in layer then channel order', () => {
    expect(rankChannels(scores).map((r) => `${r.layer}${r.channel}`)).toEqual([
      'b4',
      'b5',
      'b0',
      'a1',
      'b2',
      'a3',
      'a2',
      'b3',
      'a0',
      'b1',
    ]);
    expect(rankChannels(scores, 'layer').map((r) => `${r.layer}${r.channel}`)).toEqual([
      'a1',
      'a3',
      'a2',
      'a0',
      'b4',
      'b5',
      'b0',
      'b2',
      'b3',
      'b1',
    ]);
    expect(topChannels(scores, 'b', 2)).toEqual([1, 3]);
  });

  it('selects per layer and globally, keeping minKeep channels per layer', () => {
    // per layer: round(0.5 * 4) = 2 of a, round(0.5 * 6) = 3 of b
    expect(selectLowest(scores, 0.5).toJSON().layers).toEqual({ a: [1, 3], b: [0, 4, 5] });
    // global: round(0.4 * 10) = 4 lowest overall
    expect(selectLowest(scores, 0.4, { scope: 'global' }).toJSON().layers).toEqual({ b: [0, 4, 5], a: [1] });
    // everything: each layer keeps its best channel
    const all = selectLowest(scores, 1, { scope: 'global' });
    expect(all.toJSON().layers).toEqual({ b: [0, 2, 3, 4, 5], a: [1, 2, 3] });
    expect(selectLowest(scores, 1, { minKeep: 2 }).size).toBe(2 + 4);
    expect(selectLowest(scores, 0).isEmpty).toBe(true);
  });
});

describe('on the wasm backend', () => {
  it('relevance and Taylor scores equal the cpu ones', async () => {
    const data = { images: x, labels };
    const cpu = [relevanceScores(model, { data }), taylorScores(model, { data })];
    await tf.setBackend('wasm');
    try {
      const wasm = [relevanceScores(model, { data }), taylorScores(model, { data })];
      wasm.forEach((w, i) => {
        for (const l of LAYERS) expectClose(w.layers[l]!, cpu[i]!.layers[l]!, 1e-4);
      });
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
