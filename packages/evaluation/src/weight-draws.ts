/**
 * MPRT's new weights drawn in a worker thread while the main thread computes: the seeded draws (about 1.3 M
 * values for the small VGG, 15-35 ms of single-threaded JavaScript) do not depend on the explanations, so a
 * worker draws every layer's values into shared memory, in the order the cascade needs them, while the main
 * thread explains the original model. The main thread takes a layer's values when it randomises that layer,
 * waiting (`Atomics.wait`) only if the worker has not finished them; a layer the worker has not started is drawn
 * in-line instead. Both draw with {@link fillDraws}, so the values are the same to the last bit either way.
 *
 * Where no worker can be used (a browser window's main thread, which may not block; no `SharedArrayBuffer`;
 * the worker cannot start) every layer is drawn in-line, as before.
 */

/**
 * Fills `targets` one after the other with PyTorch's `reset_parameters()` distribution, uniform in
 * [-bound, bound), from mulberry32(seed + 1) (the toolkit's seeded generator, inlined: its state a local int32,
 * where a closure's state would allocate a heap number per draw). Self-contained: the worker runs its source.
 */
export function fillDraws(targets: Float32Array[], bound: number, seed: number): void {
  let state = (seed + 1) | 0;
  for (const values of targets) {
    const n = values.length;
    for (let i = 0; i < n; i++) {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), state | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      values[i] = (2 * (((t ^ (t >>> 14)) >>> 0) / 4294967296) - 1) * bound;
    }
  }
}

/** One layer's draws: the sizes of its weights in order (kernel, bias) and their bound. */
export interface DrawJob {
  sizes: readonly number[];
  bound: number;
}

// a job's state in the shared status array: the worker and the main thread claim a job by compare-and-swap,
// so each job is drawn once and nobody waits for a worker that never started it
const FREE = 0;
const MAIN = 1;
const WORKER = 2;
const DONE = 3;
const FAILED = 4;
/** Longest wait for a job the worker has claimed before drawing it in-line (a worker that stalled). */
const WAIT_MS = 10_000;

/** The worker's program: for each message, claim and draw the jobs in order. */
function workerSource(node: boolean): string {
  return `'use strict';
const fillDraws = ${fillDraws.toString()};
const run = ({ data, status, jobs, seed }) => {
  const flags = new Int32Array(status);
  let offset = 0;
  for (let j = 0; j < jobs.length; j++) {
    const { sizes, bound } = jobs[j];
    const start = offset;
    for (const n of sizes) offset += n;
    if (Atomics.compareExchange(flags, j, ${FREE}, ${WORKER}) !== ${FREE}) continue;
    let state = ${DONE};
    try {
      let at = start;
      fillDraws(sizes.map((n) => { const v = new Float32Array(data, at * 4, n); at += n; return v; }), bound, seed);
    } catch {
      state = ${FAILED};
    }
    Atomics.store(flags, j, state);
    Atomics.notify(flags, j);
  }
};
${node ? "require('node:worker_threads').parentPort.on('message', run);" : 'self.onmessage = (e) => run(e.data);'}
`;
}

/** The persistent worker: posts jobs; it never keeps a Node process alive. */
interface DrawThread {
  post(message: unknown): void;
  close(): void;
}

let thread: DrawThread | undefined;

/** The shared buffer kept between calls, at most {@link POOL_BYTES}: a fresh one costs its page faults on every
 * call (about 1,300 pages for the small VGG). The worker handles one call's jobs at a time, so a buffer no
 * tensor holds any more can take the next call's values. */
let pool: { buffer: SharedArrayBuffer; busy: boolean } | undefined;
const POOL_BYTES = 16 * 2 ** 20;

function sharedBuffer(bytes: number): SharedArrayBuffer {
  if (pool?.busy || bytes > POOL_BYTES) return new SharedArrayBuffer(bytes);
  if (pool === undefined || pool.buffer.byteLength < bytes)
    pool = { buffer: new SharedArrayBuffer(bytes), busy: false };
  pool.busy = true;
  return pool.buffer;
}
let unavailable = false;

/** A thread may block on `Atomics.wait` in Node and in a browser's workers, not in a window. */
function canBlock(): boolean {
  if (typeof SharedArrayBuffer === 'undefined' || typeof Atomics?.wait !== 'function') return false;
  const g = globalThis as { process?: { versions?: { node?: string } }; window?: unknown };
  if (g.process?.versions?.node !== undefined) return true;
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  return isolated && g.window === undefined;
}

async function startThread(): Promise<DrawThread | undefined> {
  const g = globalThis as { process?: { versions?: { node?: string } } };
  if (g.process?.versions?.node !== undefined) {
    // a computed specifier keeps browser bundlers from resolving a Node module
    const name = 'node:worker_threads';
    const { Worker } = (await import(/* @vite-ignore */ name)) as typeof import('node:worker_threads');
    const worker = new Worker(workerSource(true), { eval: true });
    worker.unref();
    worker.on('error', () => {
      // jobs it claimed are FAILED or stay WORKER (then the wait times out); later calls draw in-line
      unavailable = true;
      thread = undefined;
    });
    return { post: (m) => worker.postMessage(m), close: () => void worker.terminate() };
  }
  if (typeof Worker === 'undefined') return undefined;
  const url = URL.createObjectURL(new Blob([workerSource(false)], { type: 'text/javascript' }));
  let worker: Worker;
  try {
    worker = new Worker(url);
  } catch (err) {
    URL.revokeObjectURL(url);
    throw err;
  }
  worker.onerror = () => {
    unavailable = true;
    thread = undefined;
  };
  // the URL stays valid while the worker may still be loading its script
  return {
    post: (m) => worker.postMessage(m),
    close: () => {
      worker.terminate();
      URL.revokeObjectURL(url);
    },
  };
}

/**
 * Stops the draw worker (it is started again when next needed). Node does not wait for it before exiting; call
 * this where a test or an application wants no thread left.
 */
export function closeDrawWorker(): void {
  thread?.close();
  thread = undefined;
  pool = undefined;
}

/** Draws that jobs' values, started in the worker: `take(j)` returns job j's arrays (one per size). */
export interface PendingDraws {
  /** Job j's values: views of the shared buffer (valid until `release`) or arrays drawn in-line. */
  take(j: number): Float32Array[];
  /** Gives the shared buffer back for the next call: call it once no tensor holds a view `take` returned (a
   * backend may keep the array it was given, e.g. cpu). */
  release(): void;
  /** Whether the worker has drawn every job (a test's way to take the worker's values, not in-line ones). */
  drawn(): boolean;
}

/**
 * Starts drawing `jobs` (all from `seed`) in the worker, in order; `undefined` where no worker can be used
 * (then draw in-line with {@link fillDraws}).
 */
export async function startDraws(jobs: readonly DrawJob[], seed: number): Promise<PendingDraws | undefined> {
  if (unavailable || !canBlock()) return undefined;
  if (thread === undefined) {
    try {
      thread = await startThread();
    } catch {
      thread = undefined;
    }
    if (thread === undefined) {
      unavailable = true;
      return undefined;
    }
  }
  const offsets: number[] = [];
  let total = 0;
  for (const job of jobs) {
    offsets.push(total);
    for (const n of job.sizes) total += n;
  }
  const data = sharedBuffer(total * 4);
  const status = new SharedArrayBuffer(4 * Math.max(1, jobs.length));
  const flags = new Int32Array(status);
  const plain = jobs.map((j) => ({ sizes: [...j.sizes], bound: j.bound }));
  thread.post({ data, status, jobs: plain, seed });
  const inLine = (j: number) => {
    const arrays = jobs[j]!.sizes.map((n) => new Float32Array(n));
    fillDraws(arrays, jobs[j]!.bound, seed);
    return arrays;
  };
  return {
    take(j) {
      if (Atomics.compareExchange(flags, j, FREE, MAIN) === FREE) return inLine(j);
      if (Atomics.load(flags, j) === WORKER) Atomics.wait(flags, j, WORKER, WAIT_MS);
      // FAILED, or still WORKER after the wait: the same values, drawn here
      if (Atomics.load(flags, j) !== DONE) return inLine(j);
      let at = offsets[j]!;
      return jobs[j]!.sizes.map((n) => {
        const v = new Float32Array(data, at * 4, n);
        at += n;
        return v;
      });
    },
    drawn: () => flags.every((f, j) => f === DONE || j >= jobs.length),
    release: () => {
      if (data === pool?.buffer) pool.busy = false;
    },
  };
}
