import { open, readFile, truncate } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { threadId, Worker } from 'node:worker_threads';
import { CrpError, type CrpErrorCode, type Progress, progressTracker } from '@crp/common';
import type { CondAttribution } from '@crp/core';
import {
  type AtlasOptions,
  type AtlasPartial,
  atlasBatch,
  type ConceptAtlas,
  finishAtlas,
  mergeAtlasPartials,
  type ResolvedAtlasOptions,
  resolveAtlasOptions,
} from './atlas.js';
import { isLabelledDataset, type LabelledDataset } from './dataset.js';

/** What a job runs on: a CondAttribution and a random-access data set. */
export interface JobContext {
  crp: CondAttribution;
  dataset: LabelledDataset;
}

/**
 * Where every thread of a job gets its model and data: a module exporting a function (`setup` by default)
 * that takes `args` (JSON) and returns a {@link JobContext}. Each worker thread calls it once, so each has
 * its own TF.js backend instance; the module picks and initialises the backend (e.g. `await
 * tf.setBackend('wasm')`), as applications do.
 */
export interface JobSetup {
  /** path or file URL of the module */
  module: string;
  /** the exported function (default `setup`) */
  exportName?: string;
  /** JSON-serialisable arguments for it */
  args?: unknown;
}

export interface AtlasJobOptions extends Omit<AtlasOptions, 'onProgress'> {
  /** the results file (JSON lines: a header, then one line per finished batch) */
  file: string;
  /** worker threads (default 1: run in this thread). Results are identical for any number. */
  workers?: number;
  /** Called after each finished batch; `done` counts the samples of resumed batches too. */
  onProgress?: (progress: AtlasJobProgress) => void;
}

/** Progress of {@link runAtlasJob}: samples done (resumed ones included) and how many came from an earlier run. */
export interface AtlasJobProgress extends Progress {
  /** samples whose batches were read back from the job file */
  resumed: number;
}

interface JobHeader {
  job: 'atlas';
  version: 2;
  options: ResolvedAtlasOptions & { samples: 'class' | 'all' };
  dataset: { size: number; fingerprint: number };
}

interface BatchLine {
  batch: number;
  start: number;
  count: number;
  indices: number[];
  partial: AtlasPartial;
  /** the thread that computed it (0: the main thread) */
  thread: number;
}

const lineOf = (v: unknown) => `${JSON.stringify(v)}\n`;

/** Appends one line with a single write and flushes it: after a kill the file ends in whole lines, or in one
 * torn last line that {@link readJobFile} drops. */
async function appendLine(file: string, line: string): Promise<void> {
  const handle = await open(file, 'a');
  try {
    await handle.write(line);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Reads a job file: its header and the complete batch lines; a torn last line is cut off the file. */
async function readJobFile(
  file: string,
): Promise<{ header: JobHeader | undefined; batches: Map<number, BatchLine> }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { header: undefined, batches: new Map() };
    throw err;
  }
  const complete = text.lastIndexOf('\n') + 1;
  if (complete < text.length) await truncate(file, Buffer.byteLength(text.slice(0, complete)));
  const lines = text
    .slice(0, complete)
    .split('\n')
    .filter((l) => l.length > 0);
  if (lines.length === 0) return { header: undefined, batches: new Map() };
  const header = JSON.parse(lines[0]!) as JobHeader;
  const batches = new Map<number, BatchLine>();
  for (const l of lines.slice(1)) {
    const b = JSON.parse(l) as BatchLine;
    if (!batches.has(b.batch)) batches.set(b.batch, b);
  }
  return { header, batches };
}

async function loadSetup(setup: JobSetup): Promise<JobContext> {
  const url = setup.module.startsWith('file:')
    ? setup.module
    : pathToFileURL(isAbsolute(setup.module) ? setup.module : resolve(setup.module)).href;
  const mod = (await import(url)) as Record<string, unknown>;
  const name = setup.exportName ?? 'setup';
  const fn = mod[name];
  if (typeof fn !== 'function') {
    throw new CrpError(
      'invalid-argument',
      `job module ${setup.module} has no exported function '${name}'; its exports: ${Object.keys(mod).join(', ')}`,
    );
  }
  const ctx = (await fn(setup.args)) as JobContext;
  if (!isLabelledDataset(ctx?.dataset) || typeof ctx?.crp?.run !== 'function') {
    throw new CrpError(
      'invalid-argument',
      `'${name}' of ${setup.module} must return { crp: CondAttribution, dataset: LabelledDataset } (e.g. fromTensors, fromImageFolder)`,
    );
  }
  return ctx;
}

function fingerprint(indices: readonly number[]): number {
  let h = 2166136261;
  for (const i of indices) h = Math.imul(h ^ i, 16777619) >>> 0;
  return h;
}

/** The samples of a job: the class's samples (or all), split into fixed batches. */
function jobPlan(dataset: LabelledDataset, opts: ResolvedAtlasOptions, samples: 'class' | 'all') {
  const chosen = samples === 'all' ? dataset : dataset.subset({ classes: [opts.target] });
  const batches: { batch: number; start: number; count: number }[] = [];
  for (let start = 0, b = 0; start < chosen.size; start += opts.batchSize, b++) {
    batches.push({ batch: b, start, count: Math.min(opts.batchSize, chosen.size - start) });
  }
  return { chosen, batches };
}

async function computeBatch(
  ctx: JobContext,
  chosen: LabelledDataset,
  opts: ResolvedAtlasOptions,
  b: { batch: number; start: number; count: number },
): Promise<BatchLine> {
  const batch = await chosen.slice(b.start, b.count);
  try {
    return {
      ...b,
      indices: [...batch.indices!],
      partial: atlasBatch(ctx.crp, batch.images, opts),
      thread: threadId,
    };
  } finally {
    batch.images.dispose();
  }
}

/** Messages between the main thread and a job worker. */
type ToWorker =
  | { type: 'init'; setup: JobSetup; options: ResolvedAtlasOptions; samples: 'class' | 'all' }
  | { type: 'batch'; batch: number; start: number; count: number }
  | { type: 'stop' };
type FromWorker =
  | { type: 'ready' }
  | { type: 'done'; line: BatchLine }
  | { type: 'error'; message: string; code?: string };

function moduleUrl(module: string): string {
  return module.startsWith('file:')
    ? module
    : pathToFileURL(isAbsolute(module) ? module : resolve(module)).href;
}

/**
 * How to start a worker: the compiled worker, or (when this package runs from source or the setup module is
 * TypeScript) a bootstrap that registers tsx first.
 */
function workerEntry(setup: JobSetup): { code: string; eval: true } | { url: URL } {
  const here = import.meta.url;
  const fromSource = here.endsWith('.ts');
  if (!fromSource && !/\.[mc]?tsx?$/.test(setup.module)) return { url: new URL('./job-worker.js', here) };
  let tsxRoot: string | undefined;
  for (const base of [moduleUrl(setup.module), here]) {
    try {
      tsxRoot = dirname(createRequire(base).resolve('tsx/package.json'));
      break;
    } catch {}
  }
  if (tsxRoot === undefined) {
    throw new CrpError(
      'invalid-argument',
      `the job setup module ${setup.module} is TypeScript: install tsx next to it, or give a compiled .js module`,
    );
  }
  const api = pathToFileURL(join(tsxRoot, 'dist', 'esm', 'api', 'index.mjs')).href;
  const target = new URL(fromSource ? './job-worker.ts' : './job-worker.js', here).href;
  return {
    code: `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(target)}); })`,
    eval: true,
  };
}

/** Runs inside a worker thread (see job-worker.ts). */
export async function serveJobWorker(port: {
  on(event: 'message', fn: (m: ToWorker) => void): void;
  postMessage(m: FromWorker): void;
  close(): void;
}): Promise<void> {
  let ctx: JobContext | undefined;
  let chosen: LabelledDataset | undefined;
  let opts: ResolvedAtlasOptions | undefined;
  let queue = Promise.resolve();
  port.on('message', (m) => {
    queue = queue.then(async () => {
      try {
        if (m.type === 'init') {
          ctx = await loadSetup(m.setup);
          opts = m.options;
          chosen = jobPlan(ctx.dataset, opts, m.samples).chosen;
          port.postMessage({ type: 'ready' });
        } else if (m.type === 'batch') {
          port.postMessage({ type: 'done', line: await computeBatch(ctx!, chosen!, opts!, m) });
        } else {
          ctx?.crp.dispose();
          port.close();
        }
      } catch (err) {
        port.postMessage({
          type: 'error',
          message: err instanceof Error ? err.message : String(err),
          ...(err instanceof CrpError ? { code: err.code } : {}),
        });
      }
    });
  });
}

/** Runs the batches on `n` worker threads; `onLine` gets each finished batch (in completion order). */
async function runOnWorkers(
  n: number,
  setup: JobSetup,
  opts: ResolvedAtlasOptions,
  samples: 'class' | 'all',
  todo: { batch: number; start: number; count: number }[],
  onLine: (line: BatchLine) => Promise<void>,
): Promise<void> {
  const entry = workerEntry(setup);
  const workers = Array.from({ length: Math.min(n, todo.length) }, () =>
    'url' in entry ? new Worker(entry.url) : new Worker(entry.code, { eval: true }),
  );
  let next = 0;
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((done, fail) => {
            let writing = Promise.resolve();
            const send = () => {
              const b = todo[next++];
              if (b === undefined) {
                writing.then(done, fail);
                return;
              }
              w.postMessage({ type: 'batch', ...b } satisfies ToWorker);
            };
            w.on('message', (m: FromWorker) => {
              if (m.type === 'ready') send();
              else if (m.type === 'done') {
                writing = writing.then(() => onLine(m.line));
                writing.catch(fail);
                send();
              } else {
                fail(
                  m.code === undefined
                    ? new Error(m.message)
                    : new CrpError(m.code as CrpErrorCode, m.message),
                );
              }
            });
            w.on('error', fail);
            w.on('exit', (code) => {
              if (code !== 0) fail(new Error(`a job worker exited with code ${code}`));
            });
            w.postMessage({ type: 'init', setup, options: opts, samples } satisfies ToWorker);
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/**
 * The concept atlas (`conceptAtlas`) as a resumable job: the class's samples are split into fixed
 * batches of `batchSize`, each finished batch's votes are appended to `file` as one JSON line (a single
 * flushed write), and a run that was killed resumes where it stopped: finished batches are read back,
 * a torn last line is dropped, and only the missing batches run. With `workers` > 1 the batches run on worker
 * threads, each with its own model and backend from `setup`; partial results are merged in batch order, so
 * the atlas is identical for any number of workers and any interruption.
 */
export async function runAtlasJob(setup: JobSetup, options: AtlasJobOptions): Promise<ConceptAtlas> {
  const workers = options.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) {
    throw new CrpError('invalid-argument', `workers must be a positive integer, got ${workers}`);
  }
  const samples = options.samples ?? 'class';
  // the main thread needs the data set's plan (and, with one worker, does the work)
  const ctx = await loadSetup(setup);
  try {
    const { file, workers: _w, onProgress, ...atlasOptions } = options;
    const opts = resolveAtlasOptions(ctx.crp, atlasOptions);
    const { chosen, batches } = jobPlan(ctx.dataset, opts, samples);
    const header: JobHeader = {
      job: 'atlas',
      version: 2,
      options: { ...opts, samples },
      dataset: { size: chosen.size, fingerprint: fingerprint(chosen.indices) },
    };
    const existing = await readJobFile(file);
    if (existing.header === undefined) {
      await appendLine(file, lineOf(header));
    } else if (JSON.stringify(existing.header) !== JSON.stringify(header)) {
      throw new CrpError(
        'job-mismatch',
        `${file} holds another job (${JSON.stringify(existing.header)}); resume with the same setup and options, or use a new file`,
      );
    }
    const done = existing.batches;
    const todo = batches.filter((b) => !done.has(b.batch));
    const resumed = [...done.values()].reduce((s, b) => s + b.count, 0);
    const tick = progressTracker(
      chosen.size,
      onProgress === undefined ? undefined : (p) => onProgress({ ...p, resumed }),
      { alreadyDone: resumed, unit: 'samples' },
    );
    const record = async (line: BatchLine) => {
      await appendLine(file, lineOf(line));
      done.set(line.batch, line);
      tick(line.count);
    };
    if (workers === 1) {
      for (const b of todo) await record(await computeBatch(ctx, chosen, opts, b));
    } else if (todo.length > 0) {
      await runOnWorkers(workers, setup, opts, samples, todo, record);
    }
    const total: AtlasPartial = { samples: 0, layers: {} };
    for (const b of batches) mergeAtlasPartials(total, done.get(b.batch)!.partial);
    return finishAtlas(total, opts);
  } finally {
    ctx.crp.dispose();
  }
}
