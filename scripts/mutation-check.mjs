#!/usr/bin/env node
// Mutation check: plants one deliberate bug at a time in the code whose numbers matter (an LRP rule, a CRP mask,
// an atlas vote, the .pth reader's storage offsets, the exact sums that merge shards, the queue's once-only merge,
// the RAG's grounding check), runs the tests that should notice, and restores the file. Every bug must make at
// least one test fail; the report names the tests that caught it. Exit 1 when a bug survives or a mutation site is
// gone (the code moved: update the table below).
//
//   pnpm mutation:check                 # all mutants (each: its tests unchanged first, then with the bug)
//   pnpm mutation:check --only pth-offset,rag-grounding  # some of them; --no-baseline skips the unchanged runs
//   pnpm mutation:check --sites         # only checks that every mutation site is still there (after a merge)
//
// Files are changed in place (written to a temporary name and renamed) and restored in a finally block and on
// SIGINT/SIGTERM; run it in a clean work tree. Tests import the package's own src, so no build is needed.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

/** The planted bugs: `find` must occur exactly once in `file`; `tests` are run in `packages/<pkg>`. */
const MUTANTS = [
  {
    id: 'lrp-zplus',
    pkg: 'lrp',
    file: 'src/rules/lrp-rules.ts',
    bug: 'ZPlus drops the x- W- branch (only positive inputs are explained)',
    find: `      { input: 'negative', params: P.negative(false) },
    ],
    gradientMapper: (r, [a, b]) => {
      const s = tf.div(r, stabilize(tf.add(a!, b!), stabilizer));
      return [s, s];
    },
    reducer: [{ branch: 0 }, { branch: 1 }],`,
    replace: `      { input: 'negative', params: P.negative(false) },
    ],
    gradientMapper: (r, [a, b]) => {
      const s = tf.div(r, stabilize(tf.add(a!, b!), stabilizer));
      return [s, s];
    },
    reducer: [{ branch: 0 }],`,
    tests: ['test/rules.test.ts', 'test/composites.test.ts', 'test/conservation.test.ts'],
  },
  {
    id: 'core-mask',
    pkg: 'core',
    file: 'src/concepts/channel-concept.ts',
    bug: "a channel mask also keeps channel 0 (a condition's relevance leaks through one extra channel)",
    find: '    const data = new Float32Array(channels);\n    for (const i of indices) data[i] = 1;\n',
    replace:
      '    const data = new Float32Array(channels);\n    for (const i of indices) data[i] = 1;\n    data[0] = 1;\n',
    tests: ['test/concepts.test.ts', 'test/equivalence.test.ts'],
  },
  {
    id: 'attribution-vote',
    pkg: 'attribution',
    file: 'src/atlas.ts',
    bug: 'each sample votes for one concept fewer than topK',
    find: 'for (const k of votedConcepts(row, topK, logits[r]!)) entry.votes[k]! += 1;',
    replace: 'for (const k of votedConcepts(row, topK - 1, logits[r]!)) entry.votes[k]! += 1;',
    tests: ['test/atlas.test.ts'],
  },
  {
    id: 'pth-offset',
    pkg: 'models',
    file: 'src/pth.ts',
    bug: 'the .pth reader reads a contiguous float32 tensor at its storage offset in elements, not bytes',
    find: 'const slice = bytes.subarray(e.storageOffset * 4, (e.storageOffset + numel) * 4);',
    replace: 'const slice = bytes.subarray(e.storageOffset, e.storageOffset + numel * 4);',
    tests: ['test/pth.test.ts'],
  },
  {
    id: 'exact-sum',
    pkg: 'common',
    file: 'src/exact-sum.ts',
    bug: 'the exact sum that merges shards drops its rounding errors (a plain floating-point sum)',
    find: '    if (lo !== 0) sum[kept++] = lo;',
    replace: '',
    tests: ['test/exact-sum.test.ts'],
  },
  {
    id: 'queue-merge',
    pkg: 'queue',
    file: 'src/coordinator.ts',
    bug: 'the queue coordinator merges a shard that is delivered again after it was merged',
    find: '    if (state.merged.has(s)) continue; // delivered again after it was merged: counted once\n',
    replace: '',
    tests: ['test/distributed.test.ts'],
    filter: 'delivered again',
  },
  {
    id: 'rag-grounding',
    pkg: 'rag',
    file: 'src/answer/grounding.ts',
    bug: 'a generated sentence with a number no source contains still counts as supported',
    find: 'const supported = best !== undefined && best.score >= threshold && foreign.length === 0;',
    replace: 'const supported = best !== undefined && best.score >= threshold;',
    tests: ['test/answer.test.ts', 'test/grounding-numbers.test.ts'],
  },
];

const args = process.argv.slice(2);
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? args[onlyAt + 1]?.split(',') : undefined;
const baseline = !args.includes('--no-baseline');
const mutants = only === undefined ? MUTANTS : MUTANTS.filter((m) => only.includes(m.id));
if (only !== undefined && mutants.length !== only.length) {
  const known = MUTANTS.map((m) => m.id);
  console.error(`unknown mutant in --only ${only.join(',')}; valid: ${known.join(', ')}`);
  process.exit(2);
}

if (args.includes('--sites')) {
  const missing = mutants.filter((m) => {
    const text = readFileSync(join(root, 'packages', m.pkg, m.file), 'utf8');
    const count = text.split(m.find).length - 1;
    if (count !== 1) console.log(`${m.id}: the code to mutate occurs ${count} times in ${m.pkg}/${m.file}`);
    return count !== 1;
  });
  console.log(`${mutants.length - missing.length} of ${mutants.length} mutation sites found`);
  process.exit(missing.length > 0 ? 1 : 0);
}

/** Writes `text` to `path` through a temporary sibling and a rename, so the file is never half-written. */
function writeAtomic(path, text) {
  const temp = `${path}.mutation-tmp-${process.pid}`;
  writeFileSync(temp, text);
  renameSync(temp, path);
}

/** The file to restore if the process is stopped while a mutant is planted. */
let planted;
function restore() {
  if (planted === undefined) return;
  writeAtomic(planted.path, planted.original);
  planted = undefined;
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    restore();
    process.exit(130);
  });
}

/** Runs vitest in a package; the failed tests' names from its JSON report, and its exit status. */
function runTests(m) {
  const report = join(tmpdir(), `crp-mutation-${process.pid}-${m.id}.json`);
  rmSync(report, { force: true });
  const vitestArgs = ['exec', 'vitest', 'run', ...m.tests, '--reporter=json', `--outputFile=${report}`];
  if (m.filter !== undefined) vitestArgs.push('-t', m.filter);
  const run = spawnSync('pnpm', vitestArgs, {
    cwd: join(root, 'packages', m.pkg),
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CI: process.env.CI ?? '' },
  });
  let failed = [];
  let passed = 0;
  if (existsSync(report)) {
    const json = JSON.parse(readFileSync(report, 'utf8'));
    for (const file of json.testResults ?? []) {
      const name = file.name.slice(join(root, 'packages', m.pkg).length + 1);
      for (const t of file.assertionResults ?? []) {
        if (t.status === 'failed') failed.push(`${name} > ${t.fullName}`);
        if (t.status === 'passed') passed++;
      }
      // a file that did not load at all (a syntax error the bug caused) fails without assertions
      if ((file.assertionResults ?? []).length === 0 && file.status === 'failed')
        failed.push(`${name} (did not run)`);
    }
    rmSync(report, { force: true });
  } else {
    failed = [`(no report: ${run.stderr.trim().split('\n').slice(-3).join(' ')})`];
  }
  return { status: run.status, failed, passed };
}

function duration(ms) {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

const started = Date.now();
const results = [];
for (const [i, m] of mutants.entries()) {
  const path = join(root, 'packages', m.pkg, m.file);
  const original = readFileSync(path, 'utf8');
  const count = original.split(m.find).length - 1;
  const t0 = Date.now();
  let result;
  if (count !== 1) {
    result = {
      id: m.id,
      outcome: 'site-missing',
      detail: `the code to mutate occurs ${count} times in ${m.pkg}/${m.file}`,
    };
  } else {
    const before = baseline ? runTests(m) : { status: 0, failed: [], passed: 0 };
    if (before.status !== 0 || before.failed.length > 0) {
      result = {
        id: m.id,
        outcome: 'baseline-fails',
        detail: before.failed.join('; ') || `exit ${before.status}`,
      };
    } else {
      try {
        planted = { path, original };
        writeAtomic(path, original.replace(m.find, m.replace));
        const after = runTests(m);
        result =
          after.failed.length > 0
            ? { id: m.id, outcome: 'caught', detail: after.failed.join('; '), failed: after.failed.length }
            : { id: m.id, outcome: 'survived', detail: `${after.passed} tests passed with the bug` };
      } finally {
        restore();
      }
    }
  }
  result.ms = Date.now() - t0;
  results.push(result);
  const elapsed = Date.now() - started;
  const eta = (elapsed / (i + 1)) * (mutants.length - i - 1);
  console.log(
    `[${i + 1}/${mutants.length}, ${duration(elapsed)} elapsed, eta ${duration(eta)}] ${m.id} (${m.bug}): ${result.outcome} in ${duration(result.ms)}${result.outcome === 'caught' ? ` by ${result.failed} test${result.failed === 1 ? '' : 's'}` : ''}`,
  );
  console.log(`    ${result.detail}`);
}

const bad = results.filter((r) => r.outcome !== 'caught');
console.log(
  `\n${results.length - bad.length} of ${results.length} planted bugs caught in ${duration(Date.now() - started)}${bad.length > 0 ? `; not caught: ${bad.map((r) => `${r.id} (${r.outcome})`).join(', ')}` : ''}`,
);
process.exit(bad.length > 0 ? 1 : 0);
