import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundlePage as bundle } from '@crp/testing/browser-page';
import { gpuPageLaunchOptions } from '@crp/testing/chromium';
import { chromium } from 'playwright-core';
import type { CaseOutcome } from '../types.js';
import { type BrowserBackend, type PageMessage, type PageRequest, REPORT_FUNCTION } from './protocol.js';
import { startPageServer } from './server.js';

export interface BrowserRunOptions {
  /** Chromium to launch (see findChromium of @crp/testing). */
  executable: string;
  dirs: string[];
  kinds: string[];
  backend: BrowserBackend;
  /** Called for each case, in order. */
  onCase?: (outcome: CaseOutcome) => void;
  /** Called once the backend runs, with what it runs on (e.g. the WebGL renderer and precision flags). */
  onBackend?: (description: string) => void;
  /** Longest time without a message from the page; default 10 minutes (SwiftShader is slow). */
  idleTimeoutMs?: number;
}

/** How a run in the browser ended. */
export type BrowserRunResult =
  | { status: 'done'; passed: number; failed: number }
  /** The backend does not exist in this browser (WebGPU without an adapter): nothing ran. */
  | { status: 'unavailable'; reason: string }
  /** The reference data could not be checked (same as the CrpError of a Node run). */
  | { status: 'not-run'; reason: string };

const here = dirname(fileURLToPath(import.meta.url));

/** The page script, bundled for the browser: this folder's page.ts from the sources, page.js from dist. */
async function bundlePage(): Promise<string> {
  const entry = join(here, `page${extname(fileURLToPath(import.meta.url))}`);
  return bundle({ entry });
}

const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CRP conformance</title>
<style>body{font:13px ui-monospace,monospace;margin:1rem}pre{white-space:pre-wrap}</style></head>
<body><h1>CRP toolkit: golden cases in the browser</h1><pre id="log"></pre>
<script type="module" src="/runner.js"></script></body></html>`;

/**
 * Runs the golden cases in headless Chromium: bundles page.ts, serves it with the reference directories on
 * 127.0.0.1 (a free port), opens it with the backend and kinds in its URL, and relays what the page reports.
 * Rejects when the page crashes, logs an uncaught error or stays silent longer than `idleTimeoutMs`.
 */
export async function runInBrowser(options: BrowserRunOptions): Promise<BrowserRunResult> {
  const script = await bundlePage();
  const wasmDir = join(
    dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')),
    'dist',
  );
  const server = await startPageServer({ html, script, wasmDir, roots: options.dirs });
  const profile = await mkdtemp(join(tmpdir(), 'crp-conformance-chromium-'));
  let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, gpuPageLaunchOptions(options.executable));
    const page = context.pages()[0] ?? (await context.newPage());
    const idle = options.idleTimeoutMs ?? 600_000;
    return await new Promise<BrowserRunResult>((finish, fail) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const alive = () => {
        clearTimeout(timer);
        timer = setTimeout(
          () => fail(new Error(`the page said nothing for ${Math.round(idle / 1000)} s; stopped`)),
          idle,
        );
      };
      const end = (f: () => void) => {
        clearTimeout(timer);
        f();
      };
      page.on('pageerror', (err) => end(() => fail(new Error(`uncaught error in the page: ${err.message}`))));
      page.on('crash', () => end(() => fail(new Error('the page crashed (out of memory?)'))));
      void page
        .exposeFunction(REPORT_FUNCTION, (message: PageMessage) => {
          alive();
          switch (message.type) {
            case 'backend':
              options.onBackend?.(message.description);
              break;
            case 'case':
              options.onCase?.(message.outcome);
              break;
            case 'done':
              end(() => finish({ status: 'done', passed: message.passed, failed: message.failed }));
              break;
            case 'unavailable':
              end(() => finish({ status: 'unavailable', reason: message.reason }));
              break;
            case 'not-run':
              end(() => finish({ status: 'not-run', reason: message.message }));
              break;
            case 'crash':
              end(() => fail(new Error(`the page failed: ${message.message}`)));
              break;
          }
        })
        .then(() => {
          const request: PageRequest = { dirs: options.dirs, kinds: options.kinds, backend: options.backend };
          alive();
          return page.goto(`${server.origin}/?run=${encodeURIComponent(JSON.stringify(request))}`);
        })
        .catch((err: unknown) => end(() => fail(err)));
    });
  } finally {
    await context?.close();
    await server.close();
    await rm(profile, { recursive: true, force: true });
  }
}
