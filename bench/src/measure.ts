/** One benchmark result, as written to bench/results.json. */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  /** What the number is compared against, when there is a reference. */
  note?: string;
}

/** Median wall time of `runs` calls of `fn` after `warmup` calls, in milliseconds. */
export async function medianMs(fn: () => Promise<void> | void, runs = 5, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** Peak resident set size of this process so far, in MiB. */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}
