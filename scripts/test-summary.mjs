#!/usr/bin/env node
// Sums the vitest JSON reports that every package's `test` script writes to test-artifacts/vitest.json and
// prints one closing line "N passed, M failed" for the whole repository.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['packages', 'examples'];
if (process.argv.includes('--clean')) {
  // remove stale reports so that a package whose tests did not run is counted as failed
  for (const root of roots) {
    if (!existsSync(root)) continue;
    for (const name of readdirSync(root))
      rmSync(join(root, name, 'test-artifacts', 'vitest.json'), { force: true });
  }
  process.exit(0);
}
let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
for (const root of roots) {
  if (!existsSync(root)) continue;
  for (const name of readdirSync(root)) {
    const pkg = join(root, name);
    if (!existsSync(join(pkg, 'package.json'))) continue;
    const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
    if (!manifest.scripts?.test) continue;
    const report = join(pkg, 'test-artifacts', 'vitest.json');
    if (!existsSync(report)) {
      missing.push(pkg);
      continue;
    }
    const r = JSON.parse(readFileSync(report, 'utf8'));
    passed += r.numPassedTests ?? 0;
    failed += r.numFailedTests ?? 0;
    skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    console.log(`${manifest.name}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
  }
}
for (const pkg of missing) console.log(`${pkg}: no test report (tests did not run)`);
const extra = skipped > 0 ? `, ${skipped} skipped` : '';
console.log(`${passed} passed, ${failed + missing.length} failed${extra}`);
process.exit(failed + missing.length > 0 ? 1 : 0);
