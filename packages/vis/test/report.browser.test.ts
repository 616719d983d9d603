import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { browserTestPlan } from '@crp/testing/chromium';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticHeatmap, syntheticScene } from '../scripts/fixtures.js';
import {
  conceptRelevanceChart,
  conceptTable,
  imgify,
  opacityView,
  overlayHeatmap,
  pruningCurveChart,
  scatterChart,
} from '../src/index.js';
import { writeReport } from '../src/node.js';

const artifacts = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'test-artifacts');
// Chromium from CRP_CHROMIUM, PATH or /usr/bin/chromium. In CI (or with CRP_REQUIRE_BROWSER=1) the test must
// run and a missing browser fails it; elsewhere it is skipped with the reason (or on CRP_SKIP_BROWSER=1).
const browser = browserTestPlan();
if (!browser.run) console.warn(browser.reason);

describe.skipIf(!browser.run)('HTML report in headless Chromium', () => {
  let profile: string;
  const reportPath = join(artifacts, 'report.html');
  let imageCount = 0;

  beforeAll(async () => {
    if (browser.executable === undefined) throw new Error(browser.reason);
    await mkdir(artifacts, { recursive: true });
    profile = await mkdtemp(join(tmpdir(), 'crp-vis-chromium-'));
    const scene = syntheticScene(96);
    const heat = { data: syntheticHeatmap(96), shape: [96, 96] };
    const small = { data: syntheticHeatmap(16), shape: [16, 16] };
    const items = [
      { image: scene, caption: 'input' },
      { image: imgify(heat, { symmetric: true }), caption: 'heatmap (bwr)' },
      { image: overlayHeatmap(scene, heat), caption: 'overlay' },
      { image: opacityView(scene, heat), caption: 'opacity view' },
      { image: imgify(small, { cmap: 'coldnhot', symmetric: true }), caption: '16 px heatmap, pixelated' },
    ];
    const concepts = [
      { concept: 12, layer: 'features.28', relevance: 0.31, images: [items[3]!.image, items[2]!.image] },
      { concept: 7, layer: 'features.28', relevance: 0.12, images: [items[3]!.image] },
      { concept: 40, layer: 'features.28', relevance: -0.05, images: [items[2]!.image] },
    ];
    imageCount = items.length + 4 + 3; // figures, thumbnails, plots
    await writeReport(reportPath, {
      title: 'Concept report: tabby cat',
      subtitle:
        'Which concepts of features.28 the model used, where they are, and what happens without them.',
      meta: { model: 'tiny_vgg', layer: 'features.28', class: 'tabby cat' },
      sections: [
        {
          kind: 'text',
          title: 'Summary',
          markdown:
            'The prediction rests mostly on **concept #12** (31% of the relevance).\n\n- positive relevance is red\n- negative relevance is blue\n\nSee `conceptTable` and [CRP](https://www.nature.com/articles/s42256-023-00711-8).',
        },
        { kind: 'images', title: 'Heatmaps', description: 'Input and its explanations.', items },
        conceptTable(concepts, { title: 'Top concepts', digits: 2 }),
        {
          kind: 'plot',
          title: 'Relevance per layer',
          plot: conceptRelevanceChart(
            [
              { layer: 'features.20', concept: 3, relevance: 0.2 },
              { layer: 'features.20', concept: 9, relevance: -0.08 },
              { layer: 'features.28', concept: 12, relevance: 0.31 },
              { layer: 'features.28', concept: 7, relevance: 0.12 },
            ],
            { width: 300 },
          ),
        },
        {
          kind: 'plot',
          title: 'Pruning',
          plot: pruningCurveChart(
            [
              {
                criterion: 'relevance',
                points: [0, 0.25, 0.5, 0.75, 1].map((f) => ({ fraction: f, accuracy: 0.9 - 0.8 * f ** 3 })),
              },
              {
                criterion: 'random',
                points: [0, 0.25, 0.5, 0.75, 1].map((f) => ({ fraction: f, accuracy: 0.9 - 0.8 * f })),
              },
            ],
            { baseline: 0.9, width: 360, height: 220 },
          ),
          caption: 'Accuracy against fraction pruned',
        },
        {
          kind: 'plot',
          title: 'Embedding',
          plot: scatterChart(
            [0, 1, 2, 3, 4, 5].map((i) => ({
              x: i,
              y: (i * 7) % 5,
              group: i % 2 ? 'a' : 'b',
              label: `#${i}`,
            })),
            { width: 260, height: 200 },
          ),
        },
      ],
    });
  });

  afterAll(async () => {
    if (profile !== undefined) await rm(profile, { recursive: true, force: true });
  });

  it('loads without console errors, every image decodes, and the layout fits desktop and phone', async () => {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: browser.executable!,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1200, height: 900 },
    });
    try {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
      });
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('requestfailed', (req) => problems.push(`request failed: ${req.url().slice(0, 80)}`));
      await page.goto(pathToFileURL(reportPath).href, { waitUntil: 'load' });
      const images = await page.evaluate(() =>
        Array.from(document.images, (img) => ({
          complete: img.complete,
          naturalWidth: img.naturalWidth,
          alt: img.alt,
        })),
      );
      expect(images).toHaveLength(imageCount);
      for (const img of images) {
        expect(img.complete, img.alt).toBe(true);
        expect(img.naturalWidth, img.alt).toBeGreaterThan(0);
      }
      const desktop = await page.evaluate(() => ({
        overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
        columns: getComputedStyle(document.querySelector('.grid')!).gridTemplateColumns.split(' ').length,
        h1: document.querySelector('h1')?.textContent,
        strong: document.querySelector('.prose strong')?.textContent,
      }));
      expect(desktop.overflow).toBeLessThanOrEqual(0);
      expect(desktop.columns).toBeGreaterThanOrEqual(5);
      expect(desktop.h1).toBe('Concept report: tabby cat');
      expect(desktop.strong).toBe('concept #12');
      await page.screenshot({ path: join(artifacts, 'report.png'), fullPage: true });

      await page.setViewportSize({ width: 390, height: 800 });
      const phone = await page.evaluate(() => ({
        overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
        columns: getComputedStyle(document.querySelector('.grid')!).gridTemplateColumns.split(' ').length,
      }));
      expect(phone.overflow).toBeLessThanOrEqual(0);
      expect(phone.columns).toBe(2);
      await page.screenshot({ path: join(artifacts, 'report-phone.png'), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
