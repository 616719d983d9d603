import { open, readFile, truncate } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { threadId, Worker } from 'node:worker_threads';
import { CrpError, type CrpErrorCode, type Progress, progressTracker } from '@crp/common';
import { type AtlasOptions, atlasStrategy, type ConceptAtlas } from './atlas.js';
import { isLabelledDataset, type LabelledDataset } from './dataset.js';
import {
  type AnyShardedStrategy,
  canonicalJson,
  DEFAULT_SHARD_SIZE,
  decodeShardJson,
  encodeShardJson,
  planShards,
  runShard,
  type Shard,
  type ShardContext,
  type ShardedStrategy,
  selectSamples,
} from './sharding.js';
import { SHARDED_STRATEGIES, strategyOf } from './strategies.js';

/** What a job runs on: a CondAttribution and a random-access data set (and, for pruning criteria, the model). */
export interface JobContext extends ShardContext {}

/**
 * Where every thread of a job gets its model and data: a module exporting a function (`setup` by default)
 * that takes `args` (JSON) and returns a {@link JobContext}. Each worker thread calls it once, so each has
 * its own TF.js backend instance; the module picks and initialises the backend (e.g. `await
 * tf.setBackend('wasm')`), as applications do. A job of a kind this package does not define (e.g.
 * `criterionStrategy` of `@crp/pruning`) needs the module to export it in `strategies` (an array).
 */
export interface JobSetup {
  /** path or file URL of the module */
  module: string;
  /** the exported function (default `setup`) */
  exportName?: string;
  /** JSON-serialisable arguments for it */
  args?: unknown;
}

/** Options of every job ({@link runJob}): where it is kept, how many threads, progress. */
export interface JobOptions {
  /** the results file (JSON lines: a header, then one line per finished shard) */
  file: string;
  /** worker threads (default 1: run in this thread). Results are identical for any number. */
  workers?: number;
  /** samples per shard, the unit of resumption (default 64); the same value gives the in-process result */
  shardSize?: number;
  /** Called after each finished shard; `done` counts the samples of resumed shards too. */
  onProgress?: (progress: AtlasJobProgress) => void;
}

export interface AtlasJobOptions extends Omit<AtlasOptions, 'onProgress'>, JobOptions {}

/** Progress of {@link runJob}: samples done (resumed ones included) and how many came from an earlier run. */
export interface AtlasJobProgress extends Progress {
  /** samples whose shards were read back from the job file */
  resumed: number;
}

interface JobHeader {
  job: string;
  /** the job file's format */
  version: 3;
  /** the strategy's version */
  strategy: number;
  options: unknown;
  shardSize: number;
  dataset: { size: number; fingerprint: number };
}

interface ShardLine {
  shard: number;
  start: number;
  count: number;
  indices: number[];
  partial: unknown;
  /** the thread that computed it (0: the main thread) */
  thread: number;
}

const lineOf = (v: unknown) => `${encodeShardJson(v)}\n`;

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

/** Reads a job file: its header and the complete shard lines; a torn last line is cut off the file. */
async function readJobFile(
  file: string,
): Promise<{ header: JobHeader | undefined; shards: Map<number, ShardLine> }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { header: undefined, shards: new Map() };
    throw err;
  }
  const complete = text.lastIndexOf('\n') + 1;
  if (complete < text.length) await truncate(file, Buffer.byteLength(text.slice(0, complete)));
  const lines = text
    .slice(0, complete)
    .split('\n')
    .filter((l) => l.length > 0);
  if (lines.length === 0) return { header: undefined, shards: new Map() };
  const header = decodeShardJson<JobHeader>(lines[0]!);
  const shards = new Map<number, ShardLine>();
  for (const l of lines.slice(1)) {
    const b = decodeShardJson<ShardLine>(l);
    // a shard written twice (a run killed between write and bookkeeping) counts once
    if (!shards.has(b.shard)) shards.set(b.shard, b);
  }
  return { header, shards };
}

async function loadSetup(setup: JobSetup): Promise<JobContext & { strategies: AnyShardedStrategy[] }> {
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
      `'${name}' of ${setup.module} must return { crp: CondAttribution, dataset: LabelledDataset } (e.g. fromTensors, fromLoader)`,
    );
  }
  const extra = Array.isArray(mod.strategies) ? (mod.strategies as AnyShardedStrategy[]) : [];
  return Object.assign(ctx, { strategies: [...extra, ...SHARDED_STRATEGIES] });
}

function fingerprint(indices: readonly number[]): number {
  let h = 2166136261;
  for (const i of indices) h = Math.imul(h ^ i, 16777619) >>> 0;
  return h;
}

async function computeShard(
  strategy: AnyShardedStrategy,
  ctx: JobContext,
  chosen: LabelledDataset,
  resolved: { batchSize: number },
  shard: Shard,
): Promise<ShardLine> {
  return {
    shard: shard.index,
    start: shard.start,
    count: shard.count,
    indices: chosen.indices.slice(shard.start, shard.start + shard.count),
    partial: await runShard(strategy, ctx, chosen, resolved, shard),
    thread: threadId,
  };
}

/** Messages between the main thread and a job worker. */
type ToWorker =
  | { type: 'init'; setup: JobSetup; kind: string; resolved: { batchSize: number } }
  | ({ type: 'shard' } & Shard)
  | { type: 'stop' };
type FromWorker =
  | { type: 'ready' }
  | { type: 'done'; line: ShardLine }
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
  let ctx: (JobContext & { strategies: AnyShardedStrategy[] }) | undefined;
  let chosen: LabelledDataset | undefined;
  let resolved: { batchSize: number } | undefined;
  let strategy: AnyShardedStrategy | undefined;
  let queue = Promise.resolve();
  port.on('message', (m) => {
    queue = queue.then(async () => {
      try {
        if (m.type === 'init') {
          ctx = await loadSetup(m.setup);
          strategy = strategyOf(m.kind, ctx.strategies);
          resolved = m.resolved;
          chosen = selectSamples(strategy, ctx.dataset, resolved);
          port.postMessage({ type: 'ready' });
        } else if (m.type === 'shard') {
          const { type: _t, ...shard } = m;
          port.postMessage({
            type: 'done',
            line: await computeShard(strategy!, ctx!, chosen!, resolved!, shard),
          });
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

/** Runs the shards on `n` worker threads; `onLine` gets each finished shard (in completion order). */
async function runOnWorkers(
  n: number,
  setup: JobSetup,
  kind: string,
  resolved: { batchSize: number },
  todo: Shard[],
  onLine: (line: ShardLine) => Promise<void>,
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
              w.postMessage({ type: 'shard', ...b } satisfies ToWorker);
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
            w.postMessage({ type: 'init', setup, kind, resolved } satisfies ToWorker);
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/**
 * Any sharded analysis ({@link ShardedStrategy}: atlas, region atlas, maximisation, decomposition atlas, or one
 * of another package) as a resumable job: the job's samples are split into shards of `shardSize`, each
 * finished shard's partial is appended to `file` as one JSON line (a single flushed write), and a run that was
 * killed resumes where it stopped: finished shards are read back, a torn last line is dropped, and only the
 * missing shards run. With `workers` > 1 the shards run on worker threads, each with its own model and
 * backend from `setup`. Partials merge exactly, so the result is the in-process function's, to the last bit,
 * for any number of workers and any interruption.
 */
export async function runJob<O, R extends { batchSize: number }, P, T>(
  strategy: ShardedStrategy<O, R, P, T>,
  setup: JobSetup,
  options: Omit<O, 'onProgress'> & JobOptions,
): Promise<T> {
  const workers = options.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) {
    throw new CrpError('invalid-argument', `workers must be a positive integer, got ${workers}`);
  }
  const shardSize = options.shardSize ?? DEFAULT_SHARD_SIZE;
  // the main thread needs the data set's plan (and, with one worker, does the work)
  const ctx = await loadSetup(setup);
  try {
    const { file, workers: _w, onProgress, shardSize: _s, ...strategyOptions } = options;
    const resolved = strategy.resolve(ctx, strategyOptions as unknown as O);
    const chosen = selectSamples(strategy, ctx.dataset, resolved);
    const shards = planShards(chosen.size, shardSize);
    const header: JobHeader = {
      job: strategy.kind,
      version: 3,
      strategy: strategy.version,
      options: resolved,
      shardSize,
      dataset: { size: chosen.size, fingerprint: fingerprint(chosen.indices) },
    };
    const existing = await readJobFile(file);
    if (existing.header === undefined) {
      await appendLine(file, lineOf(header));
    } else if (canonicalJson(existing.header) !== canonicalJson(decodeShardJson(encodeShardJson(header)))) {
      throw new CrpError(
        'job-mismatch',
        `${file} holds another job (${JSON.stringify(existing.header).slice(0, 400)}); resume with the same setup and options, or use a new file`,
      );
    }
    const done = existing.shards;
    const todo = shards.filter((b) => !done.has(b.index));
    const resumed = [...done.values()].reduce((s, b) => s + b.count, 0);
    const tick = progressTracker(
      chosen.size,
      onProgress === undefined ? undefined : (p) => onProgress({ ...p, resumed }),
      { alreadyDone: resumed, unit: 'samples' },
    );
    const record = async (line: ShardLine) => {
      await appendLine(file, lineOf(line));
      done.set(line.shard, line);
      tick(line.count);
    };
    if (workers === 1) {
      for (const b of todo) await record(await computeShard(strategy, ctx, chosen, resolved, b));
    } else if (todo.length > 0) {
      await runOnWorkers(workers, setup, strategy.kind, resolved, todo, record);
    }
    const total = strategy.empty(resolved);
    for (const b of shards) strategy.merge(total, done.get(b.index)!.partial as P);
    return strategy.finish(total, resolved);
  } finally {
    ctx.crp.dispose();
  }
}

/**
 * The concept atlas (`conceptAtlas`) as a resumable job: {@link runJob} with `atlasStrategy`.
 */
export async function runAtlasJob(setup: JobSetup, options: AtlasJobOptions): Promise<ConceptAtlas> {
  return runJob(atlasStrategy, setup, options);
}
