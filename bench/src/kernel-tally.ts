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
        const name = label(k.kernelName, args);
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
