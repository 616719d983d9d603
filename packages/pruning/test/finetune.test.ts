import { registerTrainingKernels } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ChannelMask,
  type CriterionName,
  curvesTable,
  evaluateClasses,
  fineTune,
  MaskedModel,
  pruningCurves,
  randomScores,
  scoreChannels,
  selectLowest,
  sparsity,
} from '../src/index.js';
import { type Data, squares, trainSquaresNet } from './data.js';
import { useBackend, values } from './helpers.js';

useBackend('wasm');

describe('fine-tuning after pruning', () => {
  let model: tfl.Sequential;
  let train: Data;
  let test: Data;

  beforeAll(async () => {
    registerTrainingKernels();
    train = squares(256, 1);
    test = squares(200, 2);
    model = await trainSquaresNet(train, 4);
  });

  it('recovers accuracy while the pruned channels stay zero and the user model stays as it was', async () => {
    const before = model.getWeights().map((w) => values(w));
    const mask = selectLowest(randomScores(model, { seed: 1 }), 0.75);
    const masked = await MaskedModel.create(model, mask);
    const pruned = evaluateClasses(masked.model, test).accuracy;
    const zeros = sparsity(masked.model).total.zeros;
    const start = tf.memory().numTensors;
    const { losses } = await fineTune(masked, train, { epochs: 3 });
    expect(tf.memory().numTensors).toBe(start);
    expect(losses).toHaveLength(3 * 8);
    const tuned = evaluateClasses(masked.model, test).accuracy;
    console.log(
      `fine-tuning, 75% random pruning: accuracy ${pruned} -> ${tuned}, loss ${losses[0]} -> ${losses.at(-1)}`,
    );
    // against the unpruned model: pruning costs more than 30 points, fine-tuning wins back at least 90% of them
    const baseline = evaluateClasses(model, test).accuracy;
    expect(baseline - pruned).toBeGreaterThan(0.3);
    expect(tuned - pruned).toBeGreaterThanOrEqual(0.9 * (baseline - pruned));
    // every masked weight is still exactly zero (and more may have become zero only by chance)
    expect(sparsity(masked.model).total.zeros).toBeGreaterThanOrEqual(zeros);
    for (const layer of mask.layers) {
      const k = masked.model.getLayer(layer).getWeights()[0]!;
      const c = k.shape[k.shape.length - 1]!;
      const v = values(k);
      for (const ch of mask.channels(layer))
        for (let i = ch; i < v.length; i += c) expect(Math.abs(v[i]!)).toBe(0);
    }
    model.getWeights().forEach((w, i) => {
      expect(values(w)).toEqual(before[i]);
    });
    masked.dispose();
  });

  it('adds to the pruning curves the accuracy that fine-tuning the same masks reaches, which recovers the drop', async () => {
    const reference = squares(48, 3);
    const tune = async (m: MaskedModel) => {
      await fineTune(m, train, { epochs: 2 });
    };
    const result = await pruningCurves(model, {
      criteria: ['relevance', 'random'],
      reference,
      test,
      fractions: [0.5, 0.75],
      fineTune: tune,
    });
    const md = curvesTable(result);
    expect(md).toContain('| pruned | relevance | relevance (tuned) | random | random (tuned) |');
    console.log(md);
    // the same masks, built here from the criteria, evaluated and fine-tuned outside pruningCurves
    for (const c of result.curves) {
      const scores = scoreChannels(model, c.criterion as CriterionName, {
        data: reference,
        layers: result.layers,
      });
      for (const p of c.points) {
        const masked = await MaskedModel.create(model, selectLowest(scores, p.requested));
        expect(evaluateClasses(masked.model, test).accuracy).toBe(p.accuracy);
        await tune(masked);
        expect(p.fineTunedAccuracy, `${c.criterion} at ${p.requested}`).toBe(
          evaluateClasses(masked.model, test).accuracy,
        );
        masked.dispose();
      }
    }
    // fine-tuning never loses accuracy here, and after pruning half the channels by relevance (a drop of more
    // than 20 points) it brings back at least 90% of the drop
    for (const c of result.curves)
      for (const p of c.points) expect(p.fineTunedAccuracy!).toBeGreaterThanOrEqual(p.accuracy);
    const half = result.curves[0]!.points[0]!;
    const drop = result.baseline - half.accuracy;
    expect(drop).toBeGreaterThan(0.2);
    expect(half.fineTunedAccuracy! - half.accuracy).toBeGreaterThanOrEqual(0.9 * drop);
    expect(ChannelMask.empty().isEmpty).toBe(true);
  });
});
