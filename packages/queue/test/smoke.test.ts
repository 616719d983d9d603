import { atlasStrategy, conceptAtlas } from '@crp/attribution';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runDistributed, startWorker } from '../src/index.js';
import { testLoader, useWasm } from './fixtures/loader.js';
import { startRedis, type TestRedis } from './fixtures/redis-server.js';

let redis: TestRedis;
beforeAll(async () => {
  await useWasm();
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

it('smoke', async () => {
  const spec = { seed: 3, samples: 20 };
  const options = { target: 1, samples: 'all' as const, topK: 2, batchSize: 3 };
  const ctx = await testLoader.load(spec);
  const reference = await conceptAtlas(ctx.crp, ctx.dataset, { ...options, shardSize: 4 });
  testLoader.dispose!(ctx);
  const worker = await startWorker({ queue: redis.url, name: 'smoke', loader: testLoader });
  const t0 = Date.now();
  const got = await runDistributed(atlasStrategy, options, { queue: redis.url, name: 'smoke', loader: testLoader, spec, shardSize: 4, onProgress: (p) => console.log(JSON.stringify(p)) });
  console.log('ms', Date.now() - t0);
  await worker.close();
  expect(got).toEqual(reference);
});
