/**
 * The metrics on cases small enough to compute by hand (a bias-free linear model, 2 x 2 and 4 x 4 images),
 * and invariants that hold exactly. Quantus's own numbers are checked by the conformance kind `evaluation`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attributionLocalisation,
  completeness,
  complexity,
  effectiveComplexity,
  faithfulnessCorrelation,
  faithfulnessEstimate,
  pixelFlipping,
  pointingGame,
  regionPerturbation,
  regionPerturbationAbpc,
  relevanceMassAccuracy,
  relevanceRankAccuracy,
  selectivity,
  sparseness,
  topKIntersection,
} from '../src/index.js';
import { linearModel, useBackend } from './helpers.js';

useBackend('cpu');

// 2 x 2 x 1 image [1, 2, 3, 4]; logit 0 = sum of the pixels; explanation [0.1, 0.4, 0.3, 0.2]
const model2 = () => linearModel(2, 2, 1, [1, 1, 1, 1], [0, 0, 0, 0]);
const x2 = () => tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
const a2 = () => tf.tensor3d([0.1, 0.4, 0.3, 0.2], [1, 2, 2]);

describe('PixelFlipping by hand', () => {
  it('black: the minimum replaces the features in order of relevance', async () => {
    const [model, x, explanation] = [model2(), x2(), a2()];
    const r = await pixelFlipping({ model, x, labels: [0], explanation }, { softmax: false });
    // [1,1,3,4] -> [1,1,1,4] -> [1,1,1,1] -> [1,1,1,1]
    expect(r.curves).toEqual([[9, 7, 4, 4]]);
    expect(r.scores).toEqual([17.5]);
    expect(r.higherIsBetter).toBe(false);
    tf.dispose([x, explanation]);
    model.dispose();
  });

  it("mean: Quantus's baseline is the mean of the already perturbed input, so it drifts", async () => {
    const [model, x, explanation] = [model2(), x2(), a2()];
    const r = await pixelFlipping(
      { model, x, labels: [0], explanation },
      { softmax: false, perturbBaseline: 'mean' },
    );
    // means 2.5, 2.625, 2.53125, 2.1640625 in turn
    expect(r.curves![0]).toEqual([10.5, 10.125, 8.65625, 9.8203125]);
    tf.dispose([x, explanation]);
    model.dispose();
  });

  it('softmax (the default) reads the probability of the class', async () => {
    const [model, x, explanation] = [model2(), x2(), a2()];
    const r = await pixelFlipping({ model, x, labels: [0], explanation }, { featuresInStep: 2 });
    const p = (z: number) => 1 / (1 + Math.exp(-z));
    expect(r.curves![0]![0]).toBeCloseTo(p(7), 6);
    expect(r.curves![0]![1]).toBeCloseTo(p(4), 6);
    tf.dispose([x, explanation]);
    model.dispose();
  });
});

describe('RegionPerturbation and Selectivity by hand', () => {
  // 4 x 4 image 1..16, patches of 2: relevance TL 0.1, TR 0.4, BL 0.2, BR 0.3 per pixel
  const x4 = () =>
    tf.tensor4d(
      Array.from({ length: 16 }, (_, i) => i + 1),
      [1, 4, 4, 1],
    );
  const a4 = () =>
    tf.tensor3d([0.1, 0.1, 0.4, 0.4, 0.1, 0.1, 0.4, 0.4, 0.2, 0.2, 0.3, 0.3, 0.2, 0.2, 0.3, 0.3], [1, 4, 4]);
  let model: ReturnType<typeof linearModel>;
  beforeAll(() => {
    model = linearModel(4, 4, 1, Array(16).fill(1), Array(16).fill(0));
  });
  afterAll(() => model.dispose());

  it('morf: the output drop after TR, then BR', async () => {
    const [x, explanation] = [x4(), a4()];
    const r = await regionPerturbation(
      { model, x, labels: [0], explanation },
      { patchSize: 2, regionsEvaluation: 2, softmax: false },
    );
    // TR holds 3, 4, 7, 8 (-> 1 each: drop 18), BR 11, 12, 15, 16 (drop 50)
    expect(r.curves).toEqual([[18, 68]]);
    expect(r.scores).toEqual([43]);
    tf.dispose([x, explanation]);
  });

  it('lerf goes the other way; ABPC = AUC(morf) - AUC(lerf)', async () => {
    const [x, explanation] = [x4(), a4()];
    const input = { model, x, labels: [0], explanation };
    const lerf = await regionPerturbation(input, { patchSize: 2, order: 'lerf', softmax: false });
    // TL (1, 2, 5, 6: drop 10), BL (9, 10, 13, 14: drop 42), BR (50), TR (18)
    expect(lerf.curves).toEqual([[10, 52, 102, 120]]);
    const abpc = await regionPerturbationAbpc(input, { patchSize: 2, softmax: false });
    // morf curve [18, 68, 110, 120]: AUC 43 + 89 + 115 = 247; lerf AUC 31 + 77 + 111 = 219
    expect(abpc.scores).toEqual([247 - 219]);
    tf.dispose([x, explanation]);
  });

  it('Selectivity records the output after every patch, most relevant first', async () => {
    const [x, explanation] = [x4(), a4()];
    const r = await selectivity({ model, x, labels: [0], explanation }, { patchSize: 2, softmax: false });
    expect(r.curves).toEqual([[118, 68, 26, 16]]);
    tf.dispose([x, explanation]);
  });
});

describe('faithfulness correlations: exact for gradient x input of a linear model', () => {
  // drop of the output = sum over the removed features of w * x = the explanation's sum over them
  const w = [0.5, -1, 2, 0.25, -0.75, 1.5, 1, -2, 0.3];
  const xs = [1, 2, -1, 0.5, 3, -2, 1.5, 0.25, -0.5];
  it('FaithfulnessEstimate and FaithfulnessCorrelation are 1 with the baseline 0', async () => {
    const model = linearModel(3, 3, 1, w, Array(9).fill(0));
    const x = tf.tensor4d(xs, [1, 3, 3, 1]);
    const explanation = tf.tensor3d(
      xs.map((v, i) => v * w[i]!),
      [1, 3, 3],
    );
    const input = { model, x, labels: [0], explanation };
    const fe = await faithfulnessEstimate(input, { perturbBaseline: 0 });
    expect(fe.scores[0]).toBeCloseTo(1, 6);
    const fc = await faithfulnessCorrelation(
      input,
      { perturbBaseline: 0, nrRuns: 10, subsetSize: 3 },
      { seed: 4 },
    );
    expect(fc.scores[0]).toBeCloseTo(1, 6);
    tf.dispose([x, explanation]);
    model.dispose();
  });

  it('Completeness: the explanation sums to f(x) - f(0), shown in details', async () => {
    const model = linearModel(3, 3, 1, w, Array(9).fill(0));
    const x = tf.tensor4d(xs, [1, 3, 3, 1]);
    const explanation = tf.tensor3d(
      xs.map((v, i) => v * w[i]!),
      [1, 3, 3],
    );
    const r = await completeness(
      { model, x, labels: [0], explanation },
      { perturbBaseline: 0, normalise: false },
    );
    expect(r.details!.relevanceSum![0]).toBeCloseTo(r.details!.outputDifference![0]!, 5);
    tf.dispose([x, explanation]);
    model.dispose();
  });
});

describe('localisation and complexity by hand', () => {
  const input = () => ({
    model: model2(),
    x: x2(),
    labels: [0],
    explanation: a2(),
    mask: tf.tensor3d([0, 1, 0, 0], [1, 2, 2]),
  });
  const free = (i: ReturnType<typeof input>) => {
    tf.dispose([i.x, i.explanation, i.mask]);
    i.model.dispose();
  };

  it('the five localisation metrics', async () => {
    const i = input();
    expect((await pointingGame(i)).scores).toEqual([1]);
    // normalised by the maximum 0.4: [0.25, 1, 0.75, 0.5]
    expect((await relevanceMassAccuracy(i)).scores[0]).toBeCloseTo(1 / 2.5, 6);
    expect((await relevanceRankAccuracy(i)).scores).toEqual([1]);
    expect((await topKIntersection(i, { k: 2 })).scores).toEqual([0.5]);
    expect((await attributionLocalisation(i)).scores[0]).toBeCloseTo(1 / 2.5, 6);
    free(i);
  });

  it('an empty mask: NaN, except the pointing game (Quantus stores NaN in a boolean array: 1)', async () => {
    const i = { ...input(), mask: tf.zeros([1, 2, 2]) as tf.Tensor3D };
    expect((await relevanceMassAccuracy(i)).scores[0]).toBeNaN();
    expect((await relevanceRankAccuracy(i)).scores[0]).toBeNaN();
    expect((await pointingGame(i)).scores).toEqual([1]);
    free(i);
  });

  it('Sparseness, Complexity, EffectiveComplexity', async () => {
    const i = input();
    const one = { ...i, explanation: tf.tensor3d([0, 0, 0, 1], [1, 2, 2]) };
    expect((await sparseness(one)).scores[0]).toBeCloseTo(0.75, 5);
    const flat = { ...i, explanation: tf.tensor3d([1, 1, 1, 1], [1, 2, 2]) };
    expect((await complexity(flat)).scores[0]).toBeCloseTo(Math.log(4), 6);
    expect((await effectiveComplexity(i, { eps: 0.5 })).scores).toEqual([2]);
    tf.dispose([one.explanation, flat.explanation]);
    free(i);
  });
});
