/**
 * What the metrics promise beyond their numbers: results independent of the forward-pass batch size, typed
 * errors for bad input, no leaked tensors, the model left as it was, progress with an ETA, and the numerical
 * kernels against values computed by hand.
 */

import type { Progress } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  auc,
  conceptDeletion,
  evaluate,
  gradientXInput,
  lrpExplainer,
  maxSensitivity,
  metricByName,
  mprt,
  pearson,
  pixelFlipping,
  randomLogit,
  ranks,
  regionPerturbation,
  relevanceMassAccuracy,
  spearman,
  ssim,
} from '../src/index.js';
import { expectCrpErrorAsync, linearModel, useBackend, useSmallCnnCase } from './helpers.js';

useBackend('cpu');

const small = useSmallCnnCase();
const { labels } = small;

describe('numerical kernels', () => {
  it('Pearson, Spearman with tied ranks, the trapezoid, SSIM', () => {
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    expect(pearson([1, 1, 1], [1, 2, 3])).toBeNaN();
    expect(Array.from(ranks([10, 20, 20, 5]))).toEqual([2, 3.5, 3.5, 1]);
    expect(spearman([1, 2, 3, 4], [1, 4, 9, 16])).toBeCloseTo(1, 12);
    expect(auc([1, 3, 2])).toBe(4.5);
    const s = Array.from({ length: 20 }, (_, i) => Math.sin(i));
    expect(ssim(s, s)).toBeCloseTo(1, 6);
    expect(
      ssim(
        s,
        s.map((v, i) => v + (i % 3) * 0.5),
      ),
    ).toBeLessThan(0.99);
  });
});

describe('explainers', () => {
  it('gradient x input of a linear model is w * x (from the engine, no tf.grad)', async () => {
    const w = [1, -2, 0.5, 3];
    const lin = linearModel(2, 2, 1, w, [0, 0, 0, 0]);
    const xs = tf.tensor4d([1, 2, -1, 0.5], [1, 2, 2, 1]);
    const a = await gradientXInput()(lin, xs, [0]);
    expect(Array.from(a.dataSync())).toEqual([1, -4, -0.5, 1.5]);
    tf.dispose([a, xs]);
    lin.dispose();
  });
});

describe('batched forward passes', () => {
  it('PixelFlipping and RegionPerturbation give the same numbers for any batch size', async () => {
    const input = small.input;
    const one = await pixelFlipping(input, { featuresInStep: 16 }, { batchSize: 1 });
    const many = await pixelFlipping(input, { featuresInStep: 16 }, { batchSize: 7 });
    expect(many.curves).toEqual(one.curves);
    const r1 = await regionPerturbation(input, { patchSize: 3 }, { batchSize: 1 });
    const r9 = await regionPerturbation(input, { patchSize: 3 }, { batchSize: 9 });
    expect(r9.curves).toEqual(r1.curves);
  });

  it('reports progress with done, total and an ETA', async () => {
    const events: Progress[] = [];
    await pixelFlipping(
      small.input,
      { featuresInStep: 32 },
      {
        batchSize: 4,
        onProgress: (p) => events.push(p),
      },
    );
    // 192 features / 32 = 6 steps x 5 samples = 30 inputs in batches of 4
    expect(events.map((e) => e.done)).toEqual([4, 8, 12, 16, 20, 24, 28, 30]);
    expect(events.every((e) => e.total === 30 && e.unit === 'inputs' && e.phase === 'PixelFlipping')).toBe(
      true,
    );
    expect(events[0]!.etaMs).toBeGreaterThanOrEqual(0);
  });

  it('leaks no tensor', async () => {
    const input = {
      model: small.model,
      x: small.x,
      labels,
      explanation: small.heatmap,
      mask: tf.ones([5, 8, 8]),
    };
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      await evaluate(
        {
          model: small.model,
          x: small.x,
          labels,
          explanations: { lrp: small.heatmap },
          explainers: { gxi: gradientXInput() },
          mask: input.mask,
        },
        [{ name: 'PixelFlipping', options: { featuresInStep: 64 } }, 'RelevanceMassAccuracy', 'Sparseness'],
      );
      await mprt({ model: small.model, x: small.x, labels }, lrpExplainer('epsilon_plus_flat'), {
        skipLayers: true,
      });
      await maxSensitivity(small.input, lrpExplainer('epsilon_plus_flat'), {
        nrSamples: 2,
      });
      await conceptDeletion(
        small.model,
        { x: small.x, labels },
        { layer: 'conv1', target: 0, relevance: [1, 2, 3, 4], randomOrders: 1 },
      );
    }
    expect(tf.memory().numTensors).toBe(before);
    input.mask.dispose();
  });
});

describe('randomisation and robustness', () => {
  it('MPRT: top-down through every weighted layer, the original first; the model is unchanged', async () => {
    const weights = small.model.getWeights().map((w) => Array.from(w.dataSync()));
    const r = await mprt({ model: small.model, x: small.x, labels }, lrpExplainer('epsilon_plus_flat'));
    expect(Object.keys(r.layers!)).toEqual(['original', 'logits', 'conv2', 'conv1']);
    for (const v of r.layers!.original!) expect(v).toBeCloseTo(1, 12);
    expect(r.scores).toEqual(r.layers!.conv1);
    expect(small.model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(weights);
    const independent = await mprt(
      { model: small.model, x: small.x, labels },
      lrpExplainer('epsilon_plus_flat'),
      {
        layerOrder: 'independent',
      },
    );
    expect(Object.keys(independent.layers!)).toEqual(['original', 'conv1', 'conv2', 'logits']);
    // randomising only the last layer is the first step of both orders
    expect(independent.layers!.logits).toEqual(r.layers!.logits);
  });

  it('MPRT explainAtMost: every layer still randomised in order, explained at evenly spaced steps with equal values', async () => {
    const full = await mprt({ model: small.model, x: small.x, labels }, lrpExplainer('epsilon_plus_flat'));
    const some = await mprt({ model: small.model, x: small.x, labels }, lrpExplainer('epsilon_plus_flat'), {
      explainAtMost: 2,
    });
    // 3 layers, 2 explanations: after steps round(1.5) - 1 = 1 (conv2) and 2 (conv1, the last)
    expect(Object.keys(some.layers!)).toEqual(['original', 'conv2', 'conv1']);
    // the cascade is the same: logits was randomised before conv2 although not explained
    expect(some.layers!.conv2).toEqual(full.layers!.conv2);
    expect(some.layers!.conv1).toEqual(full.layers!.conv1);
    expect(some.scores).toEqual(full.scores);
    const all = await mprt({ model: small.model, x: small.x, labels }, lrpExplainer('epsilon_plus_flat'), {
      explainAtMost: 5,
    });
    expect(all.layers).toEqual(full.layers);
    await expect(
      mprt({ model: small.model, x: small.x, labels }, lrpExplainer('epsilon_plus_flat'), {
        explainAtMost: 0,
      }),
    ).rejects.toThrow(/explainAtMost must be a positive integer, got 0/);
    await expect(
      mprt({ model: small.model, x: small.x, labels }, lrpExplainer('epsilon_plus_flat'), {
        explainAtMost: 2,
        returnAverageCorrelation: true,
      }),
    ).rejects.toThrow(/excludes explainAtMost/);
  });

  it("MPRT with the LRP explainer's session (derived weights kept until a layer changes) equals a fresh explainer per layer", async () => {
    const withSession = lrpExplainer('epsilon_plus_flat', { heatmap: false });
    // the same explainer without its session: MPRT then builds everything again for every layer
    const fresh: typeof withSession = (m, xs, t) => withSession(m, xs, t);
    for (const layerOrder of ['top_down', 'independent', 'bottom_up'] as const) {
      const before = tf.memory().numTensors;
      const a = await mprt({ model: small.model, x: small.x, labels }, withSession, { layerOrder });
      expect(tf.memory().numTensors).toBe(before);
      const b = await mprt({ model: small.model, x: small.x, labels }, fresh, { layerOrder });
      expect(a.layers).toEqual(b.layers);
    }
  });

  it('RandomLogit explains another class than the label', async () => {
    const r = await randomLogit(small.input, lrpExplainer('epsilon_plus_flat'), {
      numClasses: 3,
    });
    expect(r.details!.offTargets!.every((c, i) => c !== labels[i] && c >= 0 && c < 3)).toBe(true);
    expect(r.scores.every((s) => s <= 1)).toBe(true);
  });

  it('MaxSensitivity of a linear model with gradient x input: the noise relative to the input', async () => {
    const w = [1, -2, 0.5, 3];
    const lin = linearModel(2, 2, 1, w, [0, 0, 0, 0]);
    const xs = tf.tensor4d([1, 2, -1, 0.5], [1, 2, 2, 1]);
    // gradient x input = w * x: a - a' = w * noise, so the ratio is at most |w| * bound / |w * x|
    const r = await maxSensitivity({ model: lin, x: xs, labels: [0] }, gradientXInput(), {
      nrSamples: 5,
      lowerBound: 0.01,
    });
    const bound = Math.sqrt(w.reduce((s, v) => s + (v * 0.01) ** 2, 0)) / Math.sqrt(1 + 16 + 0.25 + 2.25);
    expect(r.scores[0]).toBeGreaterThan(0);
    expect(r.scores[0]).toBeLessThanOrEqual(bound);
    xs.dispose();
    lin.dispose();
  });
});

describe('concept deletion', () => {
  it('the same curves image by image and in batches; deleting all concepts ends every order at one point', async () => {
    const relevance = [0.5, 2, -1, 3, 0.1, 1];
    const options = { layer: 'conv2', target: 1, relevance, randomOrders: 2, seed: 7 };
    const one = await conceptDeletion(small.model, { x: small.x, labels }, { ...options, batchSize: 1 });
    const all = await conceptDeletion(small.model, { x: small.x, labels }, { ...options, batchSize: 5 });
    expect(all).toEqual(one);
    expect(one.curves.map((c) => c.order)).toEqual([
      'most-relevant-first',
      'least-relevant-first',
      'random-1',
      'random-2',
    ]);
    expect(one.curves[0]!.concepts).toEqual([3, 1, 5, 0, 4, 2]);
    expect(one.curves[1]!.concepts).toEqual([2, 4, 0, 5, 1, 3]);
    const ends = new Set(one.curves.map((c) => c.logit[c.logit.length - 1]));
    expect(ends.size).toBe(1);
    // the first point is the unmasked model's mean logit of class 1
    const y = small.model.predict(small.x) as tf.Tensor;
    const mean = tf.mean(tf.slice(y, [0, 1], [-1, 1]));
    expect(one.curves[0]!.logit[0]).toBeCloseTo(mean.dataSync()[0]!, 5);
    tf.dispose([y, mean]);
    expect(one.abpc).toBeCloseTo(one.curves[1]!.auc - one.curves[0]!.auc, 12);
  });
});

describe('bad input: a typed error naming what was wrong and what is valid', () => {
  it('an explanation of another shape than the inputs', async () => {
    const wrong = tf.zeros([5, 8, 7]);
    await expectCrpErrorAsync(
      () => pixelFlipping({ model: small.model, x: small.x, labels, explanation: wrong }),
      'invalid-shape',
      'explanation has shape [5, 8, 7]',
      '[5, 8, 8] (a heatmap)',
    );
    wrong.dispose();
  });

  it('a mask of the wrong size', async () => {
    const mask = tf.ones([5, 4, 4]);
    await expectCrpErrorAsync(
      () =>
        relevanceMassAccuracy({ model: small.model, x: small.x, labels, explanation: small.heatmap, mask }),
      'invalid-shape',
      'mask has shape [5, 4, 4]',
      'it must be [5, 8, 8]',
    );
    mask.dispose();
  });

  it('an empty batch', async () => {
    const empty = tf.zeros([0, 8, 8, 3]) as tf.Tensor4D;
    await expectCrpErrorAsync(
      () => pixelFlipping({ model: small.model, x: empty, labels: [], explanation: tf.zeros([0, 8, 8]) }),
      'empty-data',
      'empty batch',
    );
    empty.dispose();
  });

  it('evaluate refuses an empty batch, a wrong or missing mask, a wrong explanation or a missing explainer before explaining anything', async () => {
    let explained = 0;
    const counting = (
      m: Parameters<ReturnType<typeof gradientXInput>>[0],
      x: tf.Tensor4D,
      t: readonly number[],
    ) => {
      explained++;
      return gradientXInput()(m, x, t);
    };
    const empty = tf.zeros([0, 8, 8, 3]) as tf.Tensor4D;
    await expectCrpErrorAsync(
      () =>
        evaluate({ model: small.model, x: empty, labels: [], explainers: { gxi: counting } }, ['Sparseness']),
      'empty-data',
      'inputs are an empty batch',
    );
    const mask = tf.ones([5, 4, 4]);
    await expectCrpErrorAsync(
      () =>
        evaluate({ model: small.model, x: small.x, labels, explainers: { gxi: counting }, mask }, [
          'RelevanceMassAccuracy',
        ]),
      'invalid-shape',
      'mask has shape [5, 4, 4]; it must be [5, 8, 8]',
    );
    const wrong = tf.zeros([5, 8, 7]);
    await expectCrpErrorAsync(
      () =>
        evaluate(
          {
            model: small.model,
            x: small.x,
            labels,
            explainers: { gxi: counting },
            explanations: { lrp: small.heatmap, bad: wrong },
          },
          ['Sparseness'],
        ),
      'invalid-shape',
      "explanation 'bad' has shape [5, 8, 7]",
      '[5, 8, 8] (a heatmap)',
    );
    // a localisation metric without masks, and a metric that explains again for a method without explainer
    await expectCrpErrorAsync(
      () =>
        evaluate({ model: small.model, x: small.x, labels, explainers: { gxi: counting } }, [
          'Sparseness',
          'PointingGame',
        ]),
      'invalid-argument',
      'PointingGame needs region masks',
    );
    await expectCrpErrorAsync(
      () =>
        evaluate(
          {
            model: small.model,
            x: small.x,
            labels,
            explainers: { gxi: counting },
            explanations: { lrp: small.heatmap },
          },
          ['Sparseness', 'MPRT'],
        ),
      'invalid-argument',
      "method 'lrp': MPRT needs an explainer",
      'give one in explainers, or leave these metrics out',
    );
    expect(explained).toBe(0);
    tf.dispose([empty, mask, wrong]);
  });

  it('a metric name that does not exist: the nearest names first', async () => {
    expect(() => metricByName('PixelFliping')).toThrow(
      /unknown metric 'PixelFliping'; did you mean PixelFlipping/,
    );
    await expectCrpErrorAsync(
      () =>
        evaluate({ model: small.model, x: small.x, labels, explanations: { lrp: small.heatmap } }, [
          'Sparsenes' as 'Sparseness',
        ]),
      'unknown-metric',
      'did you mean Sparseness',
      'Valid metrics: PixelFlipping',
    );
  });

  it('a model that gives NaN on a perturbed input', async () => {
    // NaN as soon as the sum of the input drops below 9.5: after the first flip of [1, 2, 3, 4]
    const nanModel = (t: tf.Tensor4D) =>
      tf.tidy(() => {
        const z = tf.log(tf.sub(tf.sum(t, [1, 2, 3]), 9.5));
        return tf.stack([z, tf.zerosLike(z)], 1);
      });
    const xs = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    const a = tf.tensor3d([0.1, 0.4, 0.3, 0.2], [1, 2, 2]);
    await expectCrpErrorAsync(
      () => pixelFlipping({ model: nanModel, x: xs, labels: [0], explanation: a }, { softmax: false }),
      'invalid-value',
      "the model's output is NaN for sample 0 perturbed in step 1 of PixelFlipping",
    );
    // through evaluate, the error names the method whose explanation was being scored
    await expectCrpErrorAsync(
      () =>
        evaluate(
          { model: nanModel as unknown as tfl.LayersModel, x: xs, labels: [0], explanations: { lrp: a } },
          [{ name: 'PixelFlipping', options: { softmax: false } }],
        ),
      'invalid-value',
      "method 'lrp': the model's output is NaN for sample 0 perturbed in step 1 of PixelFlipping",
    );
    tf.dispose([xs, a]);
  });

  it('options out of range and unknown baselines', async () => {
    const input = small.input;
    await expectCrpErrorAsync(
      () => pixelFlipping(input, { featuresInStep: 5 }),
      'invalid-argument',
      'does not divide H * W = 64',
    );
    await expectCrpErrorAsync(
      () => pixelFlipping(input, { perturbBaseline: 'grey' as 'black' }),
      'invalid-argument',
      "unknown perturbBaseline 'grey'; valid: black, white, mean, uniform",
    );
    await expectCrpErrorAsync(
      () =>
        conceptDeletion(small.model, { x: small.x, labels }, { layer: 'conv9', target: 0, relevance: [] }),
      'unknown-layer',
      'layers with concepts: conv1, conv2, logits',
    );
  });
});
