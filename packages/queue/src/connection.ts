import { createRequire } from 'node:module';
import { CrpError, describeError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import { Redis } from 'ioredis';
import { type RedisTarget, redact, redisOptions } from './redis-url.js';

/** Default time to reach Redis before giving up (a clear error, never a hang). */
export const CONNECT_TIMEOUT_MS = 5000;

/**
 * Opens one connection to the target and checks it answers PING within `timeoutMs`; fails with a CrpError
 * `unreachable` that names the (redacted) URL and the reason. Used before any queue object is made, so a
 * wrong host, port, password or TLS setting ends in seconds instead of ioredis's endless reconnecting.
 */
export async function connectRedis(target: RedisTarget, timeoutMs = CONNECT_TIMEOUT_MS): Promise<Redis> {
  // (ioredis's RedisOptions type does not fit its own constructor under exactOptionalPropertyTypes)
  const RedisClient = Redis as unknown as new (options: object) => Redis;
  const client = new RedisClient(
    redisOptions(target, {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    }),
  );
  let lastError: unknown;
  client.on('error', (err) => {
    lastError = err;
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
    return client;
  } catch (err) {
    client.disconnect();
    const why = redact(describeError(lastError ?? err), target);
    throw new CrpError(
      'unreachable',
      `cannot reach Redis at ${target.display}: ${why}; check that the server runs and that host, port, database, password (${target.password === undefined ? 'none given' : 'given'}) and TLS (rediss://) are right`,
      { details: { url: target.display } },
    );
  } finally {
    clearTimeout(timer);
  }
}

const require = createRequire(import.meta.url);

/** The toolkit that computes shards: package versions and the TF.js backend. Workers whose toolkit differs
 * from the coordinator's refuse the job (floats may differ across versions and backends). */
export function toolkitVersion(): string {
  const version = (name: string) => (require(`${name}/package.json`) as { version: string }).version;
  return `@crp/attribution ${version('@crp/attribution')}, @crp/pruning ${version('@crp/pruning')}, tfjs ${tf.version_core} ${tf.getBackend() ?? 'no backend'}`;
}
