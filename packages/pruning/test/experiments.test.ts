import { readFile } from 'node:fs/promises';
import { registerTrainingKernels } from '@crp/models';
import { mulberry32 } from '@crp/testing';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ChannelMask,
  CRITERIA,
  conceptPruning,
  conceptPruningTable,
  curvesTable,
  evaluateClasses,
  MaskedModel,
  modelCost,
  type PruningCurvesResult,
  pruningCurves,
  randomScores,
  scoreChannels,
} from '../src/index.js';
import { writeCurves } from '../src/node.js';
import { type Data, squares, trainSquaresNet } from './data.js';
import { useBackend } from './helpers.js';

useBackend('wasm');

let model: tfl.Sequential;
let reference: Data;
let test: Data;

beforeAll(async () => {
  registerTrainingKernels();
  model = await trainSquaresNet(squares(256, 1), 4);
  reference = squares(48, 3);
  test = squares(200, 2);
});

describe('the trained fixture', () => {
  it('learns the squares task (> 90% held-out accuracy)', () => {
    const e = evaluateClasses(model, test);
    expect(e.accuracy).toBeGreaterThan(0.9);
    expect(e.perClass.map((c) => c.samples)).toEqual([50, 50, 50, 50]);
  });
});

describe('pruning curves', () => {
  let result: PruningCurvesResult;
  const fractions = [0, 0.25, 0.5, 0.75, 0.9];

  beforeAll(async () => {
    result = await pruningCurves(model, { criteria: CRITERIA, reference, test, fractions });
  });

  it('measures every criterion at every fraction, starting from the unpruned accuracy', () => {
    expect(result.layers).toEqual(['conv1', 'conv2', 'fc1']);
    expect(result.channels).toBe(8 + 16 + 24);
    expect(result.curves.map((c) => c.criterion)).toEqual([...CRITERIA]);
    expect(result.baseline).toBe(evaluateClasses(model, test).accuracy);
    expect(result.chance).toBe(0.25);
    for (const c of result.curves) {
      expect(c.points.map((p) => p.requested)).toEqual(fractions);
      expect(c.points[0]!.accuracy).toBe(result.baseline);
      // per layer: round(f * 8) + round(f * 16) + round(f * 24) channels
      expect(c.points.map((p) => p.pruned)).toEqual([0, 2 + 4 + 6, 4 + 8 + 12, 6 + 12 + 18, 7 + 14 + 22]);
    }
  });

  it('shrinks parameters and multiply-adds monotonically (nested masks) as modelCost says', () => {
    for (const c of result.curves) {
      const params = c.points.map((p) => p.params!);
      const flops = c.points.map((p) => p.flops!);
      expect(params[0]).toBe(model.countParams());
      for (let i = 1; i < params.length; i++) {
        expect(params[i]!).toBeLessThan(params[i - 1]!);
        expect(flops[i]!).toBeLessThan(flops[i - 1]!);
      }
    }
    // with 25% of each layer pruned the counts do not depend on the criterion
    expect(new Set(result.curves.map((c) => c.points[1]!.params)).size).toBe(1);
    // conv1 6 of 8 filters, conv2 12 in x 12 out, fc1 (4*4*12 = 192) x 18, fc2 18 x 4
    const p = 27 * 6 + 6 + 4 * 12 + 9 * 6 * 12 + 12 + 192 * 18 + 18 + 18 * 4 + 4;
    expect(result.curves[0]!.points[1]!.params).toBe(p);
  });

  it('writes JSON, a Markdown table and an SVG plot', async () => {
    const files = await writeCurves(result, 'test-artifacts/pruning-curves');
    expect(files).toEqual([
      'test-artifacts/pruning-curves.json',
      'test-artifacts/pruning-curves.md',
      'test-artifacts/pruning-curves.svg',
    ]);
    expect(JSON.parse(await readFile(files[0]!, 'utf8'))).toEqual(JSON.parse(JSON.stringify(result)));
    const md = await readFile(files[1]!, 'utf8');
    expect(md).toContain('| pruned | relevance | activation | weight | taylor | random |');
    expect(md).toBe(curvesTable(result));
    const svg = await readFile(files[2]!, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('relevance');
    console.log(md);
  });

  it('ranks globally when asked: the lowest half of all channels, every layer keeping one', async () => {
    const global = await pruningCurves(model, {
      criteria: ['weight'],
      reference,
      test,
      fractions: [0.5, 1],
      scope: 'global',
    });
    const [half, all] = global.curves[0]!.points;
    expect(half!.pruned).toBe(24);
    expect(all!.pruned).toBe(48 - 3);
  });

  it('leaves the user model untouched', async () => {
    const masked = await MaskedModel.create(model);
    const a = tf.tidy(() => (model.predict(test.images) as tf.Tensor).dataSync());
    const b = tf.tidy(() => (masked.model.predict(test.images) as tf.Tensor).dataSync());
    expect(Array.from(a)).toEqual(Array.from(b));
    masked.dispose();
    expect(modelCost(model, ChannelMask.empty()).params).toBe(model.countParams());
  });
});

describe('concept-level pruning', () => {
  it('prunes each class`s top-k concepts in a low and a high layer and measures class vs others', async () => {
    const result = await conceptPruning(model, { layers: ['conv1', 'conv2', 'fc1'], k: 2, reference, test });
    expect(result.rows).toHaveLength(3 * 4);
    const base = evaluateClasses(model, test);
    for (const r of result.rows) {
      expect(r.concepts).toHaveLength(2);
      expect(r.before.target.accuracy).toBe(base.perClass[r.class]!.accuracy);
      expect(r.before.target.samples).toBe(50);
      expect(r.before.others.samples).toBe(150);
      // pruning the concepts a class relies on most lowers its own logit
      expect(r.after.target.meanTargetLogit).toBeLessThan(r.before.target.meanTargetLogit);
    }
    expect(result.summary.map((s) => s.layer)).toEqual(['conv1', 'conv2', 'fc1']);
    console.log(conceptPruningTable(result));
  });
});

describe('curvesTable', () => {
  const result: PruningCurvesResult = {
    layers: ['conv1', 'fc1'],
    channels: 8,
    scope: 'layer',
    baseline: 0.875,
    chance: 0.25,
    params: 100,
    flops: 1000,
    curves: [
      {
        criterion: 'relevance',
        points: [
          { requested: 0, fraction: 0, pruned: 0, accuracy: 0.875, fineTunedAccuracy: 0.875 },
          { requested: 0.5, fraction: 0.5, pruned: 4, accuracy: 0.8, fineTunedAccuracy: 0.85 },
          { requested: 0.9, fraction: 0.75, pruned: 6, accuracy: 0.3125 },
        ],
      },
      {
        criterion: 'random',
        points: [
          { requested: 0, fraction: 0, pruned: 0, accuracy: 0.875, fineTunedAccuracy: 0.875 },
          { requested: 0.5, fraction: 0.5, pruned: 4, accuracy: 0.55, fineTunedAccuracy: 0.7 },
          { requested: 0.9, fraction: 0.75, pruned: 6, accuracy: Number.NaN, fineTunedAccuracy: 0.25 },
        ],
      },
    ],
  };

  it('writes one row per fraction pruned, accuracy (and after fine-tuning) per criterion, in percent', () => {
    // by hand: 0.3125 -> 31.3% (31.25 rounds up in toFixed), NaN and a missing value -> '-'
    expect(curvesTable(result)).toBe(
      [
        '| pruned | relevance | relevance (tuned) | random | random (tuned) |',
        '|---|---|---|---|---|',
        '| 0.0% | 87.5% | 87.5% | 87.5% | 87.5% |',
        '| 50.0% | 80.0% | 85.0% | 55.0% | 70.0% |',
        '| 75.0% | 31.3% | - | - | 25.0% |',
        '',
        'Baseline accuracy 87.5%, chance 25.0%; 8 channels of conv1, fc1, layer ranking.',
        '',
      ].join('\n'),
    );
  });

  it('has no tuned columns when nothing was fine-tuned', () => {
    const plain: PruningCurvesResult = {
      ...result,
      scope: 'global',
      curves: [
        { criterion: 'weight', points: [{ requested: 0.2, fraction: 0.25, pruned: 2, accuracy: 0.5 }] },
      ],
    };
    expect(curvesTable(plain)).toBe(
      '| pruned | weight |\n|---|---|\n| 25.0% | 50.0% |\n\nBaseline accuracy 87.5%, chance 25.0%; 8 channels of conv1, fc1, layer ranking.\n'.replace(
        'layer ranking',
        'global ranking',
      ),
    );
  });
});

/**
 * A model where the relevance criterion must beat random: 16 units (a 1x1 convolution that copies its 16 inputs
 * through a ReLU), of which units 0 and 1 carry the class (input 0 or 1 is 1 for class 0 or 1, else 0) and feed
 * their class's logit with weight 2, while units 2..15 carry uniform noise in [0, 1) and feed both logits with
 * weights in [-0.05, 0.05]. The noise moves a logit by at most 14 * 0.05 = 0.7 < 2, so every sample is classified
 * right while both evidence units remain; without unit c, class c's samples are decided by noise alone.
 */
describe('the relevance criterion against random orders', () => {
  const UNITS = 16;
  function evidenceModel(): tfl.LayersModel {
    const m = tfl.sequential();
    m.add(
      tfl.layers.conv2d({
        inputShape: [1, 1, UNITS],
        filters: UNITS,
        kernelSize: 1,
        activation: 'relu',
        name: 'units',
      }),
    );
    m.add(tfl.layers.flatten({ name: 'flat' }));
    m.add(tfl.layers.dense({ units: 2, name: 'logits' }));
    const rng = mulberry32(5);
    const out = new Float32Array(UNITS * 2);
    for (let k = 2; k < UNITS; k++) for (let c = 0; c < 2; c++) out[k * 2 + c] = 0.1 * rng() - 0.05;
    out[0 * 2 + 0] = 2;
    out[1 * 2 + 1] = 2;
    const identity = tf.tidy(() => tf.reshape(tf.eye(UNITS), [1, 1, UNITS, UNITS]));
    const weights = [identity, tf.zeros([UNITS]), tf.tensor2d(out, [UNITS, 2]), tf.zeros([2])];
    m.setWeights(weights);
    tf.dispose(weights);
    return m;
  }
  function evidenceData(n: number, seed: number): Data {
    const rng = mulberry32(seed);
    const x = new Float32Array(n * UNITS);
    const labels = Array.from({ length: n }, (_, i) => i % 2);
    labels.forEach((y, i) => {
      x[i * UNITS + y] = 1;
      for (let k = 2; k < UNITS; k++) x[i * UNITS + k] = rng();
    });
    return { images: tf.tensor4d(x, [n, 1, 1, UNITS]), labels };
  }

  it('ranks the two evidence units first and keeps full accuracy while random orders lose it, over 6 seeds', async () => {
    const net = evidenceModel();
    const ref = evidenceData(32, 1);
    const held = evidenceData(200, 2);
    const relevance = scoreChannels(net, 'relevance', { data: ref }).layers.units!;
    const order = relevance.map((v, k) => [v, k] as const).sort((a, b) => b[0] - a[0]);
    expect(
      order
        .slice(0, 2)
        .map(([, k]) => k)
        .sort(),
    ).toEqual([0, 1]);

    const fractions = [0, 0.25, 0.5, 0.75, 0.875]; // 0, 4, 8, 12, 14 of 16 units
    const seeds = [1, 2, 3, 4, 5, 6];
    const result = await pruningCurves(net, {
      criteria: ['relevance', ...seeds.map((seed) => randomScores(net, { seed }))],
      reference: ref,
      test: held,
      fractions,
    });
    const [byRelevance, ...random] = result.curves.map((c) => c.points.map((p) => p.accuracy));
    expect(result.baseline).toBe(1);
    // relevance prunes noise units only: every sample stays right, up to 14 of 16 units pruned
    expect(byRelevance).toEqual([1, 1, 1, 1, 1]);
    for (const [i, f] of fractions.entries()) {
      const accuracies = random.map((curve) => curve[i]!);
      for (const a of accuracies) expect(a, `random at ${f}`).toBeLessThanOrEqual(byRelevance![i]!);
      // at 12 or 14 units pruned a random order keeps both evidence units with probability 91/1820 or 1/120
      if (f >= 0.75)
        expect(accuracies.reduce((s, a) => s + a, 0) / seeds.length, `mean random at ${f}`).toBeLessThan(
          0.85,
        );
    }
    net.dispose();
    tf.dispose([ref.images, held.images]);
  });
});
