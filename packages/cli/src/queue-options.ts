import { parseShardPart, type ShardPart } from '@crp/attribution';
import { isCrpError } from '@crp/common';
import { intArg } from './args.js';
import { UsageError } from './usage-error.js';

/** Command-line options of the commands that can run beyond one machine (atlas, refs, prune). */
export const distributionOptions = {
  queue: { type: 'string' },
  'queue-name': { type: 'string' },
  'queue-reset': { type: 'boolean' },
  shard: { type: 'string' },
  'shard-size': { type: 'string' },
} as const;

export const distributionHelp = `  --queue URL         run on BullMQ workers (crp worker): redis://[user:password@]host:port/db or rediss://
                      (TLS); the password may come from CRP_REDIS_PASSWORD. Needs @crp/queue installed
  --queue-name NAME   queue name (default crp); one unfinished job per name
  --queue-reset       clear whatever job the queue holds first
  --shard i/n         compute part i of n (0 <= i < n) and write it to --out as a partial; combine the parts
                      with crp merge (Kubernetes Indexed Jobs, Slurm arrays)
  --shard-size N      samples per shard (default 64): the same value gives the same result everywhere`;

/** Where a command runs: here, on a queue, or as one part of n. */
export type Distribution =
  | { mode: 'local'; shardSize?: number }
  | { mode: 'queue'; url: string; name?: string; reset: boolean; shardSize?: number }
  | { mode: 'shard'; part: ShardPart; shardSize?: number };

/** Reads the distribution options; a bad `--shard` (3/2, 0/0, ...) or both `--queue` and `--shard` are usage
 * errors (exit status 2). */
export function parseDistribution(values: {
  queue?: string | undefined;
  'queue-name'?: string | undefined;
  'queue-reset'?: boolean | undefined;
  shard?: string | undefined;
  'shard-size'?: string | undefined;
}): Distribution {
  const shardSize = intArg('shard-size', values['shard-size'], 1);
  const size = shardSize === undefined ? {} : { shardSize };
  if (values.queue !== undefined && values.shard !== undefined) {
    throw new UsageError(
      'give --queue (workers take the shards) or --shard i/n (this process computes one part), not both',
    );
  }
  if (values.shard !== undefined) {
    try {
      return { mode: 'shard', part: parseShardPart(values.shard), ...size };
    } catch (err) {
      if (isCrpError(err)) throw new UsageError(`--shard: ${err.message}`);
      throw err;
    }
  }
  if (values.queue !== undefined) {
    return {
      mode: 'queue',
      url: values.queue,
      reset: values['queue-reset'] === true,
      ...(values['queue-name'] === undefined ? {} : { name: values['queue-name'] }),
      ...size,
    };
  }
  return { mode: 'local', ...size };
}
