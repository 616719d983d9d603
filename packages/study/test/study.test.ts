/**
 * The study library: options checked against the model before any work, the target by name or index, and
 * runStudy in memory on the PyTorch fixture (a study run twice on one store resumes every part and gives the
 * same result; the report holds every section).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isCrpError } from '@crp/common';
import { Attributor } from '@crp/lrp';
import { disposeDataset, IMAGENET } from '@crp/models';
import { imageFolder, readTorchVgg } from '@crp/models/node';
import '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '@crp/testing';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStudyStore, resolveStudyOptions, resolveTarget, runStudy, studyReport } from '../src/index.js';

useBackend('wasm');

const FIXTURES = join(import.meta.dirname, 'fixtures');
let model: tfl.LayersModel;
let data: Awaited<ReturnType<typeof imageFolder>>;

beforeAll(async () => {
  model = await readTorchVgg(join(FIXTURES, 'vgg-bn-2class.pth'), { inputSize: 48 });
  data = await imageFolder(join(FIXTURES, 'patches'), { inputSize: [48, 48], ...IMAGENET });
});
afterAll(() => {
  disposeDataset(data);
  model.dispose();
});

describe('options', () => {
  it('finds the target by folder name first, then by index', () => {
    expect(resolveTarget('normal', ['mitosis', 'normal'])).toBe(1);
    expect(resolveTarget(1, ['mitosis', 'normal'])).toBe(1);
    expect(resolveTarget('1', ['mitosis', 'normal'])).toBe(1);
    // folders named by numbers name themselves
    expect(resolveTarget('3', ['1', '3'])).toBe(1);
    // and a number that names none is no index there: '1' is not silently the class named 7
    expect(() => resolveTarget('1', ['3', '7'])).toThrow(
      "target '1' names no class; where classes are named by numbers a number is read as a name, not an index; valid: 3, 7",
    );
    expect(resolveTarget(1, ['3', '7'])).toBe(1);
    // folders 0, 1, ... name their own index: a number past them is simply no class
    expect(() => resolveTarget('12', ['0', '1'])).toThrow("target '12' is not a class; valid: 0 (0), 1 (1)");
    for (const bad of ['tumour', '2', -1, 1.5]) {
      let err: unknown;
      try {
        resolveTarget(bad as string, ['mitosis', 'normal']);
      } catch (e) {
        err = e;
      }
      expect(isCrpError(err, 'invalid-target')).toBe(true);
      expect((err as Error).message).toContain('valid: 0 (mitosis), 1 (normal)');
    }
  });

  it("defaults to the seed's study and checks layers and numbers against the model", () => {
    const lrp = new Attributor(model);
    try {
      const o = resolveStudyOptions({ target: 'mitosis' }, lrp.graph, ['mitosis', 'normal']);
      expect(o).toMatchObject({
        target: 0,
        targetName: 'mitosis',
        samples: 40,
        topK: 5,
        region: { centerSquare: 16 },
        layers: ['features.0', 'features.4', 'features.8', 'classifier.0', 'classifier.3'],
        pruneLayers: ['features.0', 'features.8'],
        referenceLayers: ['features.8', 'classifier.0'],
        fineTune: 0,
      });
      expect(() =>
        resolveStudyOptions({ target: 0, layers: ['features.99'] }, lrp.graph, ['a', 'b']),
      ).toThrow(/unknown layer 'features.99' \(nearest: features.9, .*\); valid: features.0/);
      expect(() => resolveStudyOptions({ target: 0, samples: 0 }, lrp.graph, ['a', 'b'])).toThrow(/samples/);
      expect(() => resolveStudyOptions({ target: 0 }, lrp.graph, ['a', 'b', 'c'])).toThrow(
        /the model has 2 outputs but the data has 3 classes/,
      );
    } finally {
      lrp.dispose();
    }
  });
});

describe('runStudy in memory', () => {
  it('computes every part, resumes them from the store, and the report shows them', async () => {
    const store = memoryStudyStore();
    const options = { target: 'mitosis', samples: 8, region: { centerSquare: 16 } };
    const env = { store, identity: 'fixture' };
    const a = await runStudy(model, data, options, env);
    expect(a.model).toBe(model);
    expect(a.result.resumed).toEqual([]);
    expect(a.result.atlas.samples).toBe(8);
    const expected = JSON.parse(await readFile(join(FIXTURES, 'expected.json'), 'utf8')) as {
      accuracy: number;
    };
    expect(a.result.evaluation.accuracy).toBeCloseTo(expected.accuracy, 6);
    const b = await runStudy(model, data, options, env);
    expect(b.result.resumed).toHaveLength(8);
    expect({ ...b.result, seconds: {}, resumed: [] }).toEqual({ ...a.result, seconds: {}, resumed: [] });
    // another identity (another model or data) computes again
    const c = await runStudy(model, data, options, { store, identity: 'other' });
    expect(c.result.resumed).toEqual([]);
    const report = studyReport(b.result, b.images);
    const titles = report.sections.map((s) => s.title);
    expect(titles).toEqual(
      expect.arrayContaining([
        'What was studied',
        'Evaluation',
        'Where the model looks',
        'Global concept atlas',
        'Region atlas: the 16x16 centre',
        'Decomposition atlas',
        'Reference images: features.8',
        'Concept pruning',
        'How faithful are these explanations: pixel flipping',
        'Sanity check: model parameter randomisation (MPRT)',
        'Relevance inside the 16x16 centre',
      ]),
    );
    // the faithfulness part: the study's composite beside gradient x input and the random map
    const f = b.result.faithfulness!;
    expect(f.methods).toEqual(['epsilon_plus_flat', 'gradient x input', 'random map']);
    // the random map ignores the model: randomising its layers leaves it as it was
    for (const v of f.mprt[2]!.similarity) expect(v).toBeCloseTo(1, 12);
    // the x axis of the MPRT plot: the share of the weighted layers randomised, from the original (0) to all (1)
    const weighted = b.model.layers.filter((l) => l.getWeights().length > 0).length;
    for (const m of f.mprt) {
      expect(m.randomised[0]).toBe(0);
      expect(m.randomised.at(-1)).toBe(1);
      expect(m.randomised.length).toBe(Math.min(weighted, 12) + 1);
    }
    // MPRT's similarity is a rank correlation (it can fall below 0): its axis shows numbers, not percentages
    const mprtPlot = report.sections.find((s) => s.title?.includes('(MPRT)'));
    expect(JSON.stringify(mprtPlot)).toContain('"format":".1f"');
    expect(f.pixelFlipping.every((p) => p.curve.every(Number.isFinite))).toBe(true);
    // concept deletion of what the region atlas picked, beside the global atlas's: the region's top concepts of
    // the same layer, deleted in the order of their relevance inside the region, from the same intact model
    const g = f.conceptDeletion!;
    const r = f.regionConceptDeletion!;
    expect(r.layer).toBe(g.layer);
    const regionTop = b.result.regionAtlas.layers[r.layer]!.ranking.slice(0, 5).map((e) => e.concept);
    const most = r.curves.find((cv) => cv.order === 'most-relevant-first')!;
    expect(most.concepts).toEqual(regionTop);
    expect(most.logit[0]).toBeCloseTo(g.curves[0]!.logit[0]!, 5);
    // every order deletes the same set, so every curve ends at the same point
    for (const cv of r.curves) expect(cv.logit.at(-1)).toBeCloseTo(most.logit.at(-1)!, 5);
    expect(titles).toContain(`Concept deletion: what the 16x16 centre shows (${r.layer})`);
  });

  it('fine-tunes only the layers named by trainLayers, and refuses an unknown one before any work', async () => {
    const own = await readTorchVgg(join(FIXTURES, 'vgg-bn-2class.pth'), { inputSize: 48 });
    try {
      const weightsOf = (name: string) => own.getLayer(name).getWeights()[0]!.dataSync().slice();
      const before = { features: weightsOf('features.0'), classifier: weightsOf('classifier.6') };
      await expect(
        runStudy(
          own,
          data,
          { target: 0, fineTune: 1, trainLayers: ['head'] },
          { store: memoryStudyStore(), identity: 'x' },
        ),
      ).rejects.toThrow(/trainLayers names 'head'.*valid: .*classifier/);
      const lrp = new Attributor(own);
      try {
        expect(() => resolveStudyOptions({ target: 0, trainLayers: [] }, lrp.graph, ['a', 'b'])).toThrow(
          /trainLayers must be 'all' or a non-empty list/,
        );
      } finally {
        lrp.dispose();
      }
      const { result } = await runStudy(
        own,
        data,
        {
          target: 'mitosis',
          samples: 2,
          fineTune: 1,
          learningRate: 1e-2,
          trainLayers: ['classifier'],
          layers: ['classifier.0'],
          pruneLayers: ['features.8'],
          pruneConcepts: 1,
          referenceLayers: ['classifier.0'],
        },
        { store: memoryStudyStore(), identity: 'train-layers' },
      );
      expect(result.fineTune).toMatchObject({ trainLayers: ['classifier'], epochs: 1 });
      expect(result.fineTune!.batchSize).toBeGreaterThan(0);
      expect(weightsOf('features.0')).toEqual(before.features);
      expect(weightsOf('classifier.6')).not.toEqual(before.classifier);
    } finally {
      own.dispose();
    }
  });

  it('refuses a target class without samples', async () => {
    const normalOnly = { ...data, labels: data.labels.map(() => 1) };
    await expect(
      runStudy(model, normalOnly, { target: 'mitosis' }, { store: memoryStudyStore(), identity: 'x' }),
    ).rejects.toThrow(/the target class 'mitosis' has no samples/);
  });
});
