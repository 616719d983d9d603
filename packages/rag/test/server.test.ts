import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashEmbedding, RagEngine, type RagServer, startRagServer } from '../src/node.js';
import { writeSmallCorpus } from './helpers/corpus.js';
import { tempDir } from './helpers/temp-dir.js';

let root = '';
let cleanup: () => Promise<void> = async () => {};
let server: RagServer;
let roomy: RagServer;
let howto: RagServer;
let mixed: RagServer;
// a command a step announces: markup characters, indentation and a line far wider than a phone
const CODE = [
  'for layer in model.modules():',
  '    if depth < 3 and layer.kind == "conv" & mask:',
  '        layer.register(hook, name="relevance_of_the_layer_" + layer.name + "_kept_for_the_heatmap_of_the_concept")',
].join('\n');
beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir());
  await writeSmallCorpus(path.join(root, 'docs'));
  const engine = await RagEngine.open({
    dir: path.join(root, 'index'),
    embedding: new HashEmbedding(),
    generator: null,
  });
  await engine.update(path.join(root, 'docs'));
  server = await startRagServer(engine, { maxBodyBytes: 4096 });
  roomy = await startRagServer(engine); // default body limit (16 KiB)
  const docs = path.join(root, 'howto');
  await mkdir(docs, { recursive: true });
  await writeFile(
    path.join(docs, 'hooks.md'),
    `# Hooks\n\nTo register the hook on every layer, run this loop:\n\n\`\`\`python\n${CODE}\n\`\`\`\n`,
  );
  const steps = await RagEngine.open({
    dir: path.join(root, 'howto-index'),
    embedding: new HashEmbedding(),
    generator: null,
  });
  await steps.update(docs);
  howto = await startRagServer(steps);
  // a German question whose answer quotes a German, then an English passage
  const both = path.join(root, 'mixed');
  await mkdir(both, { recursive: true });
  await writeFile(
    path.join(both, 'vectors.md'),
    '# Vector databases\n\nA vector database stores embeddings so that the passages nearest to a question are found quickly.\n',
  );
  await writeFile(
    path.join(both, 'vektor.md'),
    '# Vektordatenbanken\n\nWir speichern Einbettungen in einer Vektor-Datenbank, weil Sprachmodelle nur eine begrenzte Anzahl an Token lesen.\n',
  );
  const bilingual = await RagEngine.open({
    dir: path.join(root, 'mixed-index'),
    embedding: new HashEmbedding(),
    generator: null,
  });
  await bilingual.update(both);
  mixed = await startRagServer(bilingual);
});
afterAll(async () => {
  await server?.close();
  await roomy?.close();
  await howto?.close();
  await mixed?.close();
  await cleanup();
});

/** Raw HTTP request (keeps `..` in the path, unlike fetch). */
function raw(method: string, urlPath: string, body?: string, type = 'application/json') {
  const u = new URL(server.url);
  return new Promise<{ status: number; json: { error?: { code: string; message: string } } }>(
    (resolve, reject) => {
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          method,
          path: urlPath,
          headers: body ? { 'content-type': type } : {},
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => {
            const text = Buffer.concat(parts).toString('utf8');
            let json = {};
            try {
              json = JSON.parse(text);
            } catch {
              // not JSON
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
        },
      );
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    },
  );
}

/** Debian's chromium: on PATH (chromium, chromium-browser) or in /usr/bin. */
function findChromium(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), '/usr/bin'];
  for (const d of dirs)
    for (const n of ['chromium', 'chromium-browser']) if (existsSync(path.join(d, n))) return path.join(d, n);
  return undefined;
}
const CHROMIUM = findChromium() ?? '/usr/bin/chromium';
const browserRequired = process.env.CI === 'true' || process.env.CRP_REQUIRE_BROWSER === '1';
const skipBrowser = process.env.CRP_SKIP_BROWSER === '1' || (!browserRequired && !existsSync(CHROMIUM));
if (skipBrowser && !existsSync(CHROMIUM)) {
  console.warn(
    `skipping the browser test: ${CHROMIUM} is missing (install it with 'apt-get install -y chromium')`,
  );
}

describe('HTTP server', () => {
  it('binds to 127.0.0.1 and answers questions as JSON', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${server.url}/api/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ question: 'What shard size does the converter create by default?' }),
    });
    expect(res.status).toBe(200);
    const a = (await res.json()) as { answer: string; sources: { citation: string }[] };
    expect(a.answer).toContain('4 MB');
    expect(a.sources[0]!.citation).toBe('[shards.pdf, p. 2]');
  });

  it('rejects bad requests with clear 4xx errors', async () => {
    const empty = await raw('POST', '/api/ask', JSON.stringify({ question: '   ' }));
    expect(empty.status).toBe(400);
    expect(empty.json.error).toEqual({
      code: 'invalid-argument',
      message: 'The question is empty; send {"question": "<non-empty text>"}.',
    });
    const huge = await raw('POST', '/api/ask', JSON.stringify({ question: 'x'.repeat(10_000) }));
    expect(huge.status).toBe(413);
    expect(huge.json.error!.message).toMatch(/at most 4096/);
    // a 10,000-character question within the body limit: 400 with the limit
    const long = await fetch(`${roomy.url}/api/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ question: 'why '.repeat(2500) }),
    });
    expect(long.status).toBe(400);
    expect(await long.json()).toEqual({
      error: {
        code: 'invalid-argument',
        message: 'The question has 9999 characters; at most 2000 are allowed.',
      },
    });
    // a question in a language the analyser does not support, or without any word to search: 400, the reason
    const french = await raw(
      'POST',
      '/api/ask',
      JSON.stringify({ question: 'Pourquoi la règle epsilon est-elle stable ?' }),
    );
    expect(french.status).toBe(400);
    expect(french.json.error!.message).toMatch(/looks French; questions can be asked in English or German/);
    const japanese = await raw(
      'POST',
      '/api/ask',
      JSON.stringify({ question: 'イプシロン規則とは何ですか？' }),
    );
    expect(japanese.json.error!.message).toMatch(/looks Japanese/);
    for (const question of ['What is it?', '?!? ...']) {
      const none = await raw('POST', '/api/ask', JSON.stringify({ question }));
      expect(none.status).toBe(400);
      expect(none.json.error!.message).toMatch(/no words to search for/);
    }
    const unknown = await raw('GET', '/nope');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error!.message).toContain('POST /api/ask');
    const traversal = await raw('GET', '/../../etc/passwd');
    expect(traversal.status).toBe(400);
    expect(traversal.json.error!.code).toBe('bad-path');
    expect((await raw('GET', '/%2e%2e/%2e%2e/etc/passwd')).status).toBe(400);
    expect((await raw('POST', '/api/ask', '{not json')).status).toBe(400);
    expect((await raw('POST', '/api/ask', 'question=x', 'text/plain')).status).toBe(415);
    expect((await raw('GET', '/api/ask')).status).toBe(405);
    expect((await raw('POST', '/api/ask', JSON.stringify({ question: 'x', topK: 500 }))).status).toBe(400);
  });

  // needs Debian's chromium: required in CI (or with CRP_REQUIRE_BROWSER=1), skipped with a message elsewhere
  it.skipIf(skipBrowser)(
    'the page asks, shows the answer, sources, map and heatmaps in headless Chromium without console errors',
    async () => {
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
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
      });
      try {
        const page = await browser.newPage();
        const problems: string[] = [];
        page.on('console', (m) => {
          // the browser logs the refused question's 400 itself; the page shows it, so it is no problem
          if (m.type() === 'error' && !/status of 400/.test(m.text())) problems.push(m.text());
        });
        page.on('pageerror', (e) => problems.push(String(e)));
        await page.setViewportSize({ width: 1400, height: 1000 });
        await page.goto(`${server.url}/`);
        await page.fill('#question', 'Which rule is used for convolutional layers?');
        await page.click('#ask');
        await page.waitForSelector('#map svg circle.retrieved', { timeout: 20_000 });
        expect(await page.textContent('#answer')).toContain('convolutional');
        expect(await page.locator('#answer .quotation').count()).toBeGreaterThan(0);
        expect(await page.getAttribute('#answer-language', 'data-lang')).toBe('en');
        expect(await page.locator('#sources .source').count()).toBeGreaterThan(0);
        // a source's section path reads with one separator ("LRP › Gamma rule"), not "›" then ">"
        const headings = await page.locator('#sources .source h3').allTextContents();
        expect(headings.some((h) => h.includes('LRP › Gamma rule'))).toBe(true);
        expect(headings.filter((h) => h.includes(' > '))).toEqual([]);
        // the shown score is the ranking score, not the fused one it was labelled as
        expect(await page.locator('#sources .scores').first().textContent()).toMatch(
          /^score \d\.\d{3} · embedding /,
        );
        expect(await page.locator('#heatmaps svg.sentence-heatmap').count()).toBeGreaterThan(0);
        expect(await page.locator('#sources svg.keyword-chips').count()).toBeGreaterThan(0);
        const box = await page.locator('#map svg').boundingBox();
        expect(box!.width).toBeGreaterThan(100);

        // the question box: Shift+Enter starts a new line (and asks nothing), Enter asks
        const oneLine = (await page.locator('#question').boundingBox())!.height;
        await page.fill('#question', 'Why are embeddings stored');
        await page.press('#question', 'Shift+Enter');
        await page.locator('#question').pressSequentially('in a vector database?');
        expect(await page.inputValue('#question')).toBe('Why are embeddings stored\nin a vector database?');
        expect((await page.locator('#question').boundingBox())!.height).toBeGreaterThan(oneLine);
        expect(await page.textContent('#answer')).toContain('convolutional');
        // an English question answered from the German source: the page says so, per source too
        await page.fill('#question', 'Why are embeddings stored in a vector database?');
        expect((await page.locator('#question').boundingBox())!.height).toBe(oneLine);
        await page.press('#question', 'Enter');
        await page.waitForFunction(
          () => document.querySelector('#answer-language')?.getAttribute('data-lang') === 'de',
        );
        expect(await page.textContent('#answer-language')).toBe('German');
        expect(await page.textContent('#answer-lang')).toContain('question: English');
        const first = page.locator('#sources .source').first();
        expect(await first.locator('.lang').getAttribute('data-lang')).toBe('de');
        expect(await first.locator('.lang').textContent()).toBe('German');
        // the German quotation comes with its dictionary gloss, marked as such
        await page.waitForSelector('#answer .gloss');
        expect(await page.textContent('#answer .gloss')).toContain('gloss from the dictionary');
        // one label, then each glossed sentence on a line of its own
        const api = await fetch(`${server.url}/api/ask`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            question: 'Why are embeddings stored in a vector database?',
            explain: false,
          }),
        });
        const { sentences } = (await api.json()) as {
          sentences: {
            gloss?: string;
            label: string;
            text: string;
            citation?: string;
            support: { source: number };
          }[];
        };
        // a citation stands after its quotation, outside the quotation marks, not as words of the source
        const citations = sentences.flatMap((s) =>
          s.citation && s.text.endsWith(s.citation) ? [s.citation] : [],
        );
        expect(citations.length).toBeGreaterThan(0);
        expect(await page.locator('#answer .cite').allTextContents()).toEqual(citations);
        for (const q of await page.locator('#answer .quotation').allTextContents())
          expect(
            citations.some((c) => q.includes(c)),
            q,
          ).toBe(false);
        expect(
          await page
            .locator('#answer .cite')
            .evaluateAll((cites) =>
              cites.every((c) => c.previousElementSibling?.classList.contains('quotation')),
            ),
        ).toBe(true);
        const glossed = sentences.map((s) => s.gloss).filter((g): g is string => g !== undefined);
        expect(glossed.length).toBeGreaterThan(1);
        expect(await page.locator('#answer .gloss').count()).toBe(1);
        expect(await page.locator('#answer .gloss-line').allTextContents()).toEqual(glossed);
        // and the quotations of one source in a row are one line of the grounding, not one per sentence
        const runs: string[] = [];
        sentences.forEach((s, i) => {
          const prev = sentences[i - 1];
          if (prev?.label === 'quotation' && prev.support.source === s.support.source) {
            const n = Number(/❝ (\d+) sentences/.exec(runs.at(-1)!)?.[1] ?? 1) + 1;
            runs[runs.length - 1] = `❝ ${n} sentences quoted from source ${s.support.source}`;
          } else runs.push(`❝ quoted from source ${s.support.source}`);
        });
        expect(runs.length).toBeLessThan(sentences.length);
        expect(await page.locator('#grounding .support').allTextContents()).toEqual(runs);
        await page.waitForSelector('#map svg circle.retrieved', { timeout: 20_000 });
        const artifacts = path.join(import.meta.dirname, '..', 'test-artifacts');
        await mkdir(artifacts, { recursive: true });
        await page.screenshot({ path: path.join(artifacts, 'rag-page-1400.png'), fullPage: true });

        // 400 px wide: one column, nothing wider than the screen
        await page.setViewportSize({ width: 400, height: 900 });
        const widest = await page.evaluate(() => document.documentElement.scrollWidth);
        expect(widest).toBeLessThanOrEqual(400);
        const answerBox = await page.locator('#answer').boundingBox();
        const mapBox = await page.locator('#map svg').boundingBox();
        expect(answerBox!.x + answerBox!.width).toBeLessThanOrEqual(400);
        expect(mapBox!.y).toBeGreaterThan(answerBox!.y); // the map is below the answer, not beside it
        // keyword chips and heatmap sentences stay readable (shrunk to the screen, their text had been 7 px);
        // a heatmap scrolls sideways inside its box rather than widen the page
        const shownPx = (selector: string) =>
          page
            .locator(selector)
            .first()
            .evaluate((text) => {
              const svg = text.closest('svg')!;
              const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
              return Number.parseFloat(getComputedStyle(text).fontSize) * scale;
            });
        expect(await shownPx('#sources svg.keyword-chips text')).toBeGreaterThanOrEqual(10);
        expect(
          await shownPx('#heatmaps svg.sentence-heatmap g.sentence text:last-child'),
        ).toBeGreaterThanOrEqual(11);
        // the map's legend too (12 px in a map drawn at 0.6 of its size had been 7 px), on one row inside the map
        expect(await page.locator('#map svg .legend-small').isVisible()).toBe(false);
        expect(await shownPx('#map svg .legend-large text')).toBeGreaterThanOrEqual(11);
        const legend = await page.locator('#map svg').evaluate((svg) => {
          const row = svg.querySelector('.legend-large')!.getBoundingClientRect();
          const texts = Array.from(svg.querySelectorAll('.legend-large text')).map((t) =>
            t.getBoundingClientRect(),
          );
          return { row, texts, map: svg.getBoundingClientRect() };
        });
        expect(legend.row.right).toBeLessThanOrEqual(legend.map.right);
        expect(legend.row.bottom).toBeLessThanOrEqual(legend.map.bottom);
        expect(new Set(legend.texts.map((t) => Math.round(t.top))).size).toBe(1);
        for (const [i, t] of legend.texts.slice(1).entries())
          expect(t.left).toBeGreaterThan(legend.texts[i]!.right);
        const heatmaps = await page.locator('#heatmaps').evaluate((e) => ({
          scroll: e.scrollWidth,
          width: e.clientWidth,
          right: e.getBoundingClientRect().right,
        }));
        expect(heatmaps.scroll).toBeGreaterThan(heatmaps.width);
        expect(heatmaps.right).toBeLessThanOrEqual(400);
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(400);
        await page.screenshot({ path: path.join(artifacts, 'rag-page-400.png'), fullPage: true });

        // a question over the limit is kept whole and the page says why it cannot be sent
        const long = 'Why is the epsilon rule stable? '.repeat(70);
        await page.fill('#question', long);
        expect((await page.inputValue('#question')).length).toBe(long.length);
        // the box grows with the question, up to 40% of the screen, then scrolls (a single line had hidden it)
        const grown = await page.locator('#question').evaluate((q) => ({
          height: q.getBoundingClientRect().height,
          scroll: q.scrollHeight,
          client: q.clientHeight,
          overflow: getComputedStyle(q).overflowY,
        }));
        expect(grown.height).toBeGreaterThan(5 * oneLine);
        expect(grown.height).toBeLessThanOrEqual(0.4 * 900 + 1);
        expect(grown.scroll).toBeGreaterThan(grown.client);
        expect(grown.overflow).toBe('auto');
        const medium = 'Why is the epsilon rule stable? '.repeat(8).trim();
        await page.fill('#question', medium);
        // a shorter one is shown whole, without a scroll bar
        const fits = await page
          .locator('#question')
          .evaluate((q) => ({ scroll: q.scrollHeight, client: q.clientHeight }));
        expect(fits.scroll).toBeLessThanOrEqual(fits.client + 1);
        expect(fits.client).toBeGreaterThan(2 * oneLine);
        await page.fill('#question', long);
        expect(await page.textContent('#count')).toContain(
          `has ${long.trim().length} characters; at most 2000`,
        );
        expect(await page.isDisabled('#ask')).toBe(true);

        // a refused question: its reason, and nothing of the previous question's answer, sources or map
        await page.setViewportSize({ width: 1400, height: 1000 });
        expect(await page.locator('#sources .source').count()).toBeGreaterThan(0);
        await page.fill('#question', 'Pourquoi la règle epsilon est-elle stable ?');
        await page.click('#ask');
        await page.waitForFunction(() => document.getElementById('status')?.textContent?.includes('French'));
        expect(await page.textContent('#answer')).toBe('');
        expect(await page.textContent('#answer-lang')).toBe('');
        expect(await page.textContent('#mode')).toBe('');
        expect(await page.locator('#sources .source').count()).toBe(0);
        expect(await page.locator('#map svg, #heatmaps svg').count()).toBe(0);
        await page.setViewportSize({ width: 400, height: 900 });

        // a step that announces its command: the block keeps its lines (escaped), the step stays highlighted,
        // and at 400 px the long line scrolls inside the block instead of widening the page
        await page.setViewportSize({ width: 1400, height: 1000 });
        await page.goto(`${howto.url}/`);
        await page.fill('#question', 'How do I register the hook on every layer?');
        await page.click('#ask');
        await page.waitForSelector('#answer pre code');
        const code = page.locator('#answer pre code');
        expect(await code.textContent()).toBe(CODE);
        expect(await code.innerHTML()).toContain('depth &lt; 3 and layer.kind == "conv" &amp; mask');
        expect(await page.locator('#answer pre').getAttribute('class')).toMatch(/\bquotation\b/);
        expect(await page.textContent('#answer .highlight')).toBe(
          'To register the hook on every layer, run this loop:',
        );
        expect(await page.textContent('#answer .cite')).toBe('[hooks.md]');
        await page.waitForFunction(() => !document.querySelector('#map')?.textContent?.includes('computing'));
        await page.screenshot({ path: path.join(artifacts, 'rag-page-code-1400.png'), fullPage: true });
        await page.setViewportSize({ width: 400, height: 900 });
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(400);
        const pre = await page.locator('#answer pre').evaluate((e) => ({
          scroll: e.scrollWidth,
          width: e.clientWidth,
          right: e.getBoundingClientRect().right,
        }));
        expect(pre.scroll).toBeGreaterThan(pre.width);
        expect(pre.right).toBeLessThanOrEqual(400);
        await page.screenshot({ path: path.join(artifacts, 'rag-page-code-400.png'), fullPage: true });

        // an answer quoting a German and an English passage is labelled with both languages, in that order
        await page.goto(`${mixed.url}/`);
        await page.fill('#question', 'Warum speichert man Einbettungen in einer Vektor-Datenbank?');
        await page.press('#question', 'Enter');
        await page.waitForSelector('#answer .cite');
        expect(await page.locator('#answer .cite').allTextContents()).toEqual([
          '[vektor.md]',
          '[vectors.md]',
        ]);
        expect(await page.getAttribute('#answer-language', 'data-lang')).toBe('de en');
        expect(await page.locator('#answer-lang .lang').allTextContents()).toEqual(['German', 'English']);
        expect(await page.textContent('#answer-lang')).toContain('quotes');
        expect(problems).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
