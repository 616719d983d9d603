import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RagEngine, RagIndex } from '../src/index.js';
import { createLlmGenerator, HashEmbedding, type RagServer, startRagServer } from '../src/node.js';
import { json, startFakeServer } from './helpers/fake-server.js';

// A fake Ollama on 127.0.0.1 that writes the answer in pieces and holds the last piece until the test lets it
// go: so the page is seen with part of the answer (streaming), deterministically, without any timing.
const PIECES = ['Shards are ', '4 MB by default [1]. ', 'They are stored on the moon [1].'];
const line = (content: string, done = false) =>
  `${JSON.stringify({ model: 'llama-test', created_at: new Date(0).toISOString(), message: { role: 'assistant', content }, done, ...(done ? { done_reason: 'stop' } : {}) })}\n`;
let release: () => void = () => {};
/** Whether the fake Ollama holds the last piece until `release()` (the browser test sets it). */
let hold = false;
let ollama: Awaited<ReturnType<typeof startFakeServer>>;
let server: RagServer;
let down: RagServer;
beforeAll(async () => {
  ollama = await startFakeServer((req, res) => {
    if (req.url !== '/api/chat') return json(res, 404, { error: 'unknown' });
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(line(PIECES[0]!));
    res.write(line(PIECES[1]!));
    const held = hold
      ? new Promise<void>((r) => {
          release = r;
        })
      : Promise.resolve();
    void held.then(() => {
      res.write(line(PIECES[2]!));
      res.end(line('', true));
    });
  });
  const index = new RagIndex({ embedding: new HashEmbedding(), translator: null });
  await index.updateFiles([
    {
      file: 'converter.md',
      bytes: new TextEncoder().encode(
        '# Converter\n\nThe command above creates shards of size 4 MB by default. Smaller shards load faster.\n\n## Weights\n\nWeights are stored in binary files next to model.json.\n\n## Loading\n\nThe browser loads the shards in parallel.',
      ),
    },
  ]);
  const engine = new RagEngine(index);
  const generator = createLlmGenerator({ provider: 'ollama', model: 'llama-test', baseURL: ollama.url });
  server = await startRagServer(engine, { generator });
  // an Ollama that is down: nothing listens on the port of a closed server
  const closed = await startFakeServer(() => {});
  const deadUrl = closed.url;
  await closed.close();
  down = await startRagServer(engine, {
    generator: createLlmGenerator({ provider: 'ollama', model: 'llama-test', baseURL: deadUrl }),
  });
});
afterAll(async () => {
  release();
  await server?.close();
  await down?.close();
  await ollama?.close();
});

const QUESTION = 'What shard size does the converter create by default?';
const post = (base: string, body: unknown) =>
  fetch(`${base}/api/ask`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** The server-sent events of a response, in order. */
async function events(res: Response): Promise<{ name: string; data: unknown }[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter(Boolean)
    .map((block) => ({
      name: /^event: (.*)$/m.exec(block)![1]!,
      data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) as unknown,
    }));
}

describe('POST /api/ask with stream: true', () => {
  it('sends the model pieces as token events, then the answer with every sentence checked', async () => {
    const res = await post(server.url, { question: QUESTION, explain: false, stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const list = await events(res);
    const tokens = list.filter((e) => e.name === 'token').map((e) => (e.data as { text: string }).text);
    expect(tokens.join('')).toBe(PIECES.join(''));
    expect(list.map((e) => e.name)).toEqual([...tokens.map(() => 'token'), 'answer']);
    const answer = list.at(-1)!.data as { mode: string; sentences: { label: string }[] };
    expect(answer.mode).toBe('ollama:llama-test');
    expect(answer.sentences.map((s) => s.label)).toEqual(['supported', 'unsupported']);
  });

  it('generate: false answers without the model (the page asks so for the explanation views)', async () => {
    const before = ollama.requests.length;
    const res = await post(server.url, { question: QUESTION, explain: true, generate: false });
    const a = (await res.json()) as { mode: string; explanation?: unknown };
    expect(a.mode).toBe('extractive');
    expect(a.explanation).toBeDefined();
    expect(ollama.requests.length).toBe(before);
    const bad = await post(server.url, { question: QUESTION, stream: 'yes' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: { code: 'invalid-argument', message: 'stream must be true or false.' },
    });
  });

  it('a model that is down before any text is a plain 503 JSON error, not a stream', async () => {
    const res = await post(down.url, { question: QUESTION, stream: true });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('unreachable');
    expect(body.error.message).toMatch(
      /^ollama:llama-test did not answer .*; asked at http:\/\/127\.0\.0\.1:\d+: start Ollama/,
    );
  });
});

const chromiumPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const browserRequired = process.env.CI === 'true' || process.env.CRP_REQUIRE_BROWSER === '1';
const skipBrowser = process.env.CRP_SKIP_BROWSER === '1' || (!browserRequired && !chromiumPath);

describe('the page streams a local model answer', () => {
  it.skipIf(skipBrowser)(
    'shows the pieces as they come, then the checked answer with the unsupported sentence marked',
    async () => {
      const browser = await chromium.launch({
        executablePath: chromiumPath ?? '/usr/bin/chromium',
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--no-first-run',
          '--disable-background-networking',
        ],
      });
      try {
        hold = true;
        const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
        await page.goto(`${server.url}/`);
        await page.fill('#question', QUESTION);
        await page.click('#ask');
        // two pieces are written, the third is held by the fake Ollama: the page shows what is there
        await page.waitForFunction(
          (text) => document.getElementById('answer')?.textContent === text,
          PIECES[0]! + PIECES[1]!,
        );
        expect(await page.getAttribute('#answer', 'class')).toBe('streaming');
        expect(await page.textContent('#mode')).toMatch(/writing/);
        expect(await page.locator('#answer .unsupported').count()).toBe(0);
        release();
        // complete: each sentence checked against the sources, the invented one flagged
        await page.waitForSelector('#answer .unsupported');
        expect(await page.textContent('#answer .unsupported')).toContain('moon');
        expect(await page.textContent('#mode')).toMatch(/ollama:llama-test, not fully grounded/);
        expect(await page.getAttribute('#answer', 'class')).toBe('');
        await page.waitForSelector('#map svg, #map p');
      } finally {
        await browser.close();
      }
    },
    120_000,
  );
});
