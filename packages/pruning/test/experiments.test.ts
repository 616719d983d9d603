import { readFile } from 'node:fs/promises';
import { registerTrainingKernels } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
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
