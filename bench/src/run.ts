/**
 * The benchmarks: every suite in a process of its own (so that its peak memory is its own), a table, and
 * bench/results.json with every run, the median, and the machine and backend each suite ran on.
 *
 *   pnpm bench [--only lrp|crp|attribution ...] [--backend wasm|cpu] [--threads auto|N] [--quick] [--out FILE]
 *
 * Every time is the median of at least 3 timed runs (at least 5 where a run takes under a second), each
 * after warm-up. `--quick` runs small workloads only, to check that the benchmarks work; its numbers are not
 * comparable, so it writes no results file unless `--out` names one.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeJsonAtomic } from '@crp/common/node';
import type { BenchResult } from './measure.js';
import type { SuiteReport } from './suite-process.js';
import { suites } from './suites/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const defaultOut = join(here, '..', 'results.json');
const FORMAT = 'crp-bench/2';

/** A figure of results.json: a result and the suite (or package bench) it came from. */
interface StoredResult extends BenchResult {
  suite: string;
}

interface SuiteRecord {
  ranAt?: string;
  machine?: Machine;
  backend?: string;
  threads?: number;
  tfjs?: string;
  peakRssMiB?: number;
  /** For figures merged from a package's own bench (packages/<pkg>/bench-results.json). */
  source?: string;
}

interface ResultsFile {
  format: typeof FORMAT;
  about: string;
  suites: Record<string, SuiteRecord>;
  results: StoredResult[];
}

interface Machine {
  cpu: string;
  logicalCores: number;
  memoryGiB: number;
  os: string;
  node: string;
  /** 1/5/15-minute load averages when the suite started and ended (others' load skews the times). */
  loadAverage: { start: number[]; end: number[] };
}

const ABOUT =
  'Each figure: median of its runs (at least 3 timed runs, at least 5 where a run takes under a second, ' +
  'each after warm-up); runs lists every run. Peak memory: VmHWM of the suite running alone in its own ' +
  'process (one measurement per bench run). Figures of a package bench merged from packages/*/bench-results.json.';

function machine(start: number[]): Machine {
  const round = (xs: number[]) => xs.map((x) => Math.round(x * 100) / 100);
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    logicalCores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${process.platform} ${release()} ${process.arch}`,
    node: process.version,
    loadAverage: { start: round(start), end: round(loadavg()) },
  };
}

async function readPrevious(file: string): Promise<ResultsFile | undefined> {
  try {
    const json = JSON.parse(await readFile(file, 'utf8')) as Partial<ResultsFile>;
    // the older format (a bare array) recorded one number per figure, no runs: nothing worth keeping
    return json.format === FORMAT ? (json as ResultsFile) : undefined;
  } catch {
    return undefined;
  }
}

/** Benches of packages that keep their own runner (the RAG package) write packages/<pkg>/bench-results.json. */
async function packageBenches(): Promise<{ suites: Record<string, SuiteRecord>; results: StoredResult[] }> {
  const out: { suites: Record<string, SuiteRecord>; results: StoredResult[] } = { suites: {}, results: [] };
  for (const pkg of await readdir(join(repoRoot, 'packages'))) {
    const source = join('packages', pkg, 'bench-results.json');
    let entries: (Partial<BenchResult> & { name: string; unit: string; value?: number })[];
    try {
      entries = JSON.parse(await readFile(join(repoRoot, source), 'utf8'));
    } catch {
      continue;
    }
    out.suites[pkg] = { source };
    for (const e of entries) {
      const runs = Array.isArray(e.runs) ? e.runs : [];
      const note =
        runs.length === 0 ? `${e.note ? `${e.note}; ` : ''}runs not recorded by ${source}` : e.note;
      out.results.push({
        name: e.name,
        unit: e.unit,
        median: e.median ?? e.value ?? Number.NaN,
        runs,
        ...(note === undefined ? {} : { note }),
        suite: pkg,
      });
    }
  }
  return out;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string', multiple: true },
      backend: { type: 'string', default: 'wasm' },
      threads: { type: 'string', default: 'auto' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  const selected = (values.only ?? Object.keys(suites)).flatMap((s) => s.split(','));
  for (const s of selected) {
    if (!(s in suites)) {
      console.error(`unknown suite '${s}'; valid: ${Object.keys(suites).join(', ')}`);
      return 2;
    }
  }
  if (values.backend !== 'wasm' && values.backend !== 'cpu') {
    console.error(`unknown --backend '${values.backend}'; valid: wasm, cpu`);
    return 2;
  }
  const out = values.out ?? (values.quick ? undefined : defaultOut);

  const work = await mkdtemp(join(tmpdir(), 'crp-bench-'));
  const reports: { report: SuiteReport; machine: Machine; ranAt: string }[] = [];
  let failed = false;
  try {
    for (const name of selected) {
      const file = join(work, `${name}.json`);
      const start = loadavg();
      const ranAt = new Date().toISOString();
      const child = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          join(here, 'suite-process.ts'),
          name,
          file,
          values.backend,
          values.threads,
          values.quick ? '1' : '0',
        ],
        { stdio: ['ignore', 'inherit', 'inherit'] },
      );
      if (child.status !== 0) {
        console.error(`suite ${name} failed (exit ${child.status ?? child.signal})`);
        failed = true;
        continue;
      }
      const report = JSON.parse(await readFile(file, 'utf8')) as SuiteReport;
      reports.push({ report, machine: machine(start), ranAt });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }

  const fresh: StoredResult[] = [];
  for (const { report } of reports) {
    fresh.push(...report.results.map((r) => ({ ...r, suite: report.suite })));
    fresh.push({
      name: `${report.suite}.peak_rss_mib`,
      unit: 'MiB',
      median: report.peakRssMiB,
      runs: [report.peakRssMiB],
      note: 'peak resident memory of the suite alone in its own process (VmHWM)',
      suite: report.suite,
    });
  }

  const width = Math.max(4, ...fresh.map((r) => r.name.length));
  console.log(`${'name'.padEnd(width)}  ${'median'.padStart(10)}  unit  runs  note`);
  for (const r of fresh) {
    console.log(
      `${r.name.padEnd(width)}  ${r.median.toFixed(2).padStart(10)}  ${r.unit.padEnd(4)}  ${String(r.runs.length).padStart(4)}  ${r.note ?? ''}`,
    );
  }
  for (const { report } of reports) {
    console.log(`${report.suite}: ${report.backend} x${report.threads}, tfjs ${report.tfjs}`);
  }

  if (out === undefined) {
    console.log('quick run: no results file written (give --out FILE to write one)');
  } else {
    // keep the suites not run this time, and the package benches as they are now
    const previous = await readPrevious(out);
    const packages = await packageBenches();
    const ran = new Set(reports.map((r) => r.report.suite));
    const keep = (s: string) => !ran.has(s) && !(s in packages.suites);
    const suitesRecord: Record<string, SuiteRecord> = Object.fromEntries(
      Object.entries(previous?.suites ?? {}).filter(([s]) => keep(s)),
    );
    Object.assign(suitesRecord, packages.suites);
    for (const { report, machine: m, ranAt } of reports) {
      suitesRecord[report.suite] = {
        ranAt,
        machine: m,
        backend: report.backend,
        threads: report.threads,
        tfjs: report.tfjs,
        peakRssMiB: report.peakRssMiB,
        ...(values.quick ? { source: 'bench --quick (small workloads, not comparable)' } : {}),
      };
    }
    const results = [
      ...(previous?.results ?? []).filter((r) => keep(r.suite)),
      ...packages.results,
      ...fresh,
    ].sort((a, b) => a.name.localeCompare(b.name));
    const file: ResultsFile = { format: FORMAT, about: ABOUT, suites: suitesRecord, results };
    await writeJsonAtomic(out, file);
    console.log(`wrote ${out}`);
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
