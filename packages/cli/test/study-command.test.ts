/**
 * `crp study` end to end on a small torchvision-style VGG with batch norm (.pth written by torch 1.13, 2
 * classes, trained on synthetic patches; packages/study/fixtures-src/make-study-fixture.py) and its image
 * folder: fine-tuning, evaluation, the three strategies, reference images, pruning, report.html and study.json;
 * a second run resumes; a run killed in the middle resumes; every bad input of issue 11 is refused with a clear
 * message and the right exit status, leaving nothing half-written.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StudyResult } from '@crp/study';
import { createRaster } from '@crp/vis';
import { writePng } from '@crp/vis/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crp, resultOf } from './run.js';

const here = dirname(fileURLToPath(import.meta.url));
const FIXTURES = resolve(here, '..', '..', 'study', 'test', 'fixtures');
const MODEL = join(FIXTURES, 'vgg-bn-2class.pth');
const expected = JSON.parse(await readFile(join(FIXTURES, 'expected.json'), 'utf8')) as { accuracy: number };

let dir: string;
let data: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crp-study-cmd-'));
  data = join(dir, 'patches');
  await cp(join(FIXTURES, 'patches'), data, { recursive: true });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base = (out: string, ...extra: string[]) => [
  'study',
  '--model',
  MODEL,
  '--data',
  data,
  '--target',
  'mitosis',
  '--input-size',
  '48',
  '--normalize',
  'imagenet',
  '--samples',
  '12',
  '--region',
  'center:16',
  '--out',
  out,
  ...extra,
];

describe('crp study', () => {
  let first: StudyResult;
  const out = () => join(dir, 'out');

  it('runs the whole study and writes report.html, study.json and the pictures', async () => {
    const r = await crp(...base(out()), '--json');
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    expect(r.code).toBe(0);
    first = resultOf<{ result: StudyResult }>(r.stdout).result;
    const json = JSON.parse(await readFile(join(out(), 'study.json'), 'utf8')) as StudyResult;
    expect(json.format).toBe('crp-study/1');
    expect(json.target).toEqual({ index: 0, name: 'mitosis' });
    expect(json.data.classes).toEqual(['mitosis', 'normal']);
    expect(json.data.counts).toEqual([24, 24]);
    // the model is the PyTorch one: PyTorch's names, and torch's accuracy on the same images
    expect(json.model.layers).toEqual([
      'features.0',
      'features.4',
      'features.8',
      'classifier.0',
      'classifier.3',
    ]);
    expect(json.evaluation.on).toBe('all');
    expect(json.evaluation.accuracy).toBeCloseTo(expected.accuracy, 6);
    // rows = true class, columns = predicted, class-index order; they add up to the class counts
    expect(json.evaluation.confusionMatrix.map((row) => row.reduce((a, b) => a + b, 0))).toEqual([24, 24]);
    // the strategies looked at the first 12 mitosis patches
    expect(json.samples.indices).toEqual([...Array(12).keys()]);
    expect(json.atlas.samples).toBe(12);
    expect(json.regionAtlas.samples).toBe(12);
    for (const layer of json.atlas.layerOrder) {
      const ranking = json.atlas.layers[layer]!.ranking;
      // votes: each sample votes for up to 5 concepts (fewer when the layer has fewer, and never for a dead
      // concept whose relevance is exactly 0)
      const votes = ranking.reduce((s, e) => s + e.votes, 0);
      expect(votes).toBeLessThanOrEqual(12 * Math.min(5, ranking.length));
      expect(votes).toBe(ranking.reduce((s, e) => s + (e.meanRelevance === 0 ? 0 : e.votes), 0));
      expect(votes).toBeGreaterThanOrEqual(12);
      expect(ranking[0]!.percent).toBeGreaterThan(0);
    }
    expect(json.decomposition.layerOrder).toEqual([
      'features.4',
      'features.8',
      'classifier.0',
      'classifier.3',
    ]);
    expect(json.references.map((x) => x.layer)).toEqual(['features.8', 'classifier.0']);
    expect(json.pruning.rows.map((x) => [x.layer, x.class])).toEqual([
      ['features.0', 0],
      ['features.8', 0],
      ['features.0', 1],
      ['features.8', 1],
    ]);
    for (const name of ['report.html', 'references/features.8.png', 'references/classifier.0.png']) {
      expect(existsSync(join(out(), name)), name).toBe(true);
    }
    const html = await readFile(join(out(), 'report.html'), 'utf8');
    expect(html).toContain('Concept study: mitosis');
    expect(html).toContain('features.8');
    expect(html).not.toMatch(/src="(?!data:)/); // self-contained: every image inline
    expect(json.resumed).toEqual([]);
  });

  it('a second run resumes every finished part and gives the same findings', async () => {
    const r = await crp(...base(out()), '--json');
    expect(r.code).toBe(0);
    const again = resultOf<{ result: StudyResult }>(r.stdout).result;
    expect(again.resumed).toEqual([
      'evaluation',
      'atlas',
      'region-atlas',
      'decomposition',
      'references',
      'heatmaps',
      'pruning',
      'faithfulness',
    ]);
    const strip = (x: StudyResult) => ({ ...x, seconds: {}, resumed: [] });
    expect(strip(again)).toEqual(strip(first));
  });

  it('fine-tunes with LAMB on a validation split, keeps the best epoch and evaluates on held-out images', async () => {
    const o = join(dir, 'tuned');
    const r = await crp(
      ...base(o, '--fine-tune', '2', '--learning-rate', '1e-3', '--validation', '0.25', '--samples', '6'),
      '--json',
    );
    expect(r.code).toBe(0);
    const s = resultOf<{ result: StudyResult }>(r.stdout).result;
    expect(s.fineTune!.history).toHaveLength(2);
    expect(s.fineTune!.trainSamples + s.fineTune!.validationSamples).toBe(48);
    expect(s.fineTune!.validationSamples).toBe(12);
    const best = s.fineTune!.history.reduce((a, b) => ((b.valLoss ?? 0) < (a.valLoss ?? 0) ? b : a));
    expect(s.fineTune!.bestEpoch).toBe(best.epoch);
    expect(s.evaluation.on).toBe('validation');
    expect(s.evaluation.samples).toBe(12);
    expect(existsSync(join(o, 'model', 'model.json'))).toBe(true);
  });

  it('resumes after a kill: the parts finished before it are not computed again', async () => {
    const o = join(dir, 'killed');
    const bin = resolve(here, '..', 'dist', 'bin.js');
    const child: ChildProcess = spawn(process.execPath, [bin, ...base(o), '--threads', '1'], {
      stdio: 'ignore',
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const deadline = Date.now() + 90_000;
    while (!existsSync(join(o, 'parts', 'atlas.json')) && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(existsSync(join(o, 'parts', 'atlas.json')), 'the atlas part was written within 90 s').toBe(true);
    child.kill('SIGKILL');
    await exited;
    // whole files only: no temporary file is mistaken for a part
    for (const f of await readdir(join(o, 'parts')))
      expect(f.endsWith('.json') || f.endsWith('.tmp')).toBe(true);
    const r = await crp(...base(o), '--json');
    expect(r.code).toBe(0);
    const s = resultOf<{ result: StudyResult }>(r.stdout).result;
    expect(s.resumed).toEqual(expect.arrayContaining(['evaluation', 'atlas']));
  });

  it('skips a corrupt image and converts a grey one, saying so', async () => {
    const mixed = join(dir, 'mixed');
    await cp(data, mixed, { recursive: true });
    await writeFile(join(mixed, 'normal', 'broken.png'), new Uint8Array([137, 80, 78, 71, 1, 2, 3]));
    const grey = createRaster(48, 48, 1, [90]);
    await writePng(join(mixed, 'mitosis', 'zz-grey.png'), grey);
    const o = join(dir, 'mixed-out');
    const args = base(o).map((a) => (a === data ? mixed : a));
    const r = await crp(...args, '--samples', '30', '--json');
    expect(r.code).toBe(0);
    const s = resultOf<{ result: StudyResult }>(r.stdout).result;
    expect(s.data.skipped.map((x) => x.path)).toEqual([join(mixed, 'normal', 'broken.png')]);
    expect(s.data.counts).toEqual([25, 24]);
    expect(s.samples.sources).toContain(join(mixed, 'mitosis', 'zz-grey.png'));
    expect(await readFile(join(o, 'report.html'), 'utf8')).toContain('broken.png');
  });
});

describe('the other commands on a PyTorch model', () => {
  it('atlas and layers read the .pth at any input size, normalise as torchvision and use PyTorch names', async () => {
    const layers = await crp('layers', '--model', MODEL, '--input-size', '100', '--json');
    expect(layers.code).toBe(0);
    const rows = resultOf<{ name: string; outputShape: number[] }[]>(layers.stdout);
    expect(rows.find((r) => r.name === 'features.8')!.outputShape).toEqual([25, 25, 16]);
    expect(rows.find((r) => r.name === 'avgpool')).toBeDefined();
    const file = join(dir, 'atlas.json');
    const atlas = await crp(
      'atlas',
      '--model',
      MODEL,
      '--input-size',
      '48',
      '--normalize',
      'imagenet',
      '--data',
      data,
      '--target',
      '0',
      '--out',
      file,
    );
    expect(atlas.code).toBe(0);
    // votes as k/n samples and the share of the layer's relevance
    expect(atlas.stdout).toMatch(/features\.8: \d+ \(24\/24 samples, \d+\.\d%\)/);
    const json = JSON.parse(await readFile(file, 'utf8')) as { layerOrder: string[] };
    expect(json.layerOrder).toEqual([
      'features.0',
      'features.4',
      'features.8',
      'classifier.0',
      'classifier.3',
    ]);
  });
});

describe('crp study: bad input', () => {
  const failing = async (args: string[], code: number, ...patterns: RegExp[]) => {
    const r = await crp(...args);
    expect(r.code, r.stderr).toBe(code);
    for (const p of patterns) expect(r.stderr).toMatch(p);
    expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
  };

  it('usage errors: unknown option, negative class, malformed numbers — exit 2 with the usage', async () => {
    const o = join(dir, 'bad');
    await failing(
      [...base(o), '--frobnicate', '3'],
      2,
      /Unknown option '--frobnicate'/,
      /crp study --model FILE/,
    );
    await failing(
      base(o).map((a) => (a === 'mitosis' ? '-1' : a)),
      2,
      /target/,
    );
    await failing([...base(o), '--samples', '0'], 2, /--samples must be a whole number >= 1/);
    await failing([...base(o), '--region', 'middle'], 2, /--region must be center:SIZE or box:X,Y,W,H/);
    await failing([...base(o), '--input-size', '12.5'], 2, /--input-size must be N or HxW/);
    await failing([...base(o), '--mean', '0.5,0.5'], 2, /give --normalize or --mean\/--std, not both/);
    await failing(
      base(o).map((a) => (a === MODEL ? join(dir, 'nope.pth') : a)),
      2,
      /--model: '.*nope.pth' does not exist/,
    );
    expect(existsSync(o)).toBe(false);
  });

  it('a target that is not a class (exit 2, the classes listed) and a target class without images (exit 1)', async () => {
    const o = join(dir, 'bad-target');
    await failing(
      base(o).map((a) => (a === 'mitosis' ? 'tumour' : a)),
      2,
      /'tumour' is not a class; valid: 0 \(mitosis\), 1 \(normal\)/,
    );
    await failing(
      base(o).map((a) => (a === 'mitosis' ? '7' : a)),
      2,
      /'7' is not a class/,
    );
    const empty = join(dir, 'empty-class');
    await mkdir(join(empty, 'mitosis'), { recursive: true });
    await cp(join(data, 'normal'), join(empty, 'normal'), { recursive: true });
    await failing(
      base(o).map((a) => (a === data ? empty : a)),
      1,
      /target class 'mitosis' has no images/,
    );
    const none = join(dir, 'no-images');
    await mkdir(join(none, 'a'), { recursive: true });
    await failing(
      base(o).map((a) => (a === data ? none : a)),
      2, // its one class is not the target
      /not a class/,
    );
    expect(existsSync(join(o, 'report.html'))).toBe(false);
  });

  it('a truncated .pth, a ResNet state dict and an input too small for the network — exit 1, the file named', async () => {
    const pth = resolve(here, '..', '..', 'models', 'test', 'fixtures', 'pth');
    const o = join(dir, 'bad-model');
    const withModel = (m: string, ...extra: string[]) => [
      ...base(o).map((a) => (a === MODEL ? m : a)),
      ...extra,
    ];
    await failing(
      withModel(join(pth, 'tiny-vgg-truncated.pth')),
      1,
      /tiny-vgg-truncated\.pth/,
      /truncated|corrupt|zip/i,
    );
    await failing(withModel(join(pth, 'resnet.pth')), 1, /ResNet/);
    await failing(withModel(join(pth, 'unsafe-global.pth')), 1, /unsafe|not allowed|global/i);
    await failing(
      base(o).map((a) => (a === '48' ? '4' : a === 'center:16' ? 'center:4' : a)), // a region that fits
      1,
      /too small/,
    );
    expect(existsSync(join(o, 'report.html'))).toBe(false);
  });
});
