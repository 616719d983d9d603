/**
 * Every library package's root entry point in a real Vite production build for the browser, as an application
 * would bundle it: the build pulls in no Node built-in (not even through a dependency), and each bundle loads
 * and runs in headless Chromium without an error. (packages/common/test/browser-entries.test.ts checks the same
 * roots with esbuild, TF.js left out; here TF.js is bundled too.) Bundles are made from the TypeScript
 * sources, so the packages need not be built.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { builtinModules } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { browserTestPlan, HEADLESS_CHROMIUM_ARGS } from '@crp/testing/chromium';
import { chromium } from 'playwright-core';
import { build, type Plugin } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const packagesDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const repoRoot = resolve(packagesDir, '..');
/** The library packages (as in common's browser-entries test). */
const LIBRARIES = ['common', 'lrp', 'core', 'vis', 'models', 'attribution', 'pruning', 'evaluation', 'rag'];
const nodeBuiltins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/**
 * Node built-ins that a dependency imports only inside a guard, with a browser path beside it. seedrandom (used
 * by TF.js for seeded random ops) tries `require('crypto')` in a try/catch and falls back to the browser's
 * crypto; Vite replaces it with an empty module, which is what the guard expects.
 */
const GUARDED = [{ builtin: 'crypto', importer: /\/seedrandom\/seedrandom\.js$/ }];

/** '@crp/x' and '@crp/x/sub' to packages/x/src/index.ts and packages/x/src/sub.ts; records Node built-ins. */
function workspace(found: string[]): Plugin {
  return {
    name: 'crp-sources',
    enforce: 'pre',
    resolveId(source, importer) {
      const bare = source.startsWith('node:') ? source : source.split('/')[0]!;
      if (nodeBuiltins.has(source) || nodeBuiltins.has(bare)) {
        const guarded = GUARDED.some((g) => g.builtin === bare && g.importer.test(importer ?? ''));
        if (guarded) return null;
        // recorded and left out, so the build goes on and the test lists every one
        found.push(`${source} (imported by ${relative(repoRoot, importer ?? '?')})`);
        return { id: source, external: true };
      }
      const m = /^@crp\/([^/]+)(?:\/(.+))?$/.exec(source);
      if (m === null) return null;
      const file = join(packagesDir, m[1]!, 'src', `${m[2] ?? 'index'}.ts`);
      return existsSync(file) ? file : null;
    },
  };
}

const browser = browserTestPlan();
if (!browser.run) console.warn(browser.reason);

describe('root entry points in a Vite browser build', () => {
  let work: string;
  const found: string[] = [];
  let outDir: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'crp-vite-'));
    outDir = join(work, 'dist');
    const input: Record<string, string> = {};
    for (const name of LIBRARIES) {
      // every export kept (a namespace that escapes), and a page that reports how many there are
      await writeFile(
        join(work, `${name}.js`),
        `import * as m from '@crp/${name}';\nwindow.crpExports = Object.keys(m).filter((k) => m[k] !== undefined).length;\n`,
      );
      await writeFile(
        join(work, `${name}.html`),
        `<link rel="icon" href="data:,">\n<script type="module" src="./${name}.js"></script>\n`,
      );
      input[name] = join(work, `${name}.html`);
    }
    await build({
      root: work,
      configFile: false,
      logLevel: 'error',
      plugins: [workspace(found)],
      build: { outDir, emptyOutDir: true, reportCompressedSize: false, rollupOptions: { input } },
    });
  }, 300_000);

  afterAll(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('pulls in no Node built-in, also not transitively', () => {
    expect([...new Set(found)].sort()).toEqual([]);
  });

  it('and the check sees a Node built-in where there is one: a /node entry point', async () => {
    const control: string[] = [];
    await writeFile(join(work, 'control.js'), `export * from '@crp/common/node';\n`);
    await build({
      root: work,
      configFile: false,
      logLevel: 'silent',
      plugins: [workspace(control)],
      build: {
        outDir: join(work, 'control-dist'),
        reportCompressedSize: false,
        lib: { entry: join(work, 'control.js'), formats: ['es'], fileName: 'control' },
      },
    });
    expect(control).toContain('node:fs/promises (imported by packages/common/src/atomic-write.ts)');
  });

  it('writes one page per package', async () => {
    const files = await readdir(outDir);
    for (const name of LIBRARIES) expect(files).toContain(`${name}.html`);
  });

  it.skipIf(!browser.run)('each bundle loads in headless Chromium without an error', async () => {
    if (browser.executable === undefined) throw new Error(browser.reason);
    const server = createServer((req, res) => {
      const file = join(outDir, new URL(req.url ?? '/', 'http://x').pathname);
      if (!file.startsWith(outDir) || !existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      const type = extname(file) === '.js' ? 'text/javascript' : 'text/html';
      res.writeHead(200, { 'content-type': type }).end(readFileSync(file));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const b = await chromium.launch({
      executablePath: browser.executable,
      args: [...HEADLESS_CHROMIUM_ARGS],
    });
    try {
      for (const name of LIBRARIES) {
        const page = await b.newPage();
        const problems: string[] = [];
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        page.on('console', (m) => {
          if (m.type() === 'error') problems.push(`console: ${m.text()}`);
        });
        await page.goto(`${origin}/${name}.html`);
        const count = await page.waitForFunction(() => (window as { crpExports?: number }).crpExports, null, {
          timeout: 60_000,
        });
        expect(await count.jsonValue(), name).toBeGreaterThan(0);
        expect(problems, name).toEqual([]);
        await page.close();
      }
    } finally {
      await b.close();
      await new Promise<void>((ok) => server.close(() => ok()));
    }
  });
});
