#!/usr/bin/env node
// The repository's test command: runs every package's tests through turbo, then sums the vitest JSON reports
// (test-artifacts/vitest.json of each package) into one closing line "N passed, M failed". Exits non-zero
// when turbo failed, a package wrote no report, or any test or test file failed.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['packages', 'examples'];
const packages = [];
for (const root of roots) {
  if (!existsSync(root)) continue;
  for (const name of readdirSync(root)) {
    const dir = join(root, name);
    if (!existsSync(join(dir, 'package.json'))) continue;
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    if (manifest.scripts?.test) packages.push({ dir, name: manifest.name });
  }
}
// stale reports must not stand in for tests that did not run
for (const p of packages) rmSync(join(p.dir, 'test-artifacts', 'vitest.json'), { force: true });

const turbo = spawnSync(
  join('node_modules', '.bin', 'turbo'),
  ['run', 'test', '--concurrency=2', '--continue', ...process.argv.slice(2)],
  {
    stdio: 'inherit',
    shell: process.platform === 'win32',
  },
);

let passed = 0;
let failed = 0;
let skipped = 0;
let broken = 0;
for (const p of packages) {
  const report = join(p.dir, 'test-artifacts', 'vitest.json');
  if (!existsSync(report)) {
    console.log(`${p.name}: no test report (its tests did not run or crashed)`);
    broken++;
    continue;
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  const suitesFailed = r.numFailedTestSuites ?? 0;
  if (r.success === false && (r.numFailedTests ?? 0) === 0) broken++;
  console.log(
    `${p.name}: ${r.numPassedTests} passed, ${r.numFailedTests} failed${suitesFailed ? ` (${suitesFailed} test files failed)` : ''}`,
  );
}
const extra = skipped > 0 ? `, ${skipped} skipped` : '';
console.log(`${passed} passed, ${failed + broken} failed${extra}`);
process.exit(turbo.status !== 0 || failed + broken > 0 ? 1 : 0);
