#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isCrpError } from '@crp/common';
import { useBackend } from './backend.js';
import { defaultReferenceDir } from './reference-dir.js';
import { formatOutcome, knownKinds, runConformance } from './run.js';

const usage = `usage: pnpm conformance [--kind ${knownKinds().join('|')} ...] [--backend wasm|cpu] [DIR ...]
Runs every golden case of the selected kinds (default: all) in each DIR (default: vendor/reference in the
repository) and prints one line per case with its worst deviation as a multiple of the tolerance.
A DIR holds index.json + cases/ (lrp, crp, relmax), models/, and bundles such as vis/vis_golden.json.
Exit status: 0 every case passed; 1 a case failed, a selected kind has no case, or the reference data are
unreadable or inconsistent (index.json missing, invalid, or not listing every file in cases/); 2 usage error.`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      kind: { type: 'string', multiple: true },
      backend: { type: 'string', default: 'wasm' },
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
  const backend = values.backend;
  if (backend !== 'wasm' && backend !== 'cpu') {
    console.error(`unknown --backend '${backend}'; valid: wasm, cpu`);
    return 2;
  }
  const dirs = positionals.length > 0 ? positionals.map((d) => resolve(d)) : [defaultReferenceDir()];
  for (const dir of dirs) {
    if (!existsSync(dir)) {
      console.error(`reference directory not found: ${dir}`);
      return 2;
    }
  }
  await useBackend(backend);
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

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    // a crash is a failed check, not a usage error
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
