/**
 * `pnpm --filter @crp/rag exec tsx scripts/map-screenshot.ts [--index DIR] [--out DIR] [--init pca|random] [--cross-lingual N] [--document-ratio R] [--widths 400,1400] [question ...]`
 *
 * Looks at the map as a user sees it: serves the index (default: `pnpm rag:eval`'s cache folder, only read) on
 * 127.0.0.1 at a free port, asks each question in the page in headless Chromium (Debian's `chromium`; no browser
 * is downloaded) and saves a screenshot of the map at each page width to `<out>/map-<init>-<width>-<n>.png`.
 * `--init random` draws the map as it was before (UMAP from random positions), the default as it is now;
 * `--cross-lingual N` sets the map's `crossLingualNeighbors` (0: the map without cross-lingual neighbours), and
 * the file is then `map-<init>-x<N>-<width>-<n>.png`; `--document-ratio R` its `crossLingualDocumentRatio` (file
 * `map-<init>[-x<N>]-d<R>-<width>-<n>.png`).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { RagEngine, RagIndex, startRagServer, UseLiteEmbedding } from '../src/node.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    index: { type: 'string', default: path.join(os.tmpdir(), 'crp-rag-eval-use-lite-static-512') },
    out: { type: 'string', default: 'test-artifacts' },
    init: { type: 'string', default: 'pca' },
    widths: { type: 'string', default: '400,1400' },
    'cross-lingual': { type: 'string' },
    'document-ratio': { type: 'string' },
  },
});
const questions = positionals.length
  ? positionals
  : ['Why are embeddings stored in a vector database?', 'Wie funktioniert die Regel Epsilon bei LRP?'];
const index = await RagIndex.open({ dir: path.resolve(values.index!), embedding: new UseLiteEmbedding() });
const engine = new RagEngine(index, {
  embeddingMap: {
    init: values.init === 'random' ? 'random' : 'pca',
    ...(values['cross-lingual'] !== undefined
      ? { crossLingualNeighbors: Number(values['cross-lingual']) }
      : {}),
    ...(values['document-ratio'] !== undefined
      ? { crossLingualDocumentRatio: Number(values['document-ratio']) }
      : {}),
  },
});
const server = await startRagServer(engine, { port: 0 });
const executablePath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (!executablePath) throw new Error('Debian chromium is missing: apt-get install -y chromium');
const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
try {
  await mkdir(values.out!, { recursive: true });
  for (const width of values.widths!.split(',').map(Number)) {
    const page = await browser.newPage();
    await page.setViewportSize({ width, height: 1000 });
    await page.goto(`${server.url}/`);
    for (const [n, q] of questions.entries()) {
      // the previous question's map goes, so the one waited for is this question's
      await page.evaluate(() => {
        document.querySelector('#map')!.innerHTML = '';
      });
      await page.fill('#question', q);
      await page.click('#ask');
      await page.waitForSelector('#map svg circle.retrieved', { timeout: 600_000 });
      const variant = [
        values.init,
        ...(values['cross-lingual'] !== undefined ? [`x${values['cross-lingual']}`] : []),
        ...(values['document-ratio'] !== undefined ? [`d${values['document-ratio']}`] : []),
      ].join('-');
      const file = path.join(values.out!, `map-${variant}-${width}-${n + 1}.png`);
      await page.locator('#map svg').screenshot({ path: file });
      const sources = await page.locator('#sources .source').allTextContents();
      console.log(`${file}: ${q}\n  ${sources.map((s) => s.slice(0, 90).replace(/\s+/g, ' ')).join('\n  ')}`);
    }
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
}
