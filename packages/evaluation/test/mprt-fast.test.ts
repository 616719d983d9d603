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
let x: tf.Tensor4D;
const labels = [2, 0, 1];
beforeAll(() => {
  models.smallCnn = smallCnn(5);
  models.withBatchNorm = withBatchNorm();
  x = images(3, 8, 8, 3, 4);
});
afterAll(() => {
  x.dispose();
  for (const m of Object.values(models)) m.dispose();
});

/** MPRT by its definition: per step a fresh copy of the user's model with that step's layers randomised (all
 * randomised so far when cascading, only this one when independent), explained without any session. */
async function straightforward(
  model: tfl.LayersModel,
  explainer: Explainer,
  order: 'top_down' | 'independent',
  similarity: 'spearman' | 'ssim',
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
  // Quantus: top_down from the output; independent in the model's order
  const weighted = model.layers.filter((l) => l.getWeights().length > 0);
  const layers = order === 'top_down' ? weighted.reverse() : weighted;
  for (const [k, layer] of layers.entries()) {
    const copy = await cloneModel(model);
    for (const randomised of order === 'top_down' ? layers.slice(0, k + 1) : [layer]) {
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
      for (const layerOrder of ['top_down', 'independent'] as const) {
        // SSIM's similarity is the other kernel of the same comparison: once per model and order
        const similarities =
          method === 'epsilon_plus_flat' ? (['spearman', 'ssim'] as const) : (['spearman'] as const);
        for (const similarity of similarities) {
          it(`${name}, ${method}, ${layerOrder}, ${similarity}: equal to a fresh model per step, no tensor leaked`, async () => {
            const model = models[name];
            const explainer = explainers[method]();
            expect(explainer.session).toBeDefined();
            await mprt({ model, x, labels }, explainer, { layerOrder, similarity });
            const before = tf.memory().numTensors;
            const fast = await mprt({ model, x, labels }, explainer, { layerOrder, similarity });
            expect(tf.memory().numTensors).toBe(before);
            const expected = await straightforward(model, explainer, layerOrder, similarity);
            expect(Object.keys(fast.layers!)).toEqual(Object.keys(expected));
            expect(fast.layers).toEqual(expected);
            // the randomisation changed the explanations: the comparison is not of equal constants
            expect(new Set(Object.values(expected).flat()).size).toBeGreaterThan(3);
          });
        }
      }
    }
  }

  it("leaves the user's model as it was, also when a randomisation fails midway", async () => {
    const model = models.withBatchNorm;
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
      mprt({ model, x, labels }, lrpExplainer('epsilon_plus_flat'), { randomiseLayer: failing }),
    ).rejects.toThrow(/randomiser failed/);
    expect(calls).toBe(3);
    expect(weights()).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    await mprt({ model, x, labels }, lrpExplainer('epsilon_plus_flat'));
    expect(weights()).toEqual(before);
  });
});
