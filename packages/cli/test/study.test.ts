import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AttributionGraph,
  type ConceptAtlas,
  conceptAtlas,
  decompose,
  fromTensors,
  maximization,
  regionAtlas,
} from '@crp/attribution';
import { selectBackend } from '@crp/backend';
import { CondAttribution } from '@crp/core';
import {
  type Dataset,
  disposeDataset,
  evaluate,
  Lamb,
  type TrainResult,
  train,
  vggFromBlocks,
} from '@crp/models';
import { fileSystem, imageFolder, mnist } from '@crp/models/node';
import {
  evaluateClasses,
  exportPruned,
  type PruningCurvesResult,
  pruningCurves,
  scoreChannels,
  selectLowest,
} from '@crp/pruning';
import { createRaster } from '@crp/vis';
import { readPng, writePng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PruneOutput, RefsOutput, ReportOutput, TrainSummary } from '../src/index.js';
import { crp, resultOf } from './run.js';

// A tiny digit classifier (14x14 grey, conv 4 - conv 8 - logits) trained with the library, an image folder of
// digits 0-2 written as PNGs, and one digit image: the inputs of every command below.
let dir: string;
let out: string;
let modelDir: string;
let folder: string;
let digitPng: string;
let model: tfl.LayersModel;
let libTrain: TrainResult;
const trainOptions = { train: 300, validation: 100, seed: 1, inputSize: [14, 14] as const };

const labels = (d: Dataset) => [...d.labels];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crp-study-'));
  out = join(dir, 'out');
  await selectBackend({ threads: 1 });
  const { train: digits, validation } = mnist(trainOptions);
  const net = vggFromBlocks([[4], [8]], {
    inputShape: [14, 14, 1],
    classes: 10,
    hidden: [],
    dropout: 0,
    seed: 1,
  });
  libTrain = await train(net, digits, {
    epochs: 2,
    batchSize: 32,
    seed: 1,
    optimizer: new Lamb({ learningRate: 0.01 }),
    validation: validation!,
  });
  modelDir = join(dir, 'model');
  await net.save(fileSystem(modelDir));
  net.dispose();
  disposeDataset(digits);
  disposeDataset(validation);
  model = await tfl.loadLayersModel(fileSystem(modelDir));

  folder = join(dir, 'digits');
  const { train: some } = mnist({ train: 60, validation: 0, seed: 2, inputSize: [14, 14] });
  const pixels = some.images.dataSync();
  const ys = labels(some);
  const written = [0, 0, 0];
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i]!;
    if (y > 2 || written[y]! >= 4) continue;
    const img = createRaster(14, 14, 1);
    for (let p = 0; p < 196; p++) img.data[p] = Math.round(pixels[i * 196 + p]! * 255);
    await mkdir(join(folder, String(y)), { recursive: true });
    await writePng(join(folder, String(y), `${i}.png`), img);
    if (digitPng === undefined && y === 1) digitPng = join(folder, '1', `${i}.png`);
    written[y]!++;
  }
  disposeDataset(some);
});

afterAll(async () => {
  model?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('crp train', () => {
  it('trains the same model as the library and reports its validation accuracy and confusion matrix', async () => {
    const trained = join(out, 'trained');
    const { code, stdout, stderr } = await crp(
      'train',
      '--data',
      'mnist',
      '--blocks',
      '4,8',
      '--input-size',
      '14',
      '--train',
      '300',
      '--validation',
      '100',
      '--epochs',
      '2',
      '--seed',
      '1',
      '--lr',
      '0.01',
      '--out',
      trained,
      '--json',
    );
    expect(code, stderr).toBe(0);
    const r = resultOf<TrainSummary>(stdout);
    expect(existsSync(join(trained, 'model.json')) && existsSync(join(trained, 'train.json'))).toBe(true);
    expect(r.inputShape).toEqual([14, 14, 1]);
    expect(r.history.map((h) => h.loss)).toEqual(libTrain.history.map((h) => expect.closeTo(h.loss, 5)));
    expect(r.validation!.accuracy).toBeCloseTo(libTrain.validation!.accuracy, 6);
    expect(r.validation!.confusionMatrix).toEqual(libTrain.validation!.confusionMatrix);
    // the saved model gives the accuracy that was reported
    const saved = await tfl.loadLayersModel(fileSystem(trained));
    const { validation } = mnist(trainOptions);
    expect((await evaluate(saved, validation!)).accuracy).toBeCloseTo(r.validation!.accuracy, 6);
    saved.dispose();
    disposeDataset(validation);
  });

  it('prints the confusion matrix, and rejects an unknown architecture', async () => {
    const text = await crp(
      'train',
      '--data',
      folder,
      '--blocks',
      '2',
      '--epochs',
      '1',
      '--validation',
      '3',
      '--channels',
      '1',
      '--out',
      join(dir, 'folder-model'),
    );
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/validation accuracy \d\.\d{4} on 3 images/);
    expect(text.stdout).toMatch(/confusion matrix/);
    const bad = await crp('train', '--data', 'mnist', '--arch', 'vgg99', '--out', join(dir, 'x'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown --arch 'vgg99'; valid: small-vgg, vgg11/);
  });
});

describe('crp atlas', () => {
  it('gives the atlas of conceptAtlas over an image folder', async () => {
    const file = join(out, 'atlas.json');
    const { code, stdout, stderr } = await crp(
      'atlas',
      '--model',
      modelDir,
      '--data',
      folder,
      '--target',
      '1',
      '--top-k',
      '3',
      '--out',
      file,
      '--json',
    );
    expect(code, stderr).toBe(0);
    const r = resultOf<{ atlas: ConceptAtlas }>(stdout);
    const data = await imageFolder(folder, { channels: 1, inputSize: [14, 14] });
    const lib = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
    const direct = await conceptAtlas(lib, fromTensors(data.images, labels(data)), { target: 1, topK: 3 });
    lib.dispose();
    disposeDataset(data);
    expect(r.atlas).toEqual(JSON.parse(JSON.stringify(direct)));
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(r.atlas);
    expect(direct.samples).toBe(4);
  });

  it('gives the region atlas of regionAtlas for a centre square of mnist digits', async () => {
    const { code, stdout, stderr } = await crp(
      'atlas',
      '--model',
      modelDir,
      '--data',
      'mnist',
      '--samples',
      '60',
      '--target',
      '7',
      '--region',
      'center:6',
      '--out',
      join(out, 'atlas-center.json'),
      '--json',
    );
    expect(code, stderr).toBe(0);
    const { train: data } = mnist({ train: 60, validation: 0, seed: 0, inputSize: [14, 14] });
    const lib = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
    const direct = await regionAtlas(lib, fromTensors(data.images, labels(data)), {
      target: 7,
      region: { centerSquare: 6 },
    });
    lib.dispose();
    disposeDataset(data);
    expect(resultOf<{ atlas: ConceptAtlas }>(stdout).atlas).toEqual(JSON.parse(JSON.stringify(direct)));
  });

  it('rejects a region it cannot read', async () => {
    const bad = await crp(
      'atlas',
      '--model',
      modelDir,
      '--data',
      'mnist',
      '--target',
      '1',
      '--region',
      'middle',
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--region must be center:SIZE or box:X,Y,W,H/);
  });
});

describe('crp decompose', () => {
  it('writes the graph of decompose as JSON and SVG', async () => {
    const file = join(out, 'graph.json');
    const { code, stdout, stderr } = await crp(
      'decompose',
      '--model',
      modelDir,
      '--image',
      digitPng,
      '--target',
      '1',
      '--layer',
      'block2_conv1',
      '--concept',
      '3',
      '--width',
      '2',
      '--out',
      file,
      '--json',
    );
    expect(code, stderr).toBe(0);
    const r = resultOf<{ graph: AttributionGraph; svg: string }>(stdout);
    expect(r.svg).toBe(join(out, 'graph.svg'));
    expect(await readFile(r.svg, 'utf8')).toMatch(/^<svg/);
    const img = await readPng(digitPng);
    const x = tf.tensor4d(
      Float32Array.from(img.data, (v) => v / 255),
      [1, 14, 14, 1],
    );
    const lib = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
    const direct = decompose(lib, x, { target: 1, layer: 'block2_conv1', concept: 3, depth: 2, width: 2 });
    lib.dispose();
    x.dispose();
    expect(r.graph).toEqual(JSON.parse(JSON.stringify(direct)));
    expect(r.graph.edges).toHaveLength(2);
  });

  it('says what is missing or wrong', async () => {
    const missing = await crp(
      'decompose',
      '--model',
      modelDir,
      '--image',
      digitPng,
      '--target',
      '1',
      '--layer',
      'block2_conv1',
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--concept is required/);
    const layer = await crp(
      'decompose',
      '--model',
      modelDir,
      '--image',
      digitPng,
      '--target',
      '1',
      '--layer',
      'nope',
      '--concept',
      '0',
    );
    expect(layer.code).toBe(2); // a layer the model does not have is a mistake of the command line
    expect(layer.stderr).toMatch(/block2_conv1/);
  });
});

describe('crp refs', () => {
  it('writes a reference grid of the top samples that maximization ranks', async () => {
    const { code, stdout, stderr } = await crp(
      'refs',
      '--model',
      modelDir,
      '--data',
      'mnist',
      '--samples',
      '40',
      '--layer',
      'block2_conv1',
      '--channels',
      '0,5',
      '--top-k',
      '3',
      '--out',
      join(out, 'refs'),
      '--json',
    );
    expect(code, stderr).toBe(0);
    const r = resultOf<RefsOutput>(stdout);
    expect(existsSync(r.grid) && existsSync(r.file)).toBe(true);
    const grid = await readPng(r.grid);
    expect(grid.width).toBeGreaterThan(0);
    const { train: data } = mnist({ train: 40, validation: 0, seed: 0, inputSize: [14, 14] });
    const lib = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
    const max = await maximization(lib, fromTensors(data.images, labels(data)), {
      layers: ['block2_conv1'],
      topK: 3,
    });
    lib.dispose();
    disposeDataset(data);
    const top = max.relevance.block2_conv1!.top;
    expect(Object.keys(r.channels)).toEqual(['0', '5']);
    expect(r.channels[0]!.map((s) => s.sample)).toEqual(top[0]!.map((s) => s.sample));
    expect(r.channels[5]!.map((s) => s.score)).toEqual(top[5]!.map((s) => expect.closeTo(s.score, 5)));
  });

  it('rejects an unknown kind', async () => {
    const bad = await crp(
      'refs',
      '--model',
      modelDir,
      '--data',
      'mnist',
      '--layer',
      'block2_conv1',
      '--kind',
      'x',
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--kind must be relevance or activation/);
  });
});

describe('crp prune', () => {
  it('writes the curves of pruningCurves and exports the pruned model', async () => {
    const exported = join(dir, 'pruned');
    const { code, stdout, stderr } = await crp(
      'prune',
      '--model',
      modelDir,
      '--data',
      'mnist',
      '--samples',
      '60',
      '--test',
      '60',
      '--criteria',
      'weight,random',
      '--fractions',
      '0,0.5',
      '--out',
      join(out, 'prune'),
      '--export',
      exported,
      '--fraction',
      '0.5',
      '--criterion',
      'relevance',
      '--json',
    );
    expect(code, stderr).toBe(0);
    const r = resultOf<PruneOutput>(stdout);
    for (const f of ['curves.json', 'curves.md', 'curves.svg'])
      expect(existsSync(join(out, 'prune', f))).toBe(true);
    const { train: ref, validation: test } = mnist({
      train: 60,
      validation: 60,
      seed: 0,
      inputSize: [14, 14],
    });
    const reference = { images: ref.images, labels: labels(ref) };
    const held = { images: test!.images, labels: labels(test!) };
    const direct = await pruningCurves(model, {
      criteria: ['weight', 'random'],
      reference,
      test: held,
      fractions: [0, 0.5],
      criterionOptions: { seed: 0 },
    });
    expect(r.curves).toEqual(JSON.parse(JSON.stringify(direct)) as PruningCurvesResult);
    // the export: relevance scores on the reference images, the lowest half of every layer removed
    const mask = selectLowest(scoreChannels(model, 'relevance', { data: reference, seed: 0 }), 0.5);
    const small = await exportPruned(model, mask);
    const e = r.export!;
    expect(e.pruned).toBe(mask.size);
    expect(e.accuracy).toBeCloseTo(evaluateClasses(small, held).accuracy, 6);
    const loaded = await tfl.loadLayersModel(fileSystem(exported));
    expect(loaded.countParams()).toBe(e.params.after);
    expect(e.params.after).toBeLessThan(e.params.before);
    small.dispose();
    loaded.dispose();
    disposeDataset(ref);
    disposeDataset(test);
  });

  it('needs criteria or an export, and known criteria', async () => {
    const none = await crp('prune', '--model', modelDir, '--data', 'mnist');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/give --criteria/);
    const bad = await crp('prune', '--model', modelDir, '--data', 'mnist', '--criteria', 'magic');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /unknown criterion 'magic'; valid: relevance, activation, weight, taylor, random/,
    );
  });
});

describe('crp report', () => {
  it('gathers what the commands wrote into one HTML page, a section for each', async () => {
    const html = join(dir, 'report.html');
    const { code, stdout, stderr } = await crp('report', '--from', out, '--out', html, '--json');
    expect(code, stderr).toBe(0);
    const r = resultOf<ReportOutput>(stdout);
    expect(r.sections.map((s) => s.source)).toEqual([
      'trained/train.json',
      'trained/train.json',
      'atlas-center.json',
      'atlas.json',
      'graph.json',
      'refs/refs-block2_conv1.json',
      'prune/curves.json',
    ]);
    const page = await readFile(html, 'utf8');
    expect(page).toMatch(/Concept atlas, class 1/);
    expect(page).toMatch(/Region concept atlas, class 7/);
    expect(page).toMatch(/data:image\/png/);
    expect(page).toMatch(/data:image\/svg\+xml/);
  });

  it('says when there is nothing to report, and needs --from', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    const nothing = await crp('report', '--from', empty);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/nothing to report/);
    expect((await crp('report')).code).toBe(2);
  });
});
