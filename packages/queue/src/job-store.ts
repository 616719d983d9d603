import { createHash } from 'node:crypto';
import type { JobIdentity } from '@crp/attribution';
import { canonicalJson } from '@crp/attribution/internal';

/** BullMQ's key prefix for the shard queues (bull-board: `new Queue(name, { prefix: 'crp', connection })`). */
export const BULL_PREFIX = 'crp';

/** The queue name unless given. */
export const DEFAULT_QUEUE_NAME = 'crp';

/** What the coordinator stores about its job, for workers and for a restarted coordinator. */
export interface StoredJob {
  fingerprint: string;
  identity: JobIdentity;
  /** the loader's spec (model and data set paths or URLs) */
  spec: unknown;
  /** shards of the job (of `identity.shardSize` samples, the last one shorter) */
  shards: number;
  createdAt: string;
}

/** The data of one BullMQ job: one shard. */
export interface ShardJobData {
  fingerprint: string;
  shard: number;
  start: number;
  count: number;
}

/** What a worker stores per finished shard (in the job's partials hash, first write wins). */
export interface StoredPartial {
  worker: string;
  partial: unknown;
}

/** What the coordinator persists: the merged partial and exactly which shards it holds. */
export interface StoredTotal {
  merged: number[];
  partial: unknown;
}

/** The fingerprint of a job: SHA-256 of its identity (kind, version, options, model, data, toolkit, samples,
 * shard size), shortened. Names BullMQ job ids and Redis keys. */
export function fingerprintOf(identity: JobIdentity): string {
  return createHash('sha256').update(canonicalJson(identity)).digest('hex').slice(0, 16);
}

/** The Redis keys of a queue (apart from BullMQ's own, under `crp:<name>:`). */
export function keysOf(name: string) {
  const base = `crpjob:${name}`;
  return {
    /** fingerprint of the queue's unfinished job */
    current: `${base}:current`,
    job: (fp: string) => `${base}:${fp}:job`,
    partials: (fp: string) => `${base}:${fp}:partials`,
    total: (fp: string) => `${base}:${fp}:total`,
    lock: (fp: string) => `${base}:${fp}:coordinator`,
  };
}

/** BullMQ job id of a shard: derived from the fingerprint, so enqueuing twice is a no-op. */
export function shardJobId(fingerprint: string, shard: number): string {
  return `${fingerprint}-${shard}`;
}
