#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { useBackend } from './backend.js';
import { knownKinds, runConformance } from './run.js';

const usage = `usage: pnpm conformance [--kind lrp|crp|relmax|region|vis ...] [--backend wasm|cpu] [DIR ...]
Runs every golden case of the selected kinds (default: all) in each DIR (default: ../shared/reference next to
the repository) and prints one line per case with its worst deviation as a multiple of the tolerance.`;

function defaultReferenceDir(): string {
  // packages/conformance/{src,dist}/cli.* -> repository root -> ../shared/reference
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  return join(repoRoot, '..', 'shared', 'reference');
}

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
  const summary = await runConformance(dirs, {
    kinds,
    onCase: (o) => {
      const worst = Number.isFinite(o.worst) ? o.worst.toFixed(4) : 'inf';
      console.log(
        `${o.passed ? 'PASS' : 'FAIL'} ${o.kind.padEnd(6)} ${o.id.padEnd(52)} worst/tol=${worst}  ${o.detail}`,
      );
    },
  });
  console.log(`${summary.passed} passed, ${summary.failed} failed`);
  return summary.failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(2);
  },
);
