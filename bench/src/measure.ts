import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

/** One figure of bench/results.json: the median of its runs (each run's value in `unit`). */
export interface BenchResult {
  name: string;
  unit: string;
  median: number;
  /** Every run's value, in the order measured. */
  runs: number[];
  /** What the number is compared against, when there is a reference. */
  note?: string;
}

/** What a suite is told by the runner. */
export interface SuiteContext {
  log: (s: string) => void;
  /** Small workloads only (smoke test of the benchmark code; the numbers are not comparable). */
  quick: boolean;
  /** Threads of the backend the suite runs on (anchors in another runtime are given the same). */
  threads: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface TimingOptions {
  /** Untimed calls first (weights derived on first use, wasm kernels compiled); default 1. */
  warmup?: number;
  /** At least this many timed runs; default 3. Runs under a second always get at least 5. */
  minRuns?: number;
}

/** Runs under a second are noisier relative to their size: they get at least this many runs. */
export const RUNS_UNDER_A_SECOND = 5;
export const MIN_RUNS = 3;

/**
 * Wall time of `fn` in milliseconds: `warmup` untimed calls, then at least 3 timed runs (`minRuns`), and at
 * least 5 when the median so far is under a second. Returns every run and their median.
 */
export async function timeRuns(
  fn: () => Promise<void> | void,
  options: TimingOptions = {},
): Promise<{ median: number; runs: number[] }> {
  for (let i = 0; i < (options.warmup ?? 1); i++) await fn();
  const minRuns = Math.max(MIN_RUNS, options.minRuns ?? MIN_RUNS);
  const runs: number[] = [];
  while (runs.length < minRuns || (runs.length < RUNS_UNDER_A_SECOND && median(runs) < 1000)) {
    const t0 = performance.now();
    await fn();
    runs.push(performance.now() - t0);
  }
  return { median: median(runs), runs };
}

/** timeRuns with the CPU time of every run (all threads of the process: wasm's workers too): on a loaded machine
 * the wall time is mostly waiting for a core, the CPU time is not. */
export async function timeRunsCpu(
  fn: () => Promise<void> | void,
  options: TimingOptions = {},
): Promise<{ median: number; runs: number[]; cpu: number }> {
  const cpu: number[] = [];
  const timed = await timeRuns(async () => {
    const c0 = process.cpuUsage();
    await fn();
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }, options);
  // the first calls were the warm-up
  return { ...timed, cpu: median(cpu.slice(options.warmup ?? 1)) };
}

/** A result from timed runs, each converted (e.g. ms -> per-sample ms, or -> samples per second). */
export function result(
  name: string,
  unit: string,
  runs: readonly number[],
  note?: string,
  convert: (ms: number) => number = (ms) => ms,
): BenchResult {
  const values = runs.map(convert);
  return { name, unit, median: median(values), runs: values, ...(note === undefined ? {} : { note }) };
}

/**
 * Peak resident set size of this process so far, in MiB: VmHWM of /proc/self/status (Linux), else
 * `process.resourceUsage().maxRSS`. Each suite runs in a process of its own, so this is the suite's peak.
 */
export function peakRssMiB(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {}
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Starts V8's sampling CPU profiler in this process (a profile of the timed runs only, read by
 * src/cpuprofile-table.ts) when `file` is given; the returned function stops it and writes the profile there.
 * Without a file both are no-ops.
 */
export async function startCpuProfile(
  file: string | undefined,
  intervalUs = 100,
): Promise<() => Promise<void>> {
  if (file === undefined) return async () => {};
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}
