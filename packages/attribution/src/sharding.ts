import { CrpError, type ProgressCallback, progressTracker } from '@crp/common';
import type { CondAttribution } from '@crp/core';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  batchesOf,
  isLabelledDataset,
  type LabelledDataset,
  type LabelledSource,
  type OwnedBatch,
  sizeOf,
} from './dataset.js';

/**
 * Sharded strategies: every analysis over a data set (concept atlas, region atlas, maximisation, decomposition
 * atlas, pruning criteria) as "shards of samples in, mergeable partial results out". One description per kind
 * serves the in-process functions, worker threads ({@link runJob}), queue workers (`@crp/queue`) and
 * `--shard i/n` files alike, so they all give the same result:
 *
 * - the job's samples (in data-set order) are cut into shards of `shardSize` consecutive samples (default 64);
 * - each shard is computed in batches of `batchSize` that start at the shard's first sample, in every runner,
 *   so every batch holds the same images whoever computes it;
 * - a shard's partial keeps its sums exactly (exact sums of @crp/common), so merging partials in any grouping and order
 *   gives the same doubles; votes and top-k lists are exact anyway.
 *
 * The result is therefore bit-identical for any number of workers, any failure and retry, and any split into
 * `--shard` files, provided the same `shardSize` (and `batchSize`) is used.
 */

/** Samples per shard unless given: small enough to lose little work when a worker dies, large enough that a
 * queue's per-shard overhead stays small. */
export const DEFAULT_SHARD_SIZE = 64;

/** What a batch is computed with: the CondAttribution, and the model itself for strategies that build their
 * own engine (pruning criteria). */
export interface BatchContext {
  crp: CondAttribution;
  model?: LayersModel;
}

/** What a shard is computed with: a {@link BatchContext} and the random-access data set of the job. */
export interface ShardContext extends BatchContext {
  dataset: LabelledDataset;
}

/**
 * How one kind of analysis runs in shards. `Resolved` and `Partial` are plain JSON (they travel to workers and
 * into files); `merge` must be exact (associative and commutative to the last bit), as sums kept with
 * `addExact` of @crp/common and votes are.
 */
export interface ShardedStrategy<Options, Resolved extends { batchSize: number }, Partial, Result> {
  /** Stable name of the kind (job files, queues and partial files name it). */
  readonly kind: string;
  /** Bumped whenever `Resolved`, `Partial` or the computation change: partials of another version never mix. */
  readonly version: number;
  /** Checks the options against the model before any work; the plain-JSON options every worker uses. */
  resolve(ctx: BatchContext, options: Options): Resolved;
  /** The samples the job covers, in data-set order (e.g. the samples of the explained class). */
  select(source: LabelledSource | LabelledDataset, resolved: Resolved): LabelledSource | LabelledDataset;
  /** The partial of no samples. */
  empty(resolved: Resolved): Partial;
  /** The partial of one batch (its images, labels and data-set indices). */
  batch(ctx: BatchContext, batch: OwnedBatch, resolved: Resolved): Partial;
  /** Adds `b` into `a` (in place, exact) and returns `a`. */
  merge(a: Partial, b: Partial): Partial;
  /** The result of the merged partial of all shards. */
  finish(partial: Partial, resolved: Resolved): Result;
}

/** Any {@link ShardedStrategy} (for registries and runners that do not know the kind). */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds strategies of every kind
export type AnyShardedStrategy = ShardedStrategy<any, any, any, any>;

/** Shard `index`: the job's samples [start, start + count) (positions in the job's sample order). */
export interface Shard {
  index: number;
  start: number;
  count: number;
}

export function checkShardSize(shardSize: number): void {
  if (!Number.isInteger(shardSize) || shardSize < 1) {
    throw new CrpError('invalid-argument', `shardSize must be a positive integer, got ${shardSize}`);
  }
}

/** The shards of a job of `samples` samples. */
export function planShards(samples: number, shardSize = DEFAULT_SHARD_SIZE): Shard[] {
  checkShardSize(shardSize);
  const shards: Shard[] = [];
  for (let start = 0, index = 0; start < samples; start += shardSize, index++) {
    shards.push({ index, start, count: Math.min(shardSize, samples - start) });
  }
  return shards;
}

/** Part `index` of `count` (0-based, as Kubernetes' JOB_COMPLETION_INDEX): which of `shards` shards it runs. */
export interface ShardPart {
  index: number;
  count: number;
}

/**
 * Parses `i/n` (0 <= i < n, whole numbers): part i of n of a job, for batch systems (a Kubernetes Indexed Job's
 * `$JOB_COMPLETION_INDEX/n`, a Slurm array's `$SLURM_ARRAY_TASK_ID/n`). Anything else is refused.
 */
export function parseShardPart(spec: string): ShardPart {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  const index = m === null ? Number.NaN : Number(m[1]);
  const count = m === null ? Number.NaN : Number(m[2]);
  if (m === null || count < 1 || index >= count || !Number.isSafeInteger(count)) {
    throw new CrpError(
      'invalid-argument',
      `a shard part is i/n with whole numbers 0 <= i < n (part i of n, counted from 0), got '${spec}'`,
    );
  }
  return { index, count };
}

/** The shards part `part` runs: a contiguous run of the job's shards, parts differing by at most one shard. */
export function shardsOfPart(shards: readonly Shard[], part: ShardPart): Shard[] {
  const from = Math.floor((part.index * shards.length) / part.count);
  const to = Math.floor(((part.index + 1) * shards.length) / part.count);
  return shards.slice(from, to);
}

/** The batches of `samples` samples on the shard grid, as [start, count]: shard after shard of `shardSize`,
 * each in batches of `batchSize` from the shard's first sample (for callers that slice tensors themselves). */
export function gridRanges(
  samples: number,
  batchSize: number,
  shardSize = DEFAULT_SHARD_SIZE,
): [number, number][] {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new CrpError('invalid-argument', `batchSize must be a positive integer, got ${batchSize}`);
  }
  const out: [number, number][] = [];
  for (const shard of planShards(samples, shardSize)) {
    for (let at = 0; at < shard.count; at += batchSize) {
      out.push([shard.start + at, Math.min(batchSize, shard.count - at)]);
    }
  }
  return out;
}

/** Rows [start, start + count) of a batch as a batch the consumer owns. */
function rowsOf(batch: OwnedBatch, start: number, count: number): OwnedBatch {
  return {
    images: tf.slice(batch.images, start, count),
    labels: batch.labels.slice(start, start + count),
    indices: batch.indices.slice(start, start + count),
    owned: true,
  };
}

/**
 * The batches of a source on the shard grid: shard after shard of `shardSize` samples, each in batches of
 * `batchSize` starting at the shard's first sample. A {@link LabelledDataset} is sliced directly; any other
 * source is re-cut (rows split or joined) so that it yields exactly the same batches. Batches are the
 * consumer's to dispose when `owned`.
 */
export async function* gridBatches(
  source: LabelledSource | LabelledDataset,
  batchSize: number,
  shardSize: number,
): AsyncGenerator<OwnedBatch> {
  const ranges = gridRanges(isLabelledDataset(source) ? source.size : 0, batchSize, shardSize);
  if (isLabelledDataset(source)) {
    for (const [start, count] of ranges) {
      const batch = await source.slice(start, count);
      yield {
        images: batch.images,
        labels: batch.labels,
        indices: batch.indices ?? [],
        owned: batch.transient === true,
      };
    }
    return;
  }
  // a stream: gather rows until the next grid batch is complete
  let position = 0;
  const pending: OwnedBatch[] = [];
  let pendingRows = 0;
  const wanted = () => Math.min(batchSize, shardSize - (position % shardSize));
  const take = (rows: number): OwnedBatch => {
    const first = pending[0]!;
    if (first.labels.length === rows) {
      pending.shift();
      pendingRows -= rows;
      position += rows;
      return first;
    }
    const parts: OwnedBatch[] = [];
    let need = rows;
    while (need > 0) {
      const head = pending[0]!;
      const n = head.labels.length;
      if (n <= need) {
        parts.push(head);
        pending.shift();
        need -= n;
      } else {
        parts.push(rowsOf(head, 0, need));
        pending[0] = rowsOf(head, need, n - need);
        if (head.owned) head.images.dispose();
        need = 0;
      }
    }
    pendingRows -= rows;
    position += rows;
    const joined: OwnedBatch = {
      images: parts.length === 1 ? parts[0]!.images : tf.concat(parts.map((p) => p.images)),
      labels: parts.flatMap((p) => [...p.labels]),
      indices: parts.flatMap((p) => [...p.indices]),
      owned: parts.length === 1 ? parts[0]!.owned : true,
    };
    if (parts.length > 1) for (const p of parts) if (p.owned) p.images.dispose();
    return joined;
  };
  try {
    for await (const batch of batchesOf(source, batchSize)) {
      pending.push(batch);
      pendingRows += batch.labels.length;
      while (pendingRows >= wanted()) yield take(wanted());
    }
    while (pendingRows > 0) yield take(Math.min(wanted(), pendingRows));
  } finally {
    for (const p of pending) if (p.owned) p.images.dispose();
  }
}

/** Runs `strategy.batch` over batches, merging into `into`; `tick` gets each batch's sample count. */
async function accumulate<R extends { batchSize: number }, P>(
  strategy: ShardedStrategy<unknown, R, P, unknown>,
  ctx: BatchContext,
  batches: AsyncIterable<OwnedBatch>,
  resolved: R,
  into: P,
  tick?: (samples: number) => void,
): Promise<P> {
  for await (const batch of batches) {
    try {
      strategy.merge(into, strategy.batch(ctx, batch, resolved));
    } finally {
      if (batch.owned) batch.images.dispose();
    }
    tick?.(batch.labels.length);
  }
  return into;
}

/**
 * The partial of one shard of a job: its samples (positions [start, start + count) of `samples`, the job's
 * samples as `strategy.select` gives them) in batches of `resolved.batchSize` from the shard's first sample.
 */
export async function runShard<R extends { batchSize: number }, P>(
  strategy: ShardedStrategy<unknown, R, P, unknown>,
  ctx: BatchContext,
  samples: LabelledDataset,
  resolved: R,
  shard: Shard,
): Promise<P> {
  if (
    !Number.isInteger(shard.start) ||
    !Number.isInteger(shard.count) ||
    shard.start < 0 ||
    shard.count < 1 ||
    shard.start + shard.count > samples.size
  ) {
    throw new CrpError(
      'invalid-argument',
      `shard ${shard.index} covers samples [${shard.start}, ${shard.start + shard.count}) but the job has ${samples.size}: is this the data set the job was planned on?`,
    );
  }
  const batches = (async function* () {
    for (let at = 0; at < shard.count; at += resolved.batchSize) {
      const b = await samples.slice(shard.start + at, Math.min(resolved.batchSize, shard.count - at));
      yield { images: b.images, labels: b.labels, indices: b.indices ?? [], owned: b.transient === true };
      // let timers run between batches (a queue worker renews its lock on them)
      await new Promise((r) => setTimeout(r, 0));
    }
  })();
  return accumulate(strategy, ctx, batches, resolved, strategy.empty(resolved));
}

/** The job's samples as a random-access data set (a queue or job file needs random access). */
export function selectSamples<R extends { batchSize: number }>(
  strategy: ShardedStrategy<unknown, R, unknown, unknown>,
  dataset: LabelledDataset,
  resolved: R,
): LabelledDataset {
  const chosen = strategy.select(dataset, resolved);
  if (!isLabelledDataset(chosen)) {
    throw new CrpError(
      'invalid-argument',
      `the ${strategy.kind} strategy did not keep the data set's random access`,
    );
  }
  return chosen;
}

export interface ShardedRunOptions {
  /** samples per shard (default {@link DEFAULT_SHARD_SIZE}); the same value gives the same bits everywhere */
  shardSize?: number;
  /** called after each batch with the samples done */
  onProgress?: ProgressCallback;
  /** label of the progress events */
  phase?: string;
}

/**
 * Runs a strategy in this process over any source, on the shard grid: the merged partial of all its samples.
 * (The in-process functions, e.g. `conceptAtlas`, are this followed by `finish`.)
 */
export async function runShardedPartial<R extends { batchSize: number }, P>(
  strategy: ShardedStrategy<unknown, R, P, unknown>,
  ctx: BatchContext,
  source: LabelledSource | LabelledDataset,
  resolved: R,
  options: ShardedRunOptions = {},
): Promise<P> {
  const shardSize = options.shardSize ?? DEFAULT_SHARD_SIZE;
  checkShardSize(shardSize);
  const chosen = strategy.select(source, resolved);
  const tick = progressTracker(sizeOf(chosen), options.onProgress, {
    unit: 'samples',
    ...(options.phase === undefined ? {} : { phase: options.phase }),
  });
  return accumulate(
    strategy,
    ctx,
    gridBatches(chosen, resolved.batchSize, shardSize),
    resolved,
    strategy.empty(resolved),
    tick,
  );
}

/** Resolves the options, runs every shard in this process and finishes: what the in-process functions do. */
export async function runSharded<O, R extends { batchSize: number }, P, T>(
  strategy: ShardedStrategy<O, R, P, T>,
  ctx: BatchContext,
  source: LabelledSource | LabelledDataset,
  options: O,
  run: ShardedRunOptions = {},
): Promise<T> {
  const resolved = strategy.resolve(ctx, options);
  return strategy.finish(await runShardedPartial(strategy, ctx, source, resolved, run), resolved);
}

/**
 * What a sharded job is, for refusing partials of another job: the kind and its version, the resolved options,
 * the model's and the data set's identity (e.g. size and SHA-256 of the files; the caller decides), the
 * toolkit's version, the job's sample count and shard size.
 */
export interface JobIdentity {
  kind: string;
  version: number;
  options: unknown;
  model: string;
  data: string;
  toolkit: string;
  samples: number;
  shardSize: number;
}

/** Why two jobs differ (the fields that differ, with both values), or undefined when they are the same job. */
export function jobMismatch(a: JobIdentity, b: JobIdentity): string | undefined {
  const fields: (keyof JobIdentity)[] = [
    'kind',
    'version',
    'toolkit',
    'model',
    'data',
    'samples',
    'shardSize',
    'options',
  ];
  const show = (v: unknown) => {
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    return s.length > 120 ? `${s.slice(0, 117)}...` : s;
  };
  const differ = fields
    .filter((f) => canonicalJson(a[f]) !== canonicalJson(b[f]))
    .map((f) => `${f} ${show(a[f])} vs ${show(b[f])}`);
  return differ.length === 0 ? undefined : differ.join('; ');
}

/** JSON with object keys sorted (the same value always gives the same text). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)),
        )
      : v,
  );
}

const NON_FINITE = '__crp_number__:';

/** JSON text of a partial or result, keeping NaN and infinities (plain JSON would turn them into null). */
export function encodeShardJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'number' && !Number.isFinite(v) ? `${NON_FINITE}${v}` : v,
  );
}

/** Reads what {@link encodeShardJson} wrote. */
export function decodeShardJson<T>(text: string): T {
  return JSON.parse(text, (_key, v: unknown) =>
    typeof v === 'string' && v.startsWith(NON_FINITE) ? Number(v.slice(NON_FINITE.length)) : v,
  ) as T;
}

/** The partial of some shards of a job (a `--shard i/n` file), mergeable with the others by {@link mergeShardFiles}. */
export interface ShardFile<P = unknown> {
  format: 'crp-shards/1';
  job: JobIdentity;
  /** shards in the job */
  shards: number;
  /** the shards this partial covers */
  covered: number[];
  partial: P;
}

/** Computes the shards of one part of a job in this process: the content of a `--shard i/n` file. */
export async function runShardPart<R extends { batchSize: number }, P>(
  strategy: ShardedStrategy<unknown, R, P, unknown>,
  ctx: ShardContext,
  resolved: R,
  job: Omit<JobIdentity, 'kind' | 'version' | 'options' | 'samples'>,
  part: ShardPart,
  onProgress?: ProgressCallback,
): Promise<ShardFile<P>> {
  const samples = selectSamples(strategy, ctx.dataset, resolved);
  const shards = planShards(samples.size, job.shardSize);
  const mine = shardsOfPart(shards, part);
  const tick = progressTracker(
    mine.reduce((s, x) => s + x.count, 0),
    onProgress,
    { unit: 'samples' },
  );
  const partial = strategy.empty(resolved);
  for (const shard of mine) {
    strategy.merge(partial, await runShard(strategy, ctx, samples, resolved, shard));
    tick(shard.count);
  }
  return {
    format: 'crp-shards/1',
    job: { kind: strategy.kind, version: strategy.version, options: resolved, samples: samples.size, ...job },
    shards: shards.length,
    covered: mine.map((s) => s.index),
    partial,
  };
}

/**
 * Merges `--shard i/n` partials into the job's result. Every shard must be covered exactly once; a file given
 * twice (or two files covering the same shards, e.g. a batch task that ran twice) counts once; files of another
 * job (kind, version, options, model, data set, toolkit, sample count or shard size) are refused with the
 * difference.
 */
export function mergeShardFiles<R extends { batchSize: number }, P, T>(
  strategy: ShardedStrategy<unknown, R, P, T>,
  files: readonly ShardFile<P>[],
  names: readonly string[] = files.map((_, i) => `partial ${i + 1}`),
): T {
  if (files.length === 0) throw new CrpError('invalid-argument', 'give at least one partial file to merge');
  const first = files[0]!;
  files.forEach((f, i) => {
    if (f?.format !== 'crp-shards/1') {
      throw new CrpError('unsupported-format', `${names[i]} is not a shard partial (format crp-shards/1)`);
    }
  });
  if (first.job.kind !== strategy.kind) {
    throw new CrpError('job-mismatch', `${names[0]} holds a ${first.job.kind} job, not ${strategy.kind}`);
  }
  const seen = new Map<number, string>();
  const merged = strategy.empty(first.job.options as R);
  const coveredKeys = new Set<string>();
  files.forEach((f, i) => {
    const why = jobMismatch(first.job, f.job);
    if (why !== undefined || f.shards !== first.shards) {
      throw new CrpError(
        'job-mismatch',
        `${names[i]} belongs to another job than ${names[0]}: ${why ?? `${f.shards} vs ${first.shards} shards`}`,
      );
    }
    const key = [...f.covered].sort((a, b) => a - b).join(',');
    if (coveredKeys.has(key)) return; // the same shards again (a task that ran twice): counted once
    for (const s of f.covered) {
      const other = seen.get(s);
      if (other !== undefined) {
        throw new CrpError(
          'job-mismatch',
          `shard ${s} is in both ${other} and ${names[i]}, which cover different shard sets; merge the partials of one split (the same n)`,
        );
      }
      seen.set(s, names[i]!);
    }
    coveredKeys.add(key);
    strategy.merge(merged, f.partial);
  });
  const missing = Array.from({ length: first.shards }, (_, s) => s).filter((s) => !seen.has(s));
  if (missing.length > 0) {
    throw new CrpError(
      'empty-data',
      `the partials cover ${seen.size} of ${first.shards} shards; missing shards: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', ...' : ''} (run the missing --shard parts)`,
    );
  }
  return strategy.finish(merged, first.job.options as R);
}
