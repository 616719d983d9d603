import { hostname } from 'node:os';
import type { AnyShardedStrategy, LabelledDataset, ShardContext } from '@crp/attribution';
import {
  decodeShardJson,
  encodeShardJson,
  runShard,
  selectSamples,
  strategyOf,
} from '@crp/attribution/internal';
import { CrpError, describeError } from '@crp/common';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { CONNECT_TIMEOUT_MS, connectRedis, toolkitVersion } from './connection.js';
import {
  BULL_PREFIX,
  DEFAULT_QUEUE_NAME,
  keysOf,
  type ShardJobData,
  type StoredJob,
  type StoredPartial,
} from './job-store.js';
import { disposeContext, type JobLoader } from './loader.js';
import { parseRedisUrl, redact, redisOptions } from './redis-url.js';
import { QUEUE_STRATEGIES } from './strategies.js';

export interface WorkerOptions<Spec> {
  /** `redis://...` or `rediss://...` (see {@link DistributedOptions.queue}) */
  queue: string;
  /** queue name (default `crp`) */
  name?: string;
  /** loads model and data set from a job's spec: the same loader as the coordinator's */
  loader: JobLoader<Spec>;
  /** kinds this worker can run (default: every kind of @crp/attribution and the pruning criteria) */
  strategies?: readonly AnyShardedStrategy[];
  /** shards computed at once in this process (default 1). TF.js computes synchronously, so more than one only
   * helps when loading images dominates; run more processes for more cores. */
  concurrency?: number;
  /**
   * How long a shard's lock lasts without renewal (default 30000 ms). The lock is renewed between batches, so
   * it must exceed the longest batch; a worker killed mid-shard holds its shard that long, then another worker
   * takes it over.
   */
  lockDurationMs?: number;
  /** how often this worker looks for shards whose worker died (default 10000 ms) */
  stalledIntervalMs?: number;
  /** times a shard may lose its worker before it fails (default 2) */
  maxStalledCount?: number;
  /** this worker's name in errors and dashboards (default `<host>:<pid>`) */
  workerName?: string;
  connectTimeoutMs?: number;
  /** events for logs: a shard started, finished, or failed */
  onEvent?: (event: WorkerEvent) => void;
}

export type WorkerEvent =
  | { type: 'loaded'; fingerprint: string; kind: string; samples: number }
  | { type: 'started'; shard: number; fingerprint: string }
  | { type: 'finished'; shard: number; fingerprint: string; ms: number }
  | { type: 'failed'; shard: number; fingerprint: string; message: string };

/** A running worker: `close()` lets the shards in progress finish, then disconnects. */
export interface QueueWorker {
  readonly name: string;
  close(): Promise<void>;
}

interface Loaded {
  fingerprint: string;
  ctx: ShardContext;
  strategy: AnyShardedStrategy;
  resolved: { batchSize: number };
  samples: LabelledDataset;
}

/**
 * Loads the job `fingerprint` of queue `name` for a worker: its strategy, the loader's context for the job's spec,
 * checked against the job's identity (strategy version, toolkit, model, data set, number of samples), and the
 * samples it covers. The context is disposed again if a check fails.
 */
async function loadJob<Spec>(
  redis: Redis,
  name: string,
  fingerprint: string,
  options: WorkerOptions<Spec>,
): Promise<Loaded> {
  const text = await redis.get(keysOf(name).job(fingerprint));
  if (text === null) {
    throw new UnrecoverableError(
      `the job ${fingerprint} is no longer on queue '${name}' (finished or reset)`,
    );
  }
  const job = decodeShardJson<StoredJob>(text);
  const id = job.identity;
  const strategy = strategyOf(id.kind, options.strategies ?? QUEUE_STRATEGIES);
  if (strategy.version !== id.version) {
    throw new CrpError(
      'job-mismatch',
      `the job is ${id.kind} version ${id.version}, this worker runs version ${strategy.version}`,
    );
  }
  const ctx = await options.loader.load(job.spec as Spec);
  try {
    // after loading: the loader picks the TF.js backend, which is part of the toolkit
    const toolkit = toolkitVersion();
    if (toolkit !== id.toolkit) {
      throw new CrpError(
        'job-mismatch',
        `this worker runs ${toolkit}, the job was planned with ${id.toolkit}`,
      );
    }
    const ids = await options.loader.identify(job.spec as Spec, ctx);
    for (const what of ['model', 'data'] as const) {
      if (ids[what] !== id[what]) {
        throw new CrpError(
          'job-mismatch',
          `the ${what === 'data' ? 'data set' : 'model'} this worker loaded (${ids[what]}) is not the job's (${id[what]})`,
        );
      }
    }
    const samples = selectSamples(strategy, ctx.dataset, id.options as { batchSize: number });
    if (samples.size !== id.samples) {
      throw new CrpError(
        'job-mismatch',
        `this worker's data set gives ${samples.size} samples, the job has ${id.samples}`,
      );
    }
    options.onEvent?.({ type: 'loaded', fingerprint, kind: id.kind, samples: samples.size });
    return { fingerprint, ctx, strategy, resolved: id.options as { batchSize: number }, samples };
  } catch (err) {
    disposeContext(options.loader as JobLoader<never>, ctx);
    throw err;
  }
}

/**
 * Starts a worker that computes shards of the jobs on a queue (see `runDistributed`): for each job it loads the
 * model and data set once through `loader` from the job's spec, checks them (and its toolkit) against the job's
 * fingerprint, then computes shards and stores their partials (first write wins). A shard that throws is
 * retried by BullMQ (attempts and backoff set by the coordinator); the error names this worker and the shard.
 */
export async function startWorker<Spec>(options: WorkerOptions<Spec>): Promise<QueueWorker> {
  const target = parseRedisUrl(options.queue);
  const name = options.name ?? DEFAULT_QUEUE_NAME;
  const keys = keysOf(name);
  const workerName = options.workerName ?? `${hostname()}:${process.pid}`;
  const redis: Redis = await connectRedis(target, options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
  redis.on('error', () => {}); // ioredis reconnects; commands fail (and shards retry) meanwhile
  let loaded: Promise<Loaded> | undefined;
  let current: Loaded | undefined;

  const prepared = async (fingerprint: string): Promise<Loaded> => {
    if (loaded !== undefined) {
      const l = await loaded.catch(() => undefined);
      if (l?.fingerprint === fingerprint) return l;
    }
    // one job's context at a time: a new job replaces the last one's
    const next = loadJob(redis, name, fingerprint, options);
    loaded = next;
    const l = await next.catch((err: unknown) => {
      loaded = undefined; // not cached: the next shard tries again (the file may be back)
      throw err;
    });
    if (current !== undefined && current !== l)
      disposeContext(options.loader as JobLoader<never>, current.ctx);
    current = l;
    return l;
  };

  const processShard = async (job: Job<ShardJobData>) => {
    const { fingerprint, shard, start, count } = job.data;
    const t0 = performance.now();
    options.onEvent?.({ type: 'started', shard, fingerprint });
    try {
      const l = await prepared(fingerprint);
      const partial = await runShard(l.strategy, l.ctx, l.samples, l.resolved, {
        index: shard,
        start,
        count,
      });
      const stored: StoredPartial = { worker: workerName, partial };
      await redis.hsetnx(keys.partials(fingerprint), String(shard), encodeShardJson(stored));
      options.onEvent?.({ type: 'finished', shard, fingerprint, ms: performance.now() - t0 });
      return { worker: workerName };
    } catch (err) {
      const message = `worker ${workerName}: shard ${shard}: ${redact(describeError(err), target)}`;
      options.onEvent?.({ type: 'failed', shard, fingerprint, message });
      if (err instanceof UnrecoverableError) throw new UnrecoverableError(message);
      throw new Error(message);
    }
  };

  const worker = new Worker<ShardJobData>(name, processShard, {
    connection: redisOptions(target),
    prefix: BULL_PREFIX,
    name: workerName,
    concurrency: options.concurrency ?? 1,
    lockDuration: options.lockDurationMs ?? 30_000,
    stalledInterval: options.stalledIntervalMs ?? 10_000,
    maxStalledCount: options.maxStalledCount ?? 2,
  });
  worker.on('error', () => {}); // connection errors: ioredis reconnects
  await worker.waitUntilReady();
  return {
    name: workerName,
    close: async () => {
      await worker.close();
      if (current !== undefined) disposeContext(options.loader as JobLoader<never>, current.ctx);
      current = undefined;
      redis.disconnect();
    },
  };
}
