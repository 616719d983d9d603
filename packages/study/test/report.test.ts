/**
 * The report's numbers read right: on the hand model of hand-computed.test.ts, explained for class 'b' (whose
 * logit is negative on one of its images, and whose relevance skips channels), the atlas votes by evidence for
 * the class and never for the dead channel, the report warns about the negative logit, writes every share with its sign and never as "-0.0%", defines
 * every column of its tables, labels each reference row and draws the region. In headless Chromium (when
 * there is one, see @crp/testing/chromium) it loads without errors; the screenshot is kept in test-artifacts/.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Dataset } from '@crp/models';
import '@tensorflow/tfjs-backend-wasm';
import { useBackend } from '@crp/testing';
import { browserTestPlan } from '@crp/testing/chromium';
import type { ReportOptions, TableSection } from '@crp/vis';
import { writeReport } from '@crp/vis/node';
import type * as tfl from '@tensorflow/tfjs-layers';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStudyStore, runStudy, type StudyResult, studyReport } from '../src/index.js';
import { blockGroups, blockRange, cautions, signedShare } from '../src/report-format.js';
import { handModel } from './hand-model.js';

useBackend('wasm');

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');
const browser = browserTestPlan();
if (!browser.run) console.warn(browser.reason);

let model: tfl.LayersModel;
let data: Dataset & { classes: string[] };
let result: StudyResult;
let report: ReportOptions;

beforeAll(async () => {
  ({ model, data } = handModel());
  const run = await runStudy(
    model,
    data,
    { target: 'b', samples: 4, topK: 2, region: { centerSquare: 2 }, pruneLayers: ['c2'], pruneConcepts: 1 },
    { store: memoryStudyStore(), identity: 'hand-b' },
  );
  result = run.result;
  report = studyReport(result, run.images);
});
afterAll(() => {
  data.images.dispose();
  model.dispose();
});

const table = (title: string) =>
  report.sections.find((s): s is TableSection => s.kind === 'table' && s.title === title)!;
const text = (cell: unknown) =>
  typeof cell === 'object' && cell !== null && 'text' in cell ? String(cell.text) : String(cell);

describe('the report of a study whose target logit is negative on a sample', () => {
  it('keeps each sample’s target logit: the last image of b (all channel 0) has logit -1/2', () => {
    // b = 2 g1 - g2 with m0 = 1, m1 = 0: g1 = 0, g2 = 1/2
    expect(result.samples.targetLogits[3]).toBeCloseTo(-0.5, 6);
    expect(result.samples.targetLogits.filter((v) => v < 0)).toHaveLength(1);
  });

  it('votes by evidence for the class: the dead channel gets no vote, the negative-logit sample votes against the sign', () => {
    // R(c2) of b is [0, 2 mean(h1), -mean(h2)] per sample (relevance starts as the logit 2 mean(h1) - mean(h2)):
    //   [0, 2, -1/2], [0, 1, -3/8], [0, 2, -1/2] (logits 3/2, 5/8, 3/2), and [0, 0, -1/2] (logit -1/2).
    // Top-2 by relevance times the logit's sign, never a relevance of exactly 0: channel 1 three times, channel 2
    // once (the last sample: its evidence for b is [0, 0, 1/2]); channel 0 never (it used to get all 4 votes).
    const c2 = result.atlas.layers.c2!.ranking;
    expect(c2.map((e) => [e.concept, e.votes])).toEqual([
      [1, 3],
      [2, 1],
      [0, 0],
    ]);
    // shares (abs_norm, mean over the 4 samples): [0.8, 0.7273, 0.8, 0] and [-0.2, -0.2727, -0.2, -1]
    expect(c2[0]!.percent).toBeCloseTo((100 * (0.8 + 1 / 1.375 + 0.8)) / 4, 3);
    expect(c2[1]!.percent).toBeCloseTo((100 * -(0.2 + 0.375 / 1.375 + 0.2 + 1)) / 4, 3);
    expect([c2[2]!.meanRelevance, c2[2]!.percent]).toEqual([0, 0]);
  });

  it('warns about the negative logit; a dead concept is named only where it is listed', () => {
    const caution = report.sections.find((s) => s.title === 'Read with care');
    expect(caution?.kind).toBe('text');
    const markdown = caution?.kind === 'text' ? caution.markdown : '';
    expect(markdown).toContain('negative on **1 of 4** studied samples (lowest -0.50)');
    expect(markdown).toContain('a voted concept can show a negative share');
    // the dead channel 0 of c2 has no vote, so the top-2 rows do not list it
    expect(markdown).not.toMatch(/dead/);
    const rows = table('Global concept atlas').rows;
    expect(rows.filter((r) => text(r.at(-1)).includes('dead'))).toEqual([]);
    // listed it is, with its 0 votes, where fewer than top-k concepts of its layer have votes
    const fewer = structuredClone(result);
    fewer.atlas.layers.c2!.ranking = fewer.atlas.layers.c2!.ranking.filter((e) => e.concept !== 2);
    expect(cautions(fewer).join('\n')).toMatch(
      /\*\*dead\*\*.*0 in c2 \(global, 0\/4\)\. A concept whose relevance is exactly 0 never gets a vote: it is listed only because fewer than 2 concepts of its layer got votes\./,
    );
  });

  it('says what a concept is for the model at hand: a channel or unit of a CNN, heads, neurons and channels of a ViT', () => {
    const overview = (r: StudyResult) => {
      const md = studyReport(r, new Map())
        .sections.map((x) => (x.kind === 'text' ? x.markdown : ''))
        .join('\n');
      return md.match(/A concept is [^;"]*(;[^"]*)?"k\//)?.[0] ?? '';
    };
    expect(result.model.concepts).toBeUndefined();
    expect(overview(result)).toBe('A concept is a channel (conv) or unit (dense); "k/');
    const vit = structuredClone(result);
    const b = 'encoder.layers.encoder_layer_0.';
    vit.model.concepts = {
      [`${b}self_attention.context`]: 'attention head',
      [`${b}mlp.0`]: 'MLP neuron',
      [`${b}mlp.3`]: 'd_model channel',
      [`${b}add_2`]: 'd_model channel',
    };
    expect(overview(vit)).toBe(
      `A concept is an attention head at \`self_attention.context\`, an MLP neuron at \`mlp.0\`, a d_model channel at \`mlp.3\` and \`add_2\` in block 0 (\`${b}\`); neurons and channels are summed over the tokens; "k/`,
    );
  });

  it("groups a transformer's layers by block: one sentence for 48 layers, one line of findings per block", () => {
    const vit = structuredClone(result);
    const kinds = {
      'self_attention.context': 'attention head',
      'mlp.0': 'MLP neuron',
      'mlp.3': 'd_model channel',
      add_2: 'd_model channel',
    } as const;
    const layer = (i: number, name: string) => `encoder.layers.encoder_layer_${i}.${name}`;
    vit.model.concepts = {};
    vit.atlas.layerOrder = [];
    const top = vit.atlas.layers.c2!.ranking[0]!;
    for (let i = 0; i < 12; i++) {
      for (const [name, kind] of Object.entries(kinds)) {
        vit.model.concepts[layer(i, name)] = kind;
        vit.atlas.layerOrder.push(layer(i, name));
        vit.atlas.layers[layer(i, name)] = {
          layer: layer(i, name),
          concepts: 3,
          ranking: [{ ...top, concept: i }],
        };
      }
    }
    const md = studyReport(vit, new Map()).sections[0]!;
    const text = md.kind === 'text' ? md.markdown : '';
    expect(text).toContain(
      'A concept is an attention head at `self_attention.context`, an MLP neuron at `mlp.0`, a d_model channel at `mlp.3` and `add_2` in blocks 0–11 (`encoder.layers.encoder_layer_<i>.`); neurons',
    );
    expect(text).not.toContain('encoder.layers.encoder_layer_11.');
    const lines = text.split('\n').filter((l) => l.startsWith('- '));
    expect(lines).toHaveLength(12);
    const finding = (c: number) =>
      `**${c}** (${top.votes}/${vit.atlas.samples}, ${signedShare(top.percent)})`;
    expect(lines[11]).toBe(
      `- **block 11**: \`self_attention.context\` ${finding(11)} · \`mlp.0\` ${finding(11)} · \`mlp.3\` ${finding(11)} · \`add_2\` ${finding(11)}`,
    );
    // blocks whose layers differ form their own group; a layer outside the blocks is named in full
    delete vit.model.concepts[layer(11, 'self_attention.context')];
    vit.model.concepts['encoder.ln'] = 'd_model channel';
    const md2 = studyReport(vit, new Map()).sections[0]!;
    expect(md2.kind === 'text' ? md2.markdown : '').toContain(
      'in blocks 0–10 (`encoder.layers.encoder_layer_<i>.`); an MLP neuron at `mlp.0`, a d_model channel at `mlp.3` and `add_2` in block 11 (`encoder.layers.encoder_layer_11.`); a d_model channel at `encoder.ln`; neurons',
    );
  });

  it('writes block numbers as runs', () => {
    expect(blockRange([3])).toBe('block 3');
    expect(blockRange([11, 0, 1, 2])).toBe('blocks 0–2, 11');
    expect(blockRange([0, 1, 5, 7, 8, 9])).toBe('blocks 0, 1, 5, 7–9');
    expect(blockGroups(['a.0.x', 'b', 'a.1.x', 'a.2.y'])).toEqual([
      { prefix: 'a.', blocks: [0, 1], names: ['x'] },
      { prefix: '', blocks: [], names: ['b'] },
      { prefix: 'a.', blocks: [2], names: ['y'] },
    ]);
  });

  it('writes shares with their sign and never as a signed zero', () => {
    expect([12.34, -0.04, 0.004, -0.0004, 0, 0.5].map(signedShare)).toEqual([
      '+12.3%',
      '−0.040%',
      '+<0.01%',
      '−<0.01%',
      '0%',
      '+0.50%',
    ]);
    for (const title of ['Global concept atlas', 'Region atlas: the 2x2 centre']) {
      for (const row of table(title).rows) expect(text(row[3])).toMatch(/^([+−](\d+\.\d+|<0\.01)|0)%$/);
    }
  });

  it('defines every column of its tables', () => {
    const obvious = new Set([
      'layer',
      'concept',
      'class',
      'layer below',
      'pruned concepts',
      'note',
      'true \\ predicted',
    ]);
    for (const s of report.sections) {
      if (s.kind !== 'table') continue;
      for (const c of s.columns) {
        const title = typeof c === 'string' ? c : c.title;
        if (obvious.has(title) || result.data.classes.includes(title)) continue;
        expect(s.description, `column '${title}' of '${s.title}'`).toContain(`**${title}**`);
      }
    }
  });

  it('labels each reference row and outlines the region on the heatmaps', () => {
    const refs = report.sections.find((s) => s.title === 'Reference images: c2');
    expect(refs?.kind).toBe('images');
    const captions = refs?.kind === 'images' ? refs.items.map((i) => i.caption) : [];
    expect(captions).toHaveLength(2);
    for (const [i, c] of result.references[0]!.concepts.entries()) {
      expect(captions[i]).toMatch(new RegExp(`^concept ${c.concept}, \\d/4 votes, share .*samples: `));
    }
    const region = report.sections.find((s) => s.title === 'The region');
    const im = region?.kind === 'images' ? region.items[0]!.image : undefined;
    // the 2x2 centre of a 4x4 image: every one of its pixels is on the outline, drawn green
    for (const p of [5, 6, 9, 10]) expect(Array.from(im!.data.slice(p * 3, p * 3 + 3))).toEqual([0, 200, 0]);
    for (const p of [0, 3, 12, 15])
      expect(Array.from(im!.data.slice(p * 3, p * 3 + 3))).not.toEqual([0, 200, 0]);
  });
});

describe.skipIf(!browser.run)('the report in headless Chromium', () => {
  let profile: string;
  beforeAll(async () => {
    profile = await mkdtemp(join(tmpdir(), 'crp-study-chromium-'));
    await mkdir(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    if (profile !== undefined) await rm(profile, { recursive: true, force: true });
  });

  it('loads without errors, every image decodes, and it shows the warning (screenshot in test-artifacts)', async () => {
    const file = join(ARTIFACTS, 'study-report-negative-logit.html');
    await writeReport(file, report);
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: browser.executable!,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
      ],
      viewport: { width: 1200, height: 900 },
    });
    try {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(msg.text());
      });
      page.on('pageerror', (err) => problems.push(err.message));
      await page.goto(pathToFileURL(file).href);
      const broken = await page.$$eval('img', (imgs) =>
        imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.alt),
      );
      expect(broken).toEqual([]);
      expect(problems).toEqual([]);
      const body = (await page.textContent('body')) ?? '';
      expect(body).toContain('Read with care');
      expect(body).not.toMatch(/[-−]0\.0%/);
      await page.screenshot({ path: join(ARTIFACTS, 'study-report-negative-logit.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });
});
