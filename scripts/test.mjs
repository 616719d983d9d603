#!/usr/bin/env node
// The repository's test command: runs every package's tests through turbo, then sums the vitest JSON reports
// (test-artifacts/vitest.json of each package) into one closing line "N passed, M failed". Exits non-zero
// when turbo failed, a package wrote no report, or any test or test file failed, and in CI (CI=true or
// CRP_REQUIRE_BROWSER=1) also when any test was skipped: there every test must run.
//
// Runs under tsx (root package.json) to share the Chromium finder of @crp/testing with the browser tests.
// Which Chromium exists decides whether a browser test runs, so its path and version are handed to turbo as
// CRP_CHROMIUM / CRP_CHROMIUM_VERSION, which turbo.json lists in the test task's `env`: they are part of the
// cache key (a report cached on a machine without Chromium, with the browser test skipped, is never replayed
// on one that has it) and reach vitest (turbo's strict env mode passes only declared variables).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { chromiumVersion, findChromium } from '../packages/testing/src/chromium.ts';

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
// with turbo arguments (e.g. --filter=@crp/vis) only the packages in their scope are expected to report
const args = process.argv.slice(2);
if (args.length > 0) {
  const dry = spawnSync(join('node_modules', '.bin', 'turbo'), ['run', 'test', '--dry=json', ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (dry.status !== 0) {
    process.stderr.write(dry.stderr);
    process.exit(1);
  }
  const inScope = new Set(
    JSON.parse(dry.stdout)
      .tasks.filter((t) => t.task === 'test' && t.command !== '<NONEXISTENT>')
      .map((t) => t.package),
  );
  packages.splice(0, packages.length, ...packages.filter((p) => inScope.has(p.name)));
}
// stale reports must not stand in for tests that did not run
for (const p of packages) rmSync(join(p.dir, 'test-artifacts', 'vitest.json'), { force: true });

const chromium = findChromium();
const chromiumEnv = {
  CRP_CHROMIUM: chromium ?? '',
  CRP_CHROMIUM_VERSION: (chromium && chromiumVersion(chromium)) ?? '',
};
console.log(
  chromium
    ? `chromium: ${chromium} (${chromiumEnv.CRP_CHROMIUM_VERSION || 'version unknown'})`
    : 'chromium: none found',
);
const strict = process.env.CI === 'true' || process.env.CRP_REQUIRE_BROWSER === '1';

const turbo = spawnSync(
  join('node_modules', '.bin', 'turbo'),
  ['run', 'test', '--concurrency=2', '--continue', ...args],
  {
    stdio: 'inherit',
    shell: process.platform === 'win32',
    env: { ...process.env, ...chromiumEnv },
  },
);

let passed = 0;
let failed = 0;
let skipped = 0;
let broken = 0;
const skippedNames = [];
/** Each failed test and failed file with the first lines of its message: the summary is what a CI log keeps when
 * it keeps only its end, and a failure must say there what failed. */
const failures = [];
/** Tests that passed only on a retry (a browser test in CI), with their first failure: flaky, never silent. */
const flaky = [];
// vitest 4.1's timeout error keeps the stack of where the test was declared under the header of a placeholder
// ("Error: STACK_TRACE_ERROR"; vitest-dev/vitest#10872), and its JSON report writes the stack, not the message
const TIMEOUT_PLACEHOLDER = /^Error: STACK_TRACE_ERROR$/gm;
const firstLines = (text) =>
  stripVTControlCharacters(String(text ?? ''))
    .replace(
      TIMEOUT_PLACEHOLDER,
      "Error: timed out (vitest's timeout error: the test or hook took longer than its timeout)",
    )
    .split('\n')
    .filter((line) => line.trim() !== '' && !/^\s*at (.*(node_modules|node:internal)|new Promise)/.test(line))
    .slice(0, 6)
    .map((line) => `      ${line.slice(0, 300)}`);
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
  for (const file of r.testResults ?? []) {
    let failedTests = 0;
    for (const t of file.assertionResults ?? []) {
      if (t.status === 'failed') {
        failedTests++;
        failures.push(`  ${p.name}: ${t.fullName}`, ...firstLines((t.failureMessages ?? []).join('\n')));
      } else if (t.status === 'passed' && (t.failureMessages ?? []).length > 0) {
        flaky.push(`  ${p.name}: ${t.fullName}`, ...firstLines(t.failureMessages.join('\n')));
      } else if (t.status !== 'passed') skippedNames.push(`${p.name}: ${t.fullName} (${t.status})`);
    }
    // a file that failed outside its tests (an import, a hook): its own message
    if (file.status === 'failed' && failedTests === 0)
      failures.push(`  ${p.name}: ${file.name} (the file failed)`, ...firstLines(file.message));
  }
  // files, not vitest's numFailedTestSuites, which also counts each describe block of a failed test
  const filesFailed = (r.testResults ?? []).filter((f) => f.status === 'failed').length;
  if (r.success === false && (r.numFailedTests ?? 0) === 0) broken++;
  console.log(
    `${p.name}: ${r.numPassedTests} passed, ${r.numFailedTests} failed${filesFailed ? ` (${filesFailed} test file${filesFailed === 1 ? '' : 's'} failed)` : ''}`,
  );
}
if (strict && skipped > 0) {
  // in CI a skipped test is a test that did not run: it must not pass
  console.log(`CI: ${skipped} tests were skipped, and every test must run here:`);
  for (const name of skippedNames) console.log(`  ${name}`);
  broken += skipped;
}
if (flaky.length > 0) {
  console.log('passed only on a retry (flaky; the first attempt failed with):');
  for (const line of flaky) console.log(line);
}
if (failures.length > 0) {
  console.log('failed:');
  for (const line of failures) console.log(line);
}
const extra = skipped > 0 ? `, ${skipped} skipped` : '';
console.log(`${passed} passed, ${failed + broken} failed${extra}`);
process.exit(turbo.status !== 0 || failed + broken > 0 ? 1 : 0);
