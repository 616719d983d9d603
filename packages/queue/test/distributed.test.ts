import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  atlasStrategy,
  conceptAtlas,
  maximization,
  maximizationStrategy,
  regionAtlas,
  regionAtlasStrategy,
} from '@crp/attribution';
import { encodeShardJson } from '@crp/attribution/internal';
import { type CrpError, isCrpError } from '@crp/common';
import { criterionStrategy, relevanceScores, taylorScores } from '@crp/pruning';
import { freePort, startRedis, type TestRedis } from '@crp/testing/redis';
import * as tf from '@tensorflow/tfjs-core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearQueue, type DistributedProgress, runDistributed, startWorker } from '../src/index.js';
import { labelsOf, type TestSpec, testLoader, useWasm } from './fixtures/loader.js';

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
let redis: TestRedis;
let names = 0;
/** a queue name per test: tests never see each other's jobs */
const queueName = () => `t${process.pid}-${++names}`;

beforeAll(async () => {
  await useWasm();
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** The in-process result for a spec (the reference every distributed run must equal to the last bit). */
async function inProcess<T>(
  spec: TestSpec,
  fn: (ctx: Awaited<ReturnType<typeof testLoader.load>>) => Promise<T>,
) {
  const ctx = await testLoader.load(spec);
  try {
    return await fn(ctx);
  } finally {
    testLoader.dispose!(ctx);
  }
}

async function rejection(p: Promise<unknown>): Promise<CrpError> {
  try {
    await p;
  } catch (err) {
    if (isCrpError(err)) return err;
    throw err;
  }
  throw new Error('expected a CrpError, but it resolved');
}

/** A worker process; `lines` collects its JSON events. */
function workerProcess(url: string, name: string, lockMs: number) {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', here('./fixtures/worker-process.ts'), url, name, String(lockMs)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines: Record<string, unknown>[] = [];
  let buffer = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffer += d.toString();
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      lines.push(JSON.parse(buffer.slice(0, i)) as Record<string, unknown>);
      buffer = buffer.slice(i + 1);
    }
  });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return { child, lines, exited };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`waited ${ms / 1000} s for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('distributed jobs give the in-process result to the last bit', () => {
  it('concept atlas, region atlas, maximisation and pruning criterion sums (two workers)', async () => {
    const spec = { seed: 3, samples: 22 };
    const name = queueName();
    const grid = { batchSize: 3 };
    const workers = await Promise.all(
      [1, 2].map((i) =>
        startWorker({ queue: redis.url, name, loader: testLoader, workerName: `w${i}`, concurrency: 2 }),
      ),
    );
    try {
      const run = { queue: redis.url, name, loader: testLoader, spec, shardSize: 4 };
      const atlasOptions = { target: 1, samples: 'all' as const, topK: 2, ...grid };
      const seen: DistributedProgress[] = [];
      expect(
        await runDistributed(atlasStrategy, atlasOptions, { ...run, onProgress: (p) => seen.push(p) }),
      ).toEqual(
        await inProcess(spec, (c) => conceptAtlas(c.crp, c.dataset, { ...atlasOptions, shardSize: 4 })),
      );
      expect(seen.at(-1)).toMatchObject({ done: 22, total: 22, shardsDone: 6, shards: 6, resumed: 0 });
      expect(seen.map((p) => p.shardsDone)).toEqual([1, 2, 3, 4, 5, 6]);

      const regionOptions = { target: 2, region: { centerSquare: 4 }, topK: 3, ...grid };
      expect(await runDistributed(regionAtlasStrategy, regionOptions, run)).toEqual(
        await inProcess(spec, (c) => regionAtlas(c.crp, c.dataset, { ...regionOptions, shardSize: 4 })),
      );

      const maxOptions = { layers: ['c2', 'd1'], topK: 5, ...grid };
      expect(await runDistributed(maximizationStrategy, maxOptions, run)).toEqual(
        await inProcess(spec, (c) => maximization(c.crp, c.dataset, { ...maxOptions, shardSize: 4 })),
      );

      const data = async (c: Awaited<ReturnType<typeof testLoader.load>>) => {
        const batch = await c.dataset.slice(0, c.dataset.size);
        return { images: batch.images as tf.Tensor4D, labels: batch.labels };
      };
      for (const criterion of ['relevance', 'taylor'] as const) {
        const got = await runDistributed(criterionStrategy, { criterion, ...grid }, run);
        const want = await inProcess(spec, async (c) => {
          const d = await data(c);
          const fn = criterion === 'relevance' ? relevanceScores : taylorScores;
          try {
            return fn(c.model!, { data: d, ...grid, shardSize: 4 });
          } finally {
            d.images.dispose();
          }
        });
        expect(got).toEqual(want);
      }
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });
});

describe('faults', () => {
  it('a worker killed with SIGKILL in the middle of a shard loses nothing: another worker retries it', async () => {
    const name = queueName();
    const spec = { seed: 5, samples: 24, delayMs: 150 };
    const options = { target: 1, samples: 'all' as const, topK: 2, batchSize: 2 };
    const reference = await inProcess(spec, (c) =>
      conceptAtlas(c.crp, c.dataset, { ...options, shardSize: 4 }),
    );
    const a = workerProcess(redis.url, name, 1500);
    const b = workerProcess(redis.url, name, 1500);
    try {
      await until('both workers to start', () =>
        [a, b].every((w) => w.lines.some((l) => l.type === 'ready')),
      );
      const by = new Map<number, string>();
      const job = runDistributed(atlasStrategy, options, {
        queue: redis.url,
        name,
        loader: testLoader,
        spec,
        shardSize: 4,
        onShard: (s, w) => by.set(s, w),
      });
      // kill A while it computes a shard (each shard: 2 batches, 150 ms each)
      await until('worker A to start a shard', () => a.lines.some((l) => l.type === 'started'));
      const killed = a.lines.find((l) => l.type === 'started')!.shard as number;
      await new Promise((r) => setTimeout(r, 120));
      a.child.kill('SIGKILL');
      await a.exited;
      expect(a.lines.some((l) => l.type === 'finished' && l.shard === killed)).toBe(false);
      expect(await job).toEqual(reference);
      const bName = b.lines.find((l) => l.type === 'ready')!.name as string;
      expect(by.get(killed)).toBe(bName);
      expect(by.size).toBe(6);
    } finally {
      b.child.kill('SIGTERM');
      a.child.kill('SIGKILL');
      await Promise.all([a.exited, b.exited]);
    }
  });

  it('a coordinator killed and started again resumes from the shards kept in Redis', async () => {
    const name = queueName();
    const spec = { seed: 6, samples: 32, delayMs: 60 };
    const options = { target: 1, samples: 'all' as const, topK: 2, batchSize: 2 };
    const reference = await inProcess(spec, (c) =>
      conceptAtlas(c.crp, c.dataset, { ...options, shardSize: 4 }),
    );
    const worker = await startWorker({ queue: redis.url, name, loader: testLoader });
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', here('./fixtures/coordinator-process.ts'), redis.url, name, JSON.stringify(spec)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    try {
      await until('the first coordinator to merge 3 shards', () => /"shardsDone":3/.test(out));
      child.kill('SIGKILL');
      await exited;
      expect(out).not.toContain('finished');
      const seen: DistributedProgress[] = [];
      const atlas = await runDistributed(atlasStrategy, options, {
        queue: redis.url,
        name,
        loader: testLoader,
        spec,
        shardSize: 4,
        lockMs: 2000,
        onProgress: (p) => seen.push(p),
      });
      expect(atlas).toEqual(reference);
      // at least the 3 merged shards (12 samples) came back from Redis, not from new work
      expect(seen[0]!.resumed).toBeGreaterThanOrEqual(12);
      expect(seen.at(-1)).toMatchObject({ done: 32, shardsDone: 8 });
      // the queue is free again
      const client = new (Redis as unknown as new (url: string) => Redis)(redis.url);
      expect(await client.keys(`crpjob:${name}:*`)).toEqual([]);
      client.disconnect();
    } finally {
      child.kill('SIGKILL');
      await worker.close();
    }
  });

  it('a model the workers cannot load fails the job after bounded attempts, naming worker and shard', async () => {
    const name = queueName();
    const spec = { seed: 7, samples: 8, modelFile: '/nonexistent/crp/model.json' };
    // the coordinator has the model (its own context); the workers read the spec's path and cannot
    const ctx = await testLoader.load({ seed: 7, samples: 8 });
    const worker = await startWorker({
      queue: redis.url,
      name,
      loader: testLoader,
      workerName: 'gpu-node-7',
    });
    try {
      const err = await rejection(
        runDistributed(
          atlasStrategy,
          { target: 1, samples: 'all' },
          {
            queue: redis.url,
            name,
            loader: testLoader,
            spec,
            context: ctx,
            shardSize: 4,
            attempts: 2,
            backoffMs: 50,
          },
        ),
      );
      expect(err.code).toBe('job-failed');
      expect(err.message).toMatch(
        /shard \d of the atlas job failed after 2 attempts: worker gpu-node-7: shard \d: cannot read the model '\/nonexistent\/crp\/model.json'/,
      );
      expect(err.message).toMatch(/fix the cause and run the same job again/);
    } finally {
      await worker.close();
      testLoader.dispose!(ctx);
      await clearQueue(redis.url, name);
    }
  });

  it('a shard delivered again after it was merged is counted once', async () => {
    const name = queueName();
    // slow enough (3 shards of 2 batches, 100 ms each) that the coordinator polls after the re-delivery
    const spec = { seed: 8, samples: 12, delayMs: 100 };
    const options = { target: 1, samples: 'all' as const, topK: 2, batchSize: 2 };
    const reference = await inProcess(spec, (c) =>
      conceptAtlas(c.crp, c.dataset, { ...options, shardSize: 4 }),
    );
    const client = new (Redis as unknown as new (url: string) => Redis)(redis.url);
    const worker = await startWorker({ queue: redis.url, name, loader: testLoader });
    const redelivered: number[] = [];
    try {
      const atlas = await runDistributed(atlasStrategy, options, {
        queue: redis.url,
        name,
        loader: testLoader,
        spec,
        shardSize: 4,
        onShard: (s) => {
          if (s === 2) return;
          // a late duplicate of a merged shard, with content that would show if it were counted
          const bogus = { worker: 'late', partial: { samples: 1000, layers: {} } };
          void client.keys(`crpjob:${name}:*:partials`).then(async ([key]) => {
            if (key !== undefined) {
              await client.hset(key, String(s), encodeShardJson(bogus));
              redelivered.push(s);
            }
          });
        },
      });
      expect(redelivered.length).toBeGreaterThan(0);
      expect(atlas).toEqual(reference);
      expect(atlas.samples).toBe(12);
    } finally {
      client.disconnect();
      await worker.close();
    }
  });
});

describe('bad input', () => {
  it('an unreachable Redis fails within the connect timeout, without printing the password', async () => {
    const port = await freePort(); // nothing listens there
    const url = `redis://crp:hunter2@127.0.0.1:${port}/0`;
    const ctx = await testLoader.load({ seed: 1, samples: 4 });
    try {
      const err = await rejection(
        runDistributed(
          atlasStrategy,
          { target: 1 },
          {
            queue: url,
            loader: testLoader,
            spec: { seed: 1, samples: 4 },
            context: ctx,
            connectTimeoutMs: 2000,
          },
        ),
      );
      expect(err.code).toBe('unreachable');
      expect(err.message).toContain(`redis://crp:***@127.0.0.1:${port}/0`);
      expect(err.message).not.toContain('hunter2');
      const w = await rejection(startWorker({ queue: url, loader: testLoader, connectTimeoutMs: 2000 }));
      expect(w.code).toBe('unreachable');
      expect(w.message).not.toContain('hunter2');
      expect(JSON.stringify(w.details)).not.toContain('hunter2');
    } finally {
      testLoader.dispose!(ctx);
    }
  });

  it('a password-protected Redis works with the password in the URL; a wrong one fails clearly', async () => {
    const secured = await startRedis({ password: 's3cret-pw' });
    const name = queueName();
    const spec = { seed: 2, samples: 6 };
    try {
      const worker = await startWorker({ queue: secured.url, name, loader: testLoader });
      const atlas = await runDistributed(
        atlasStrategy,
        { target: 0, samples: 'all', topK: 1 },
        { queue: secured.url, name, loader: testLoader, spec },
      );
      expect(atlas.samples).toBe(6);
      await worker.close();
      const wrong = secured.url.replace('s3cret-pw', 'not-it');
      const err = await rejection(startWorker({ queue: wrong, loader: testLoader, connectTimeoutMs: 2000 }));
      expect(err.code).toBe('unreachable');
      expect(err.message).toMatch(/redis:\/\/:\*\*\*@127\.0\.0\.1/);
      expect(err.message).not.toMatch(/not-it|s3cret/);
    } finally {
      await secured.stop();
    }
  });

  it('rediss:// (TLS): a private CA through CRP_REDIS_CA_FILE works; without it, or with plain redis://, a clear error', async () => {
    const secured = await startRedis({
      password: 'tls-pw',
      tls: { certFile: here('fixtures/tls/server-cert.pem'), keyFile: here('fixtures/tls/server-key.pem') },
    });
    const before = process.env.CRP_REDIS_CA_FILE;
    const name = queueName();
    try {
      expect(secured.url).toMatch(/^rediss:\/\//);
      delete process.env.CRP_REDIS_CA_FILE;
      const untrusted = await rejection(
        startWorker({ queue: secured.url, loader: testLoader, connectTimeoutMs: 2000 }),
      );
      expect(untrusted.code).toBe('unreachable');
      expect(untrusted.message).toMatch(/self[- ]signed certificate/);
      expect(untrusted.message).not.toMatch(/tls-pw/);
      const plain = secured.url.replace('rediss://', 'redis://');
      expect(
        (await rejection(startWorker({ queue: plain, loader: testLoader, connectTimeoutMs: 2000 }))).code,
      ).toBe('unreachable');

      process.env.CRP_REDIS_CA_FILE = here('fixtures/tls/no-such-ca.pem');
      const missing = await rejection(startWorker({ queue: secured.url, loader: testLoader }));
      expect(missing.code).toBe('not-found');
      expect(missing.message).toMatch(/CRP_REDIS_CA_FILE.*no-such-ca\.pem/);

      process.env.CRP_REDIS_CA_FILE = here('fixtures/tls/server-cert.pem');
      const worker = await startWorker({ queue: secured.url, name, loader: testLoader });
      try {
        const atlas = await runDistributed(
          atlasStrategy,
          { target: 0, samples: 'all', topK: 1 },
          { queue: secured.url, name, loader: testLoader, spec: { seed: 3, samples: 6 } },
        );
        expect(atlas.samples).toBe(6);
      } finally {
        await worker.close();
      }
    } finally {
      if (before === undefined) delete process.env.CRP_REDIS_CA_FILE;
      else process.env.CRP_REDIS_CA_FILE = before;
      await secured.stop();
    }
  });

  it('a queue holding an unfinished job of another model is refused with the difference', async () => {
    const name = queueName();
    const stop = new AbortController();
    const client = new (Redis as unknown as new (url: string) => Redis)(redis.url);
    const first = runDistributed(
      atlasStrategy,
      { target: 1, samples: 'all' },
      {
        queue: redis.url,
        name,
        loader: testLoader,
        spec: { seed: 3, samples: 8 },
        signal: stop.signal,
      },
    ).catch((e: unknown) => e);
    try {
      await until(
        'the first job to be on the queue',
        async () => (await client.get(`crpjob:${name}:current`)) !== null,
      );
      const err = await rejection(
        runDistributed(
          atlasStrategy,
          { target: 1, samples: 'all' },
          { queue: redis.url, name, loader: testLoader, spec: { seed: 4, samples: 8 } },
        ),
      );
      expect(err.code).toBe('job-mismatch');
      expect(err.message).toMatch(
        /holds an unfinished job of another model or version \(model tiny model, seed 3 vs tiny model, seed 4\)/,
      );
      expect(err.message).toMatch(/reset/);
    } finally {
      stop.abort();
      await first;
      await clearQueue(redis.url, name);
      expect(await client.get(`crpjob:${name}:current`)).toBeNull();
      client.disconnect();
    }
  });

  it('leaks no tensors in the coordinator', async () => {
    const name = queueName();
    const worker = await startWorker({ queue: redis.url, name, loader: testLoader });
    const before = tf.memory().numTensors;
    await runDistributed(
      atlasStrategy,
      { target: 2, samples: 'all' },
      { queue: redis.url, name, loader: testLoader, spec: { seed: 9, samples: 5 } },
    );
    await worker.close();
    expect(tf.memory().numTensors).toBe(before);
    expect(labelsOf(5)).toHaveLength(5);
  });
});
