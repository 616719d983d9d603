import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../src/backend.js';
import { defaultReferenceDir } from '../src/reference-dir.js';
import { runConformance } from '../src/run.js';

const refDir = defaultReferenceDir();

beforeAll(async () => {
  await useBackend('wasm');
});

describe.each([
  ['lrp', 24],
  ['crp', 5],
  ['relmax', 1],
  ['region', 2],
  ['vit', 4],
  ['torch-logits', 3],
  ['torch-lrp', 18],
  ['torch-crp', 9],
  ['onnx-crp', 5],
  ['evaluation', 39],
])('%s golden cases (wasm)', (kind, count) => {
  it('every case passes within the reference tolerance', { timeout: 900_000 }, async () => {
    const summary = await runConformance([refDir], { kinds: [kind] });
    expect(summary.outcomes).toHaveLength(count);
    for (const o of summary.outcomes) expect(o.passed, `${o.id}: ${o.detail}`).toBe(true);
    expect(summary.failed).toBe(0);
  });
});

describe('the comparison is not vacuous', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crp-conf-'));
    await mkdir(join(dir, 'cases'));
    await mkdir(join(dir, 'models'));
    await copyFile(join(refDir, 'models', 'tiny_vgg.json'), join(dir, 'models', 'tiny_vgg.json'));
    const id = 'lrp_composite_EpsilonPlusFlat__tiny_vgg';
    const golden = JSON.parse(await readFile(join(refDir, 'cases', `${id}.json`), 'utf8'));
    // move one input-relevance value by 1% of the tensor's largest magnitude: 100x the tolerance
    const data = golden.relevance.input.data as number[];
    const max = Math.max(...data.map(Math.abs));
    data[17] = data[17]! + 0.01 * max;
    golden.id = `${id}_altered`;
    await writeFile(join(dir, 'cases', 'altered.json'), JSON.stringify(golden));
    // a crp case: swap the channel of the condition, so the heatmap must differ
    const crp = JSON.parse(await readFile(join(refDir, 'cases', 'crp_y1_f2c3__tiny_vgg.json'), 'utf8'));
    crp.conditions = [{ y: [1], 'features.2': [4] }];
    crp.id = 'crp_altered_condition';
    await writeFile(join(dir, 'cases', 'crp_altered.json'), JSON.stringify(crp));
    // an lrp case with a rule the toolkit does not have: it cannot run, so it must count as failed
    const unknown = JSON.parse(await readFile(join(refDir, 'cases', 'lrp_rule_flat__tiny_vgg.json'), 'utf8'));
    unknown.rules['features.2'] = { rule: 'NoSuchRule', params: {} };
    unknown.id = 'lrp_unrunnable';
    await writeFile(join(dir, 'cases', 'unrunnable.json'), JSON.stringify(unknown));
    const cases = [
      { id: golden.id, kind: 'lrp', file: 'cases/altered.json' },
      { id: crp.id, kind: 'crp', file: 'cases/crp_altered.json' },
      { id: unknown.id, kind: 'lrp', file: 'cases/unrunnable.json' },
    ];
    await writeFile(join(dir, 'index.json'), JSON.stringify({ format: 'lrp-golden-index/1', cases }));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('fails an lrp case whose golden input relevance was altered, naming the tensor', async () => {
    const summary = await runConformance([dir], { kinds: ['lrp'] });
    expect(summary.outcomes).toHaveLength(2);
    const o = summary.outcomes.find((x) => x.id.endsWith('_altered'));
    expect(o!.passed).toBe(false);
    expect(o!.detail).toMatch(/^input:/);
    expect(o!.worst).toBeGreaterThan(50);
  });

  it('fails a crp case run under a different condition', async () => {
    const summary = await runConformance([dir], { kinds: ['crp'] });
    expect(summary.outcomes).toHaveLength(1);
    expect(summary.outcomes[0]!.passed).toBe(false);
  });

  it('counts a case the code cannot run as failed, never skipped, with the reason', async () => {
    const summary = await runConformance([dir], { kinds: ['lrp'] });
    const o = summary.outcomes.find((x) => x.id === 'lrp_unrunnable');
    expect(o?.passed).toBe(false);
    expect(o?.detail).toMatch(/NoSuchRule/);
    expect(summary.failed).toBe(2);
  });
});

describe('reading the reference composite names', () => {
  it('takes the numeric keyword arguments of the Python call', async () => {
    const { numericKwargs, builtInComposite } = await import('../src/kinds/lrp.js');
    expect(
      numericKwargs('EpsilonGammaBox(low=-3.0, high=3.0, canonizers=[SequentialMergeBatchNorm()])'),
    ).toEqual({
      low: -3,
      high: 3,
    });
    expect(numericKwargs('EpsilonPlus(epsilon=1e-06, stabilizer=0.25)')).toEqual({
      epsilon: 1e-6,
      stabilizer: 0.25,
    });
    expect(builtInComposite('EpsilonPlusFlat(canonizers=[SequentialMergeBatchNorm()])')?.name).toBe(
      'EpsilonPlusFlat',
    );
    expect(builtInComposite("plain_composite('zbox', canonizers=None)")).toBeUndefined();
    expect(() => builtInComposite('EpsilonGammaBox()')).toThrow(/low\/high/);
  });
});

describe('region cases are not vacuous', () => {
  it('a region relevance moved by 1% of the layer maximum fails', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'crp-conf-region-'));
    await mkdir(join(dir, 'models'));
    await mkdir(join(dir, 'region'));
    for (const m of ['tiny_vgg.json', 'tiny_vgg_bn.json']) {
      await copyFile(join(refDir, 'models', m), join(dir, 'models', m));
    }
    const set = JSON.parse(await readFile(join(refDir, 'region', 'region_golden.json'), 'utf8'));
    const c = set.cases[0];
    const layer = c.layers[1];
    const data: number[] = c.regionRelevance[layer].data;
    const max = Math.max(...data.map((v: number) => Math.abs(v)));
    data[3] = (data[3] ?? 0) + 0.01 * max;
    set.cases = [c];
    await writeFile(join(dir, 'region', 'region_golden.json'), JSON.stringify(set));
    const summary = await runConformance([dir], { kinds: ['region'] });
    expect(summary.outcomes).toHaveLength(1);
    expect(summary.failed).toBe(1);
    expect(summary.outcomes[0]!.detail).toContain(`regionRelevance.${layer}`);
  });
});

describe('evaluation cases are not vacuous', () => {
  it('a Quantus value moved by 1% fails, and so does a replayed draw that is changed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'crp-conf-evaluation-'));
    await mkdir(join(dir, 'models'));
    await mkdir(join(dir, 'evaluation'));
    await copyFile(join(refDir, 'models', 'tiny_vgg.json'), join(dir, 'models', 'tiny_vgg.json'));
    const set = JSON.parse(await readFile(join(refDir, 'evaluation', 'evaluation_golden.json'), 'utf8'));
    const byId = (id: string) => structuredClone(set.cases.find((c: { id: string }) => c.id === id));
    const sparse = byId('sparseness');
    sparse.id = 'sparseness-altered';
    sparse.expected[2] *= 1.01;
    const fc = byId('faithfulness-correlation');
    fc.id = 'faithfulness-correlation-other-subsets';
    // swap the first two recorded subsets of sample 0 with those of sample 1: other perturbations, other values
    const runs = fc.random.subsets as number[][][];
    for (const r of runs) [r[0], r[1]] = [r[1]!, r[0]!];
    set.cases = [sparse, fc];
    await writeFile(join(dir, 'evaluation', 'evaluation_golden.json'), JSON.stringify(set));
    const summary = await runConformance([dir], { kinds: ['evaluation'] });
    expect(summary.outcomes.map((o) => [o.id, o.passed])).toEqual([
      ['sparseness-altered', false],
      ['faithfulness-correlation-other-subsets', false],
    ]);
    await rm(dir, { recursive: true, force: true });
  });
});
