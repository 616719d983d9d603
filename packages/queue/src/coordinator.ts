import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  DEFAULT_SHARD_SIZE,
  type JobIdentity,
  planShards,
  type ShardContext,
  type ShardedStrategy,
} from '@crp/attribution';
import { decodeShardJson, encodeShardJson, jobMismatch, selectSamples } from '@crp/attribution/internal';
import { CrpError, describeError, type Progress, progressTracker } from '@crp/common';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { CONNECT_TIMEOUT_MS, connectRedis, toolkitVersion } from './connection.js';
import {
  BULL_PREFIX,
  DEFAULT_QUEUE_NAME,
  fingerprintOf,
  keysOf,
  type ShardJobData,
  type StoredJob,
  type StoredPartial,
  type StoredTotal,
  shardJobId,
} from './job-store.js';
import { disposeContext, type JobLoader } from './loader.js';
import { parseRedisUrl, type RedisTarget, redact, redisOptions } from './redis-url.js';

/** Progress of a distributed job: samples (the shared {@link Progress}, with ETA) and shards. */
export interface DistributedProgress extends Progress {
  /** shards merged, of `shards` */
  shardsDone: number;
  shards: number;
  /** samples of shards that an earlier coordinator had already merged or that were finished before this one
   * started */
  resumed: number;
  /** samples merged per second since this coordinator started (resumed ones excluded) */
  samplesPerSecond: number;
}

export interface DistributedOptions<Spec> {
  /** `redis://[user:password@]host:port/db` or `rediss://...` (TLS); the password may come from
   * `CRP_REDIS_PASSWORD` instead */
  queue: string;
  /** queue name (default `crp`): one unfinished job per queue name */
  name?: string;
  /** how the coordinator and every worker load model and data from `spec` */
  loader: JobLoader<Spec>;
  /** the job's model and data set (paths or URLs every worker can read), plain JSON */
  spec: Spec;
  /** the coordinator's own loaded context (default: loaded from `spec` and disposed at the end) */
  context?: ShardContext;
  /** samples per shard (default 64) */
  shardSize?: number;
  /** attempts per shard before the job fails (default 3), with exponential backoff from `backoffMs` (1000) */
  attempts?: number;
  backoffMs?: number;
  /** time to reach Redis before failing with `unreachable` (default 5000 ms) */
  connectTimeoutMs?: number;
  /** how often finished shards are collected (default 250 ms) */
  pollMs?: number;
  /** the coordinator's lock on the job expires this long after its last renewal (default 15000 ms): a second
   * coordinator waits that long for a killed one's lock */
  lockMs?: number;
  /** clear whatever job the queue holds before starting (another model's included) */
  reset?: boolean;
  onProgress?: (progress: DistributedProgress) => void;
  /** called once per newly merged shard with the worker that computed it */
  onShard?: (shard: number, worker: string) => void;
  /** stops waiting with a `job-failed` error (the job stays in the queue; a later coordinator resumes it) */
  signal?: AbortSignal;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/** Removes a queue's job (any model's): its shards from BullMQ and its state. Workers still computing one of its
 * shards fail that shard harmlessly (the job is gone). */
export async function clearQueue(
  url: string,
  name = DEFAULT_QUEUE_NAME,
  timeoutMs = CONNECT_TIMEOUT_MS,
): Promise<void> {
  const target = parseRedisUrl(url);
  const redis = await connectRedis(target, timeoutMs);
  const queue = new Queue(name, { connection: redisOptions(target), prefix: BULL_PREFIX });
  try {
    await clearState(redis, queue, name);
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

async function clearState(redis: Redis, queue: Queue, name: string): Promise<void> {
  const keys = keysOf(name);
  const fp = await redis.get(keys.current);
  await queue.obliterate({ force: true });
  if (fp !== null) await redis.del(keys.job(fp), keys.partials(fp), keys.total(fp), keys.lock(fp));
  await redis.del(keys.current);
}

/**
 * Runs a sharded strategy on a BullMQ queue: splits the job's samples into shards, enqueues them (ids derived
 * from the job's fingerprint, so enqueuing again is a no-op), waits while any number of workers
 * (`startWorker`) compute them, merges each shard's partial exactly once as it arrives, and returns the
 * result: the in-process function's, to the last bit.
 *
 * - A coordinator stopped and started again with the same job resumes: the merged partial and which shards it
 *   holds are kept in Redis (saved at least once a second), finished shards are not recomputed, and shards that
 *   had failed are retried.
 * - A shard delivered twice (a worker presumed dead that finishes anyway) is counted once: the first stored
 *   partial wins and a merged shard is never merged again.
 * - A queue holding an unfinished job of another kind, model, data set, options or toolkit is refused, naming
 *   the difference (`job-mismatch`), unless `reset`.
 * - A shard that fails `attempts` times fails the job (`job-failed`) with the last error, which names the worker
 *   and the shard; an unreachable Redis fails within `connectTimeoutMs` (`unreachable`). No message contains
 *   the password.
 */
export async function runDistributed<O, R extends { batchSize: number }, P, T, Spec>(
  strategy: ShardedStrategy<O, R, P, T>,
  options: O,
  run: DistributedOptions<Spec>,
): Promise<T> {
  const target = parseRedisUrl(run.queue);
  const name = run.name ?? DEFAULT_QUEUE_NAME;
  const shardSize = run.shardSize ?? DEFAULT_SHARD_SIZE;
  const attempts = run.attempts ?? 3;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new CrpError('invalid-argument', `attempts must be a positive integer, got ${attempts}`);
  }
  // everything about the job is checked before the queue is touched
  const ctx = run.context ?? (await run.loader.load(run.spec));
  try {
    const resolved = strategy.resolve(ctx, options);
    const samples = selectSamples(strategy, ctx.dataset, resolved);
    const shards = planShards(samples.size, shardSize);
    const ids = await run.loader.identify(run.spec, ctx);
    const identity: JobIdentity = {
      kind: strategy.kind,
      version: strategy.version,
      options: decodeShardJson(encodeShardJson(resolved)),
      model: ids.model,
      data: ids.data,
      toolkit: toolkitVersion(),
      samples: samples.size,
      shardSize,
    };
    const redis = await connectRedis(target, run.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
    const queue: Queue = new Queue(name, { connection: redisOptions(target), prefix: BULL_PREFIX });
    queue.on('error', () => {}); // connection trouble surfaces through the commands below
    try {
      return await coordinate(strategy, resolved, identity, shards, redis, queue, target, name, run);
    } finally {
      await queue.close().catch(() => {});
      redis.disconnect();
    }
  } finally {
    if (run.context === undefined) disposeContext(run.loader as JobLoader<never>, ctx);
  }
}

/** One coordinator's view of its job: where it lives in Redis and BullMQ, and what it is. */
interface Coordination<Spec> {
  redis: Redis;
  queue: Queue;
  target: RedisTarget;
  name: string;
  keys: ReturnType<typeof keysOf>;
  fp: string;
  identity: JobIdentity;
  shards: { index: number; start: number; count: number }[];
  run: DistributedOptions<Spec>;
}

/** The merged partial and what it holds, as kept in Redis between coordinators. */
interface MergeState {
  total: StoredTotal;
  merged: Set<number>;
  /** shards whose partials were stored before this coordinator started */
  finishedBefore: Set<number>;
  /** samples of shards merged or finished before this coordinator started */
  resumed: number;
  /** merged since the last save */
  dirty: boolean;
  lastSave: number;
}

async function coordinate<R extends { batchSize: number }, P, T, Spec>(
  strategy: ShardedStrategy<unknown, R, P, T>,
  resolved: R,
  identity: JobIdentity,
  shards: { index: number; start: number; count: number }[],
  redis: Redis,
  queue: Queue,
  target: RedisTarget,
  name: string,
  run: DistributedOptions<Spec>,
): Promise<T> {
  const keys = keysOf(name);
  const job: Coordination<Spec> = {
    redis,
    queue,
    target,
    name,
    keys,
    fp: fingerprintOf(identity),
    identity,
    shards,
    run,
  };
  if (run.reset) await clearState(redis, queue, name);
  await claimQueue(job);
  const lock = await lockJob(job);
  try {
    const state = await mergedSoFar(job, strategy.empty(resolved));
    await enqueueShards(job, state);
    await collectShards(job, state, (into, got) => strategy.merge(into as P, got as P));
    const result = strategy.finish(state.total.partial as P, resolved);
    // done: the queue is free for the next job
    await redis.del(keys.job(job.fp), keys.partials(job.fp), keys.total(job.fp));
    if ((await redis.get(keys.current)) === job.fp) await redis.del(keys.current);
    return result;
  } catch (err) {
    if (err instanceof CrpError) throw err;
    throw new CrpError('job-failed', `the distributed job failed: ${redact(describeError(err), target)}`, {
      cause: err,
    });
  } finally {
    await lock.release();
  }
}

/** One unfinished job per queue: ours (its description stored), or refused with what differs. */
async function claimQueue(job: Coordination<unknown>): Promise<void> {
  const { redis, keys, fp, identity, name } = job;
  await redis.set(keys.current, fp, 'NX');
  const current = await redis.get(keys.current);
  if (current !== fp) {
    const theirs = await redis.get(keys.job(current ?? ''));
    const why =
      theirs === null
        ? `job ${current} (no description stored)`
        : jobMismatch(decodeShardJson<StoredJob>(theirs).identity, identity);
    throw new CrpError(
      'job-mismatch',
      `queue '${name}' at ${job.target.display} holds an unfinished job of another model or version (${why}); wait for it to finish, use another queue name, or reset the queue (reset: true, crp --queue-reset)`,
      { details: { theirs: current, ours: fp } },
    );
  }
  const stored: StoredJob = {
    fingerprint: fp,
    identity,
    spec: job.run.spec,
    shards: job.shards.length,
    createdAt: new Date().toISOString(),
  };
  await redis.set(keys.job(fp), encodeShardJson(stored), 'NX');
}

/** One coordinator per job at a time: waits for a killed one's lock to expire (after `lockMs`), then holds
 * the lock, renewing it, until `release`. */
async function lockJob(job: Coordination<unknown>): Promise<{ release: () => Promise<void> }> {
  const { redis, run, name } = job;
  const key = job.keys.lock(job.fp);
  const lockMs = run.lockMs ?? 15_000;
  const token = `${hostname()}:${process.pid}:${randomUUID()}`;
  const deadline = Date.now() + lockMs + 5000;
  while ((await redis.set(key, token, 'PX', lockMs, 'NX')) === null) {
    if (Date.now() > deadline || run.signal?.aborted) {
      throw new CrpError(
        'job-mismatch',
        `another coordinator (${await redis.get(key)}) is running this job on queue '${name}'`,
      );
    }
    await sleep(250, run.signal);
  }
  // only the holder of the token renews or deletes the lock
  const ifHeld = (then: string) =>
    `if redis.call('get', KEYS[1]) == ARGV[1] then return ${then} else return 0 end`;
  const renew = setInterval(
    () => {
      void redis
        .eval(ifHeld("redis.call('pexpire', KEYS[1], ARGV[2])"), 1, key, token, String(lockMs))
        .catch(() => {});
    },
    Math.max(200, Math.floor(lockMs / 3)),
  );
  return {
    release: async () => {
      clearInterval(renew);
      await redis.eval(ifHeld("redis.call('del', KEYS[1])"), 1, key, token).catch(() => {});
    },
  };
}

/** What earlier coordinators merged, and which shards finished before this one started. */
async function mergedSoFar(job: Coordination<unknown>, empty: unknown): Promise<MergeState> {
  const { redis, keys, fp, shards } = job;
  const saved = await redis.get(keys.total(fp));
  const total: StoredTotal =
    saved === null ? { merged: [], partial: empty } : decodeShardJson<StoredTotal>(saved);
  const merged = new Set(total.merged);
  const finishedBefore = new Set((await redis.hkeys(keys.partials(fp))).map(Number));
  const resumed = [...merged, ...[...finishedBefore].filter((s) => !merged.has(s))].reduce(
    (sum, s) => sum + (shards[s]?.count ?? 0),
    0,
  );
  return { total, merged, finishedBefore, resumed, dirty: false, lastSave: performance.now() };
}

/** Shards that failed in an earlier run get their attempts again; the rest are enqueued (existing ids are
 * kept as they are by BullMQ). */
async function enqueueShards(job: Coordination<unknown>, state: MergeState): Promise<void> {
  const { queue, fp, run } = job;
  for (const failed of await queue.getFailed(0, -1)) {
    if (failed.id?.startsWith(`${fp}-`)) await failed.retry();
  }
  const todo = job.shards.filter((s) => !state.merged.has(s.index) && !state.finishedBefore.has(s.index));
  for (let i = 0; i < todo.length; i += 500) {
    await queue.addBulk(
      todo.slice(i, i + 500).map((s) => ({
        name: job.identity.kind,
        data: { fingerprint: fp, shard: s.index, start: s.start, count: s.count },
        opts: {
          jobId: shardJobId(fp, s.index),
          attempts: run.attempts ?? 3,
          backoff: { type: 'exponential', delay: run.backoffMs ?? 1000 },
          removeOnComplete: true,
          removeOnFail: false,
        },
      })),
    );
  }
}

/** Samples merged so far as {@link DistributedProgress}; returns the function to call per merged shard. */
function progressOf(job: Coordination<unknown>, state: MergeState): (samples: number) => void {
  const { run, shards } = job;
  const resumed = state.resumed;
  const tick = progressTracker(
    shards.reduce((s, x) => s + x.count, 0),
    run.onProgress === undefined
      ? undefined
      : (p) =>
          run.onProgress!({
            ...p,
            shardsDone: state.merged.size,
            shards: shards.length,
            resumed,
            samplesPerSecond: p.elapsedMs > 0 ? ((p.done - resumed) / p.elapsedMs) * 1000 : 0,
          }),
    { alreadyDone: resumed, unit: 'samples' },
  );
  if (resumed > 0) tick(0);
  return tick;
}

/** Waits for every shard, merging each partial once as it arrives and saving the merged partial at least
 * once a second; stops on the abort signal or a shard out of attempts (saving first). */
async function collectShards(
  job: Coordination<unknown>,
  state: MergeState,
  merge: (into: unknown, got: unknown) => void,
): Promise<void> {
  const { run, shards } = job;
  const tick = progressOf(job, state);
  while (state.merged.size < shards.length) {
    if (run.signal?.aborted) {
      if (state.dirty) await saveMerged(job, state);
      throw new CrpError(
        'job-failed',
        `stopped before the end: ${state.merged.size} of ${shards.length} shards are kept in Redis; run the same job again to resume`,
        { cause: run.signal.reason },
      );
    }
    await mergeArrived(job, state, merge, tick);
    const done = state.merged.size === shards.length;
    if (state.dirty && (performance.now() - state.lastSave > 1000 || done)) await saveMerged(job, state);
    if (done) break;
    await failIfShardFailed(job, state);
    await sleep(run.pollMs ?? 250, run.signal);
  }
}

/** Merges the partials stored by workers since the last look. */
async function mergeArrived(
  job: Coordination<unknown>,
  state: MergeState,
  merge: (into: unknown, got: unknown) => void,
  tick: (samples: number) => void,
): Promise<void> {
  const { redis, keys, fp } = job;
  for (const f of await redis.hkeys(keys.partials(fp))) {
    const s = Number(f);
    if (state.merged.has(s)) continue; // delivered again after it was merged: counted once
    const text = await redis.hget(keys.partials(fp), f);
    if (text === null) continue;
    const got = decodeShardJson<StoredPartial>(text);
    merge(state.total.partial, got.partial);
    state.merged.add(s);
    state.dirty = true;
    job.run.onShard?.(s, got.worker);
    // shards finished before this coordinator started are already in `resumed`
    tick(state.finishedBefore.has(s) ? 0 : (job.shards[s]?.count ?? 0));
  }
}

/** The merged partial and its shard list in one transaction with the removal of the partials it holds. */
async function saveMerged(job: Coordination<unknown>, state: MergeState): Promise<void> {
  const { redis, keys, fp } = job;
  const fields = (await redis.hkeys(keys.partials(fp))).filter((f) => state.merged.has(Number(f)));
  const tx = redis
    .multi()
    .set(keys.total(fp), encodeShardJson({ merged: [...state.merged], partial: state.total.partial }));
  if (fields.length > 0) tx.hdel(keys.partials(fp), ...fields);
  await tx.exec();
  state.dirty = false;
  state.lastSave = performance.now();
}

/** A shard out of attempts fails the job, with the worker's last error (what is merged is saved first). */
async function failIfShardFailed(job: Coordination<unknown>, state: MergeState): Promise<void> {
  const { queue, fp, shards } = job;
  if ((await queue.getFailedCount()) === 0) return;
  const failed = (await queue.getFailed(0, -1)).find((j) => j.id?.startsWith(`${fp}-`));
  if (failed === undefined) return;
  if (state.dirty) await saveMerged(job, state);
  const shard = (failed.data as ShardJobData).shard;
  throw new CrpError(
    'job-failed',
    `shard ${shard} of the ${job.identity.kind} job failed after ${failed.attemptsMade} attempt${failed.attemptsMade === 1 ? '' : 's'}: ${redact(failed.failedReason ?? 'no reason recorded', job.target)}. ${state.merged.size} of ${shards.length} shards are kept: fix the cause and run the same job again to resume`,
    { details: { shard, fingerprint: fp } },
  );
}
