#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isCrpError } from '@crp/common';
import { useBackend } from './backend.js';
import { BROWSER_BACKENDS, type BrowserBackend } from './browser/protocol.js';
import { defaultReferenceDir } from './reference-dir.js';
import { formatOutcome, knownKinds, runConformance } from './run.js';

const usage = `usage: pnpm conformance [--kind ${knownKinds().join('|')} ...] [--backend wasm|cpu] [DIR ...]
       pnpm conformance --browser [--backend webgl|webgpu|wasm|cpu] [--kind ...] [DIR ...]
Runs every golden case of the selected kinds (default: all) in each DIR (default: vendor/reference in the
repository) and prints one line per case with its worst deviation as a multiple of the tolerance.
A DIR holds index.json + cases/ (lrp, crp, relmax), models/, bundles such as vis/vis_golden.json, and vit/
(index.json + cases/ of its own: AttnLRP, CP-LRP and CRP on a small ViT, from LXT).
--browser runs the same cases inside headless Chromium (CRP_CHROMIUM, else chromium on PATH, else
/usr/bin/chromium; never downloaded) on a TF.js browser backend (default webgl; SwiftShader where there is
no GPU); the DIRs are served to the page on 127.0.0.1.
Exit status: 0 every case passed; 1 a case failed, a selected kind has no case, the reference data are
unreadable or inconsistent (index.json missing, invalid, or not listing every file in cases/), or no
Chromium was found; 2 usage error; 3 the browser has no such backend (e.g. WebGPU without an adapter):
nothing ran, reported as unavailable.`;

const NODE_BACKENDS = ['wasm', 'cpu'] as const;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      kind: { type: 'string', multiple: true },
      backend: { type: 'string' },
      browser: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const kinds = (values.kind ?? []).flatMap((k) => k.split(',')).filter((k) => k.length > 0);
  for (const k of kinds) {
    if (!knownKinds().includes(k)) {
      console.error(`unknown --kind '${k}'; valid kinds: ${knownKinds().join(', ')}`);
      return 2;
    }
  }
  const valid: readonly string[] = values.browser ? BROWSER_BACKENDS : NODE_BACKENDS;
  const backend = values.backend ?? (values.browser ? 'webgl' : 'wasm');
  if (!valid.includes(backend)) {
    console.error(
      `unknown --backend '${backend}'${values.browser ? ' in the browser' : ''}; valid: ${valid.join(', ')}${values.browser ? '' : ' (webgl and webgpu with --browser)'}`,
    );
    return 2;
  }
  const dirs = positionals.length > 0 ? positionals.map((d) => resolve(d)) : [defaultReferenceDir()];
  for (const dir of dirs) {
    if (!existsSync(dir)) {
      console.error(`reference directory not found: ${dir}`);
      return 2;
    }
  }
  if (values.browser) return runBrowser(dirs, kinds, backend as BrowserBackend);
  await useBackend(backend as (typeof NODE_BACKENDS)[number]);
  let summary: Awaited<ReturnType<typeof runConformance>>;
  try {
    summary = await runConformance(dirs, {
      kinds,
      onCase: (o) => console.log(formatOutcome(o)),
    });
  } catch (err) {
    // unusable reference data (unreadable, inconsistent, or nothing of a selected kind): a failed check
    if (isCrpError(err)) {
      console.error(`conformance not run: ${err.message}`);
      return 1;
    }
    throw err;
  }
  console.log(`${summary.passed} passed, ${summary.failed} failed`);
  return summary.failed > 0 ? 1 : 0;
}

async function runBrowser(dirs: string[], kinds: string[], backend: BrowserBackend): Promise<number> {
  const { findChromium, browserTestPlan } = await import('@crp/testing/chromium');
  const executable = findChromium();
  if (executable === undefined) {
    console.error(`conformance not run: ${browserTestPlan({ ...process.env, CI: 'true' }).reason}`);
    return 1;
  }
  const { runInBrowser } = await import('./browser/run-browser.js');
  const result = await runInBrowser({
    executable,
    dirs,
    kinds,
    backend,
    onBackend: (description) => console.log(`backend ${backend} in ${executable}: ${description}`),
    onCase: (o) => console.log(formatOutcome(o)),
  });
  if (result.status === 'unavailable') {
    console.log(
      `${backend} unavailable in this Chromium: ${result.reason}; no case ran (neither passed nor failed)`,
    );
    return 3;
  }
  if (result.status === 'not-run') {
    console.error(`conformance not run: ${result.reason}`);
    return 1;
  }
  console.log(`${result.passed} passed, ${result.failed} failed`);
  return result.failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    // a crash is a failed check, not a usage error
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
