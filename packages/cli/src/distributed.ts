import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { DEFAULT_SHARD_SIZE, runShardPart, type ShardContext, type ShardedStrategy } from '@crp/attribution';
import { encodeShardJson } from '@crp/attribution/internal';
import { CrpError } from '@crp/common';
import { writeFileAtomic } from '@crp/common/node';
import * as tf from '@tensorflow/tfjs-core';
import { type CliJobSpec, cliJobLoader, identifyCliJob } from './job-loader.js';
import { ProgressBar, progressCallback } from './progress.js';
import type { Distribution } from './queue-options.js';

const require = createRequire(import.meta.url);

/** What `--shard i/n` wrote. */
export interface ShardOutput {
  /** the partial file (merge the parts with crp merge) */
  partial: string;
  part: string;
  /** shards of the job this part covers, of `shards` */
  covered: number[];
  shards: number;
}

/** The toolkit that computed a partial: partials of another version or backend are never merged together. */
export function cliToolkit(): string {
  const { version } = require('../package.json') as { version: string };
  return `@crp/cli ${version}, tfjs ${tf.version_core} ${tf.getBackend()}`;
}

/** @crp/queue, installed separately (single-machine users never need it). */
export async function queueModule(): Promise<typeof import('@crp/queue')> {
  try {
    return await import('@crp/queue');
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') {
      throw new CrpError(
        'invalid-argument',
        '--queue and crp worker need the optional package @crp/queue next to @crp/cli (npm i @crp/queue)',
        { cause: err },
      );
    }
    throw err;
  }
}

/**
 * Runs a command's analysis beyond this process: on a BullMQ queue (`--queue`: enqueue, wait with a progress
 * bar, return the result) or as part i of n (`--shard i/n`: compute the part, write its partial to `out`).
 */
export async function runBeyond<O, R extends { batchSize: number }, P, T>(
  strategy: ShardedStrategy<O, R, P, T>,
  options: O,
  dist: Exclude<Distribution, { mode: 'local' }>,
  spec: CliJobSpec,
  ctx: ShardContext,
  out: string,
  label: string,
  json: boolean,
): Promise<{ result: T } | ShardOutput> {
  if (dist.mode === 'queue') {
    const { runDistributed } = await queueModule();
    let bar: ProgressBar | undefined;
    // Ctrl-C or SIGTERM: save what is merged and release the job, so the same command resumes at once
    const stop = new AbortController();
    const abort = () => stop.abort();
    process.once('SIGINT', abort);
    process.once('SIGTERM', abort);
    const result = await runDistributed(strategy, options, {
      signal: stop.signal,
      queue: dist.url,
      loader: cliJobLoader,
      spec,
      context: ctx,
      reset: dist.reset,
      ...(dist.name === undefined ? {} : { name: dist.name }),
      ...(dist.shardSize === undefined ? {} : { shardSize: dist.shardSize }),
      onProgress: (p) => {
        bar ??= new ProgressBar(`${label} (queue)`, p.total ?? 0, process.stderr, json);
        bar.update(
          p.done,
          `shards ${p.shardsDone}/${p.shards}, ${p.samplesPerSecond.toFixed(1)} samples/s`,
          p.etaMs,
        );
      },
    }).finally(() => {
      process.off('SIGINT', abort);
      process.off('SIGTERM', abort);
    });
    return { result };
  }
  const resolved = strategy.resolve(ctx, options);
  const ids = await identifyCliJob(spec, ctx);
  const file = await runShardPart(
    strategy,
    ctx,
    resolved,
    {
      model: ids.model,
      data: ids.data,
      toolkit: cliToolkit(),
      shardSize: dist.shardSize ?? DEFAULT_SHARD_SIZE,
    },
    dist.part,
    progressCallback(`${label} part ${dist.part.index}/${dist.part.count}`, json),
  );
  await mkdir(dirname(out), { recursive: true });
  await writeFileAtomic(out, `${encodeShardJson(file)}\n`);
  return {
    partial: out,
    part: `${dist.part.index}/${dist.part.count}`,
    covered: file.covered,
    shards: file.shards,
  };
}

/** Prints what a --shard run wrote (unless --json). */
export function reportShard(s: ShardOutput, json: boolean): void {
  if (json) return;
  const range = s.covered.length === 0 ? 'no shards' : `shards ${s.covered[0]}..${s.covered.at(-1)}`;
  console.log(`part ${s.part}: ${range} of ${s.shards} -> ${s.partial} (combine the parts with crp merge)`);
}
