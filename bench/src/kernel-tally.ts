import * as tf from '@tensorflow/tfjs-core';

/** Wall and CPU time (all threads, ms) and calls of one kernel, summed. */
export interface KernelTally {
  calls: number;
  wall: number;
  cpu: number;
}

/**
 * Wraps every kernel registered for wasm so that each outermost call adds its wall and CPU time to the returned
 * map, under `label(name, args)` (default: the kernel's name). A kernel that another kernel calls directly counts
 * in its caller. Clear the map to start a new tally (after a warm-up). For the manual profiles of the bench only:
 * the wrapping stays for the life of the process.
 */
export function tallyWasmKernels(
  label: (name: string, args: Parameters<tf.KernelFunc>[0]) => string = (name) => name,
): Map<string, KernelTally> {
  const tallies = new Map<string, KernelTally>();
  let depth = 0;
  for (const k of tf.getKernelsForBackend('wasm')) {
    const inner = k.kernelFunc;
    (k as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
      if (depth > 0) return inner(args);
      depth++;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      try {
        return inner(args);
      } finally {
        const wall = performance.now() - t0;
        const c = process.cpuUsage(c0);
        depth--;
        // a label that throws must not reach the caller: an op that catches kernel errors (the fused bias of
        // @crp/lrp, which then adds the bias separately) would take another path than the one being measured
        let name: string;
        try {
          name = label(k.kernelName, args);
        } catch {
          name = `${k.kernelName} (label failed)`;
        }
        const t = tallies.get(name) ?? { calls: 0, wall: 0, cpu: 0 };
        t.calls++;
        t.wall += wall;
        t.cpu += (c.user + c.system) / 1000;
        tallies.set(name, t);
      }
    };
  }
  return tallies;
}

/** The tally's wall and CPU time summed over all kernels (ms). */
export function kernelTotals(tallies: Map<string, KernelTally>): { wall: number; cpu: number } {
  let wall = 0;
  let cpu = 0;
  for (const t of tallies.values()) {
    wall += t.wall;
    cpu += t.cpu;
  }
  return { wall, cpu };
}

/**
 * Prints the tally as a table, per run (the tally divided by `runs`), the `top` kernels by `sortBy` time; the
 * last column is each kernel's share of `shareOf` (ms per run, default: all kernels' time) in `sortBy` time.
 */
export function printKernelTable(
  tallies: Map<string, KernelTally>,
  options: {
    runs?: number;
    sortBy?: 'cpu' | 'wall';
    top?: number;
    nameWidth?: number;
    shareOf?: number;
    shareLabel?: string;
  } = {},
): void {
  const { runs = 1, sortBy = 'cpu', top = 20, nameWidth = 20 } = options;
  const rows = [...tallies].sort((a, b) => b[1][sortBy] - a[1][sortBy]);
  const shareOf = options.shareOf ?? kernelTotals(tallies)[sortBy] / runs;
  const shareLabel = options.shareLabel ?? `share of kernel ${sortBy === 'cpu' ? 'CPU' : 'wall'}`;
  console.log(`  ${'kernel'.padEnd(nameWidth)}   calls   wall ms    CPU ms  CPU/wall  ${shareLabel}`);
  for (const [k, t] of rows.slice(0, top)) {
    const [calls, wall, cpu] = [t.calls / runs, t.wall / runs, t.cpu / runs];
    console.log(
      `  ${k.padEnd(nameWidth)} ${calls.toFixed(0).padStart(7)} ${wall.toFixed(1).padStart(9)} ${cpu.toFixed(1).padStart(9)} ${(t.cpu / t.wall).toFixed(2).padStart(9)} ${((100 * (sortBy === 'cpu' ? cpu : wall)) / shareOf).toFixed(1).padStart(8)} %`,
    );
  }
}
