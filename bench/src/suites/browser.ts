/**
 * LRP in headless Chromium: VGG16 (224x224) and the small VGG (64x64) under epsilon_plus_flat on WebGL (the GPU
 * where there is one, else SwiftShader, Chromium's software renderer: slow, recorded for the trend) and, in the
 * same page, on wasm, with the ratio of the two. The page (browser/page.ts) is bundled by esbuild and served
 * on 127.0.0.1; it times with the same `timeRuns` as the Node suites.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundlePage } from '@crp/testing/browser-page';
import { findChromium, gpuPageLaunchOptions } from '@crp/testing/chromium';
import type { Plugin } from 'esbuild';
import { chromium } from 'playwright-core';
import type { BenchMessage } from '../browser/page.js';
import { type BenchResult, median, result, type SuiteContext } from '../measure.js';

const here = dirname(fileURLToPath(import.meta.url));

/** measure.ts reads /proc for peak memory with node:fs; the page never calls that, so fs is an empty module. */
const noNodeFs: Plugin = {
  name: 'no-node-fs',
  setup(b) {
    b.onResolve({ filter: /^node:fs$/ }, () => ({ path: 'node:fs', namespace: 'empty' }));
    b.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({
      contents: 'export function readFileSync() { throw new Error("no file system in a page"); }',
    }));
  },
};

async function bundle(): Promise<string> {
  // esbuild's default NODE_ENV, as the suite's recorded figures were taken with
  return bundlePage(
    { entry: join(here, '..', 'browser', 'page.ts') },
    { plugins: [noNodeFs], production: false },
  );
}

const HTML = `<!doctype html><html><head><meta charset="utf-8"><title>CRP bench</title><link rel="icon" href="data:,"></head>
<body><p>CRP toolkit benchmark: LRP on WebGL and wasm</p><script type="module" src="/bench.js"></script></body></html>`;

export async function browserSuite({ log, quick }: SuiteContext): Promise<BenchResult[]> {
  const executable = findChromium();
  if (executable === undefined) {
    throw new Error(
      "no Chromium found (CRP_CHROMIUM, chromium on PATH, /usr/bin/chromium): 'apt-get install chromium'",
    );
  }
  const script = await bundle();
  const wasmDir = join(
    dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')),
    'dist',
  );
  // cross-origin isolated, so that wasm may use threads as in Node
  const headers = {
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-embedder-policy': 'require-corp',
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    void (async () => {
      if (path === '/') return res.writeHead(200, { ...headers, 'content-type': 'text/html' }).end(HTML);
      if (path === '/bench.js') {
        return res.writeHead(200, { ...headers, 'content-type': 'text/javascript' }).end(script);
      }
      const wasm = /^\/wasm\/([\w.-]+\.wasm)$/.exec(path);
      if (wasm) {
        const bytes = await readFile(join(wasmDir, wasm[1]!));
        return res.writeHead(200, { ...headers, 'content-type': 'application/wasm' }).end(bytes);
      }
      res.writeHead(404).end();
    })().catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = await chromium.launch(gpuPageLaunchOptions(executable));
  const timings: Extract<BenchMessage, { type: 'timing' }>[] = [];
  const backends: Record<string, string> = {};
  try {
    const page = await browser.newPage();
    await new Promise<void>((finish, fail) => {
      page.on('pageerror', (e) => fail(new Error(`uncaught error in the bench page: ${e.message}`)));
      page.on('crash', () => fail(new Error('the bench page crashed (out of memory?)')));
      void page
        .exposeFunction('benchReport', (m: BenchMessage) => {
          if (m.type === 'log') log(m.text);
          else if (m.type === 'backend') {
            backends[m.backend] = m.description;
            log(m.description);
          } else if (m.type === 'timing') {
            timings.push(m);
            log(
              `${m.backend} ${m.name} batch ${m.batch}: median ${median(m.runs).toFixed(0)} ms (${m.runs.length} runs)`,
            );
          } else if (m.type === 'done') finish();
          else fail(new Error(`the bench page failed: ${m.message}`));
        })
        .then(() => page.goto(`${origin}/?quick=${quick ? 1 : 0}`))
        .catch(fail);
    });
  } finally {
    await browser.close();
    await new Promise<void>((ok) => server.close(() => ok()));
  }

  const find = (backend: string, name: string, batch: number) =>
    timings.find((t) => t.backend === backend && t.name === name && t.batch === batch);
  const results: BenchResult[] = [];
  const where = `headless Chromium, ${backends.webgl ?? 'webgl'}`;
  const pairs: { name: string; batch: number; figure: (suffix: string) => string }[] = [
    { name: 'vgg16', batch: 1, figure: (s) => `lrp.vgg16_224.epsilon_plus_flat.${s}_ms` },
    { name: 'small_vgg', batch: 1, figure: (s) => `lrp.small_vgg_64.per_sample_ms.batch1.${s}` },
    { name: 'small_vgg', batch: 16, figure: (s) => `lrp.small_vgg_64.per_sample_ms.batch16.${s}` },
  ];
  for (const { name, batch, figure } of pairs) {
    const webgl = find('webgl', name, batch);
    const wasm = find('wasm', name, batch);
    if (webgl === undefined || wasm === undefined) continue;
    const ratio = median(webgl.runs) / median(wasm.runs);
    const perSample = (ms: number) => ms / batch;
    results.push(
      result(
        figure('webgl'),
        'ms',
        webgl.runs,
        `${where}; ratio webgl/wasm in the same page ${ratio.toFixed(2)}`,
        perSample,
      ),
      result(
        figure('browser_wasm'),
        'ms',
        wasm.runs,
        `headless Chromium, ${backends.wasm ?? 'wasm'}`,
        perSample,
      ),
    );
  }
  return results;
}
