/**
 * MPRT's fast path (one model copy whose layers are randomised in place, the LRP explainer's session reusing the
 * forward pass and rules below the randomised layer) gives exactly what the straightforward definition gives: a
 * fresh copy of the model per step with that step's layers randomised, explained from scratch. It leaks no
 * tensor and leaves the user's model as it was, also when it fails midway.
 */
import { cloneModel } from '@crp/pruning';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSamples } from '../src/data.js';
import { type Explainer, explainAs } from '../src/explainer.js';
import { gradientXInput, lrpExplainer, mprt, resetParameters, spearman, ssim } from '../src/index.js';
import { processAttributions } from '../src/normalise.js';
import { images, mulberry32, smallCnn, useBackend } from './helpers.js';

useBackend('cpu');

/** conv + batch norm (merged by the LRP canonizer, so the session rebuilds its attributor there) + ReLU, a
 * second conv, max pool, two dense layers: every kind of step MPRT takes on a VGG. */
function withBatchNorm(seed = 9): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, padding: 'same', name: 'conv1' }),
      tfl.layers.batchNormalization({ name: 'bn1' }),
      tfl.layers.reLU({ name: 'relu1' }),
      tfl.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', name: 'conv2' }),
      tfl.layers.reLU({ name: 'relu2' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 6, activation: 'relu', name: 'fc1' }),
      tfl.layers.dense({ units: 3, name: 'logits' }),
    ],
  });
  const next = mulberry32(seed);
  const names = model.weights.map((w) => w.originalName ?? w.name);
  model.setWeights(
    model.getWeights().map((w, i) =>
      tf.tensor(
        // a batch norm's variance is positive
        Float32Array.from({ length: w.size }, () =>
          /variance/.test(names[i]!) ? 0.5 + next() : next() - 0.3,
        ),
        w.shape,
      ),
    ),
  );
  return model;
}

const models: Record<'smallCnn' | 'withBatchNorm', tfl.LayersModel> = {} as never;
let xAll: tf.Tensor4D;
const labelsAll = [2, 0, 1];
beforeAll(() => {
  models.smallCnn = smallCnn(5);
  models.withBatchNorm = withBatchNorm();
  xAll = images(3, 8, 8, 3, 4);
});
afterAll(() => {
  xAll.dispose();
  for (const m of Object.values(models)) m.dispose();
});

/** MPRT by its definition: per step a fresh copy of the user's model with that step's layers randomised (all
 * randomised so far when cascading, only this one when independent), explained without any session. */
async function straightforward(
  model: tfl.LayersModel,
  explainer: Explainer,
  order: 'top_down' | 'bottom_up' | 'independent',
  similarity: 'spearman' | 'ssim',
  x: tf.Tensor4D = xAll,
  labels: readonly number[] = labelsAll,
): Promise<Record<string, number[]>> {
  const plain: Explainer = (m, xs, t) => explainer(m, xs, t);
  const s = await readSamples(x);
  const sim = similarity === 'spearman' ? spearman : ssim;
  const explainOn = async (m: tfl.LayersModel) =>
    processAttributions(
      await explainAs(plain, m, x, labels, s, 'explanation'),
      {},
      { normalise: true, abs: true },
    );
  const a = await explainOn(model);
  const compare = (b: { values: Float32Array[] }) => a.values.map((v, i) => sim(v, b.values[i]!));
  const out: Record<string, number[]> = { original: compare(a) };
  // Quantus: top_down from the output; bottom_up and independent in the model's order
  const weighted = model.layers.filter((l) => l.getWeights().length > 0);
  const layers = order === 'top_down' ? weighted.reverse() : weighted;
  for (const [k, layer] of layers.entries()) {
    const copy = await cloneModel(model);
    for (const randomised of order === 'independent' ? [layer] : layers.slice(0, k + 1)) {
      const target = copy.getLayer(randomised.name);
      const fresh = resetParameters(target, 42);
      target.setWeights(fresh);
      tf.dispose(fresh);
    }
    out[layer.name] = compare(await explainOn(copy));
    copy.dispose();
  }
  return out;
}

describe('MPRT fast path', () => {
  const explainers = {
    epsilon_plus_flat: () => lrpExplainer('epsilon_plus_flat'),
    gradient_x_input: () => gradientXInput(),
  };
  for (const name of ['smallCnn', 'withBatchNorm'] as const) {
    for (const method of ['epsilon_plus_flat', 'gradient_x_input'] as const) {
      for (const layerOrder of ['top_down', 'bottom_up', 'independent'] as const) {
        // SSIM's similarity is the other kernel of the same comparison: once per model and order
        const similarities =
          method === 'epsilon_plus_flat' ? (['spearman', 'ssim'] as const) : (['spearman'] as const);
        for (const similarity of similarities) {
          it(`${name}, ${method}, ${layerOrder}, ${similarity}: equal to a fresh model per step, no tensor leaked`, async () => {
            const model = models[name];
            const { explainer, cascaded } = watched(explainers[method]());
            await mprt({ model, x: xAll, labels: labelsAll }, explainer, { layerOrder, similarity });
            const before = tf.memory().numTensors;
            const fast = await mprt({ model, x: xAll, labels: labelsAll }, explainer, {
              layerOrder,
              similarity,
            });
            expect(tf.memory().numTensors).toBe(before);
            // a batch norm merged into its conv takes the step-by-step path
            expect(cascaded()).toBe(name === 'smallCnn');
            const expected = await straightforward(model, explainers[method](), layerOrder, similarity);
            expect(Object.keys(fast.layers!)).toEqual(Object.keys(expected));
            expect(fast.layers).toEqual(expected);
            // the randomisation changed the explanations: the comparison is not of equal constants
            expect(new Set(Object.values(expected).flat()).size).toBeGreaterThan(3);
          });
        }
      }
    }
  }

  // smallCnn: the batched cascade randomises the user's model itself and puts it back; withBatchNorm: a copy
  it.each(['smallCnn', 'withBatchNorm'] as const)(
    "%s: leaves the user's model as it was, also when a randomisation fails midway",
    async (name) => {
      const model = models[name];
      const weights = () => model.getWeights().map((w) => Array.from(w.dataSync()));
      const before = weights();
      const tensors = tf.memory().numTensors;
      let calls = 0;
      const failing = (layer: tfl.layers.Layer, seed: number) => {
        calls += 1;
        if (calls === 3) throw new Error('randomiser failed');
        return resetParameters(layer, seed);
      };
      await expect(
        mprt({ model, x: xAll, labels: labelsAll }, lrpExplainer('epsilon_plus_flat'), {
          randomiseLayer: failing,
        }),
      ).rejects.toThrow(/randomiser failed/);
      expect(calls).toBe(3);
      expect(weights()).toEqual(before);
      expect(tf.memory().numTensors).toBe(tensors);
      await mprt({ model, x: xAll, labels: labelsAll }, lrpExplainer('epsilon_plus_flat'));
      expect(weights()).toEqual(before);
    },
  );
});

/** A VGG-like chain: convs, ReLUs, both pools, two dense layers (every kind of layer the cascade passes). */
function vggLike(seed = 12): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, padding: 'same', name: 'c1' }),
      tfl.layers.reLU({ name: 'r1' }),
      tfl.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', name: 'c2' }),
      tfl.layers.reLU({ name: 'r2' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'p1' }),
      tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', name: 'c3' }),
      tfl.layers.reLU({ name: 'r3' }),
      tfl.layers.averagePooling2d({ poolSize: 2, name: 'p2' }),
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

/** A chain of `n` small dense layers: more steps than the cascade keeps as rows at once. */
function deepDense(n: number, seed = 13): tfl.LayersModel {
  const layers: tfl.layers.Layer[] = [tfl.layers.flatten({ inputShape: [2, 2, 1], name: 'flat' })];
  for (let i = 0; i < n; i++) layers.push(tfl.layers.dense({ units: 4, activation: 'relu', name: `d${i}` }));
  layers.push(tfl.layers.dense({ units: 3, name: 'logits' }));
  const model = tfl.sequential({ layers });
  const next = mulberry32(seed);
  model.setWeights(
    model.getWeights().map((w) =>
      tf.tensor(
        Float32Array.from({ length: w.size }, () => next() - 0.3),
        w.shape,
      ),
    ),
  );
  return model;
}

/** The explainer, recording whether its session's cascade took MPRT's steps. */
function watched(explainer: Explainer): { explainer: Explainer; cascaded: () => boolean | undefined } {
  let used: boolean | undefined;
  const open = explainer.session!;
  explainer.session = (model) => {
    const session = open(model);
    const cascade = session.cascade!.bind(session);
    session.cascade = (...args) => {
      const out = cascade(...args);
      used = out !== undefined;
      return out;
    };
    return session;
  };
  return { explainer, cascaded: () => used };
}

describe('MPRT cascades in batches', () => {
  const one = () => tf.slice(xAll, 1, 1) as tf.Tensor4D;
  const cases = [
    ['smallCnn', () => smallCnn(5)],
    ['vggLike', () => vggLike()],
  ] as const;
  const orders = ['top_down', 'bottom_up', 'independent'] as const;
  for (const [name, make] of cases) {
    for (const layerOrder of orders) {
      for (const samples of [1, 3]) {
        for (const method of ['epsilon_plus_flat', 'gradient_x_input'] as const) {
          // SSIM's similarity is the other comparison of the same explanations: once per model and order
          for (const similarity of method === 'epsilon_plus_flat'
            ? (['spearman', 'ssim'] as const)
            : (['spearman'] as const)) {
            it(`${name}, ${layerOrder}, ${samples} sample(s), ${method}, ${similarity}: batched, equal to a fresh model per step, no tensor leaked`, async () => {
              const model = make();
              const x = samples === 1 ? one() : xAll.clone();
              const labels = samples === 1 ? [2] : labelsAll;
              const make2 = () => (method === 'epsilon_plus_flat' ? lrpExplainer(method) : gradientXInput());
              const { explainer, cascaded } = watched(make2());
              await mprt({ model, x, labels }, explainer, { similarity, layerOrder });
              const before = tf.memory().numTensors;
              const fast = await mprt({ model, x, labels }, explainer, { similarity, layerOrder });
              expect(tf.memory().numTensors).toBe(before);
              expect(cascaded()).toBe(true);
              const expected = await straightforward(model, make2(), layerOrder, similarity, x, labels);
              expect(Object.keys(fast.layers!)).toEqual(Object.keys(expected));
              expect(fast.layers).toEqual(expected);
              expect(new Set(Object.values(expected).flat()).size).toBeGreaterThan(3);
              x.dispose();
              model.dispose();
            });
          }
        }
      }
    }
  }

  for (const layerOrder of orders) {
    it(`${layerOrder}: explains only the steps asked for (explainAtMost, skipLayers), with the same values`, async () => {
      const model = vggLike();
      const x = one();
      const { explainer, cascaded } = watched(lrpExplainer('epsilon_plus_flat'));
      const all = await straightforward(
        model,
        lrpExplainer('epsilon_plus_flat'),
        layerOrder,
        'spearman',
        x,
        [1],
      );
      const some = await mprt({ model, x, labels: [1] }, explainer, { explainAtMost: 2, layerOrder });
      expect(cascaded()).toBe(true);
      // 5 weighted layers, 2 explanations: after the 3rd and the 5th randomisation (in Quantus's order)
      const [third, fifth] = layerOrder === 'top_down' ? ['c3', 'c1'] : ['c3', 'logits'];
      expect(some.layers).toEqual({ original: all.original, [third]: all[third], [fifth]: all[fifth] });
      const last = await mprt({ model, x, labels: [1] }, explainer, { skipLayers: true, layerOrder });
      expect(last.layers).toEqual({ original: all.original, [fifth]: all[fifth] });
      x.dispose();
      model.dispose();
    });

    it(`${layerOrder}: keeps at most rowsThatFit rows: a chain of 70 layers, 3 samples, gives the step-by-step values`, async () => {
      const model = deepDense(70);
      const x = tf.tensor4d([0.3, -0.8, 0.5, 0.9, -0.2, 0.7, 0.1, -0.6, 0.4, 0.2, -0.9, 0.8], [3, 2, 2, 1]);
      const { explainer, cascaded } = watched(gradientXInput());
      const before = tf.memory().numTensors;
      const progress: number[] = [];
      const fast = await mprt(
        { model, x, labels: [0, 2, 1] },
        explainer,
        { similarity: 'spearman', layerOrder },
        { onProgress: (p) => progress.push(p.done) },
      );
      expect(tf.memory().numTensors).toBe(before);
      expect(cascaded()).toBe(true);
      expect(progress).toEqual(Array.from({ length: 71 }, (_, k) => k + 1));
      const expected = await straightforward(model, gradientXInput(), layerOrder, 'spearman', x, [0, 2, 1]);
      expect(Object.keys(fast.layers!)).toHaveLength(72);
      expect(fast.layers).toEqual(expected);
      x.dispose();
      model.dispose();
    });
  }

  it('falls back to step by step where a batch norm is merged into its conv, with the same values', async () => {
    const model = models.withBatchNorm;
    const x = one();
    const { explainer, cascaded } = watched(lrpExplainer('epsilon_plus_flat'));
    const fast = await mprt({ model, x, labels: [0] }, explainer);
    expect(cascaded()).toBe(false);
    expect(fast.layers).toEqual(
      await straightforward(model, lrpExplainer('epsilon_plus_flat'), 'top_down', 'spearman', x, [0]),
    );
    x.dispose();
  });
});

describe('resetParameters', () => {
  it("draws mulberry32(seed + 1) in order over kernel and bias, uniform in +-1/sqrt(fan_in) (PyTorch's bound)", () => {
    const model = vggLike();
    for (const [name, fanIn] of [
      ['c2', 3 * 3 * 4],
      ['fc1', 6],
    ] as const) {
      const layer = model.getLayer(name);
      const fresh = resetParameters(layer, 42);
      const next = mulberry32(43);
      const bound = 1 / Math.sqrt(fanIn);
      for (const t of fresh) {
        const expected = Float32Array.from({ length: t.size }, () => (2 * next() - 1) * bound);
        expect(t.dataSync()).toEqual(expected);
      }
      expect(fresh.map((t) => t.shape)).toEqual(layer.getWeights().map((w) => w.shape));
      tf.dispose(fresh);
    }
    model.dispose();
  });
});
