/**
 * pnpm distributed:check — the distributed atlas end to end on this machine: a redis-server on a free loopback
 * port, this process as the coordinator, 3 worker processes; 256 samples of the small VGG (64x64), the global
 * atlas and the centre-region atlas in shards of 64; one worker is killed with SIGKILL in the middle of a shard
 * of the global atlas. Both results are compared with the in-process functions; the last line is
 *
 *   distributed atlas: 256 samples, 3 workers, 1 killed, identical=true
 *
 * and the exit status is 1 when they are not identical.
 */
import { atlasStrategy, conceptAtlas, regionAtlas, regionAtlasStrategy } from '@crp/attribution';
import { canonicalJson } from '@crp/attribution/internal';
import { runDistributed } from '@crp/queue';
import { startRedis } from '@crp/testing/redis';
import { startWorkerProcess, until } from './processes.js';
import { smallVggLoader, useWasm } from './small-vgg-job.js';

const SAMPLES = 256;
const WORKERS = 3;
const LOCK_MS = 5000;
const log = (s: string) => process.stderr.write(`${s}\n`);

await useWasm();
const redis = await startRedis();
const name = 'check';
const spec = { samples: SAMPLES };
const atlasOptions = { target: 0, samples: 'all' as const };
const regionOptions = { target: 0, samples: 'all' as const, region: { centerSquare: 32 } };
const workers = Array.from({ length: WORKERS }, () => startWorkerProcess(redis.url, name, LOCK_MS));
let identical = false;
let killed = 0;
try {
  log(`redis-server on 127.0.0.1:${redis.port}; the in-process reference first...`);
  const ctx = await smallVggLoader.load(spec);
  const t0 = performance.now();
  const referenceAtlas = await conceptAtlas(ctx.crp, ctx.dataset, atlasOptions);
  const referenceRegion = await regionAtlas(ctx.crp, ctx.dataset, regionOptions);
  log(`in process: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await until('the workers to start', () => workers.every((w) => w.name() !== undefined));

  const by = new Map<number, string>();
  const job = runDistributed(atlasStrategy, atlasOptions, {
    queue: redis.url,
    name,
    loader: smallVggLoader,
    spec,
    context: ctx,
    onShard: (s, w) => by.set(s, w),
    onProgress: (p) =>
      log(`atlas: shards ${p.shardsDone}/${p.shards}, ${p.samplesPerSecond.toFixed(1)} samples/s`),
  });
  // kill the first worker that starts a shard, while it computes it
  await until('a worker to start a shard', () =>
    workers.some((w) => w.events.some((e) => e.type === 'started')),
  );
  const victim = workers.find((w) => w.events.some((e) => e.type === 'started'))!;
  const shard = victim.events.find((e) => e.type === 'started')!.shard as number;
  await new Promise((r) => setTimeout(r, 300));
  const finishedFirst = victim.events.some((e) => e.type === 'finished' && e.shard === shard);
  victim.child.kill('SIGKILL');
  await victim.exited;
  killed = 1;
  log(
    `killed worker ${victim.name()} (SIGKILL) in the middle of shard ${shard}${finishedFirst ? ' (it had finished it: not mid-shard!)' : ''}`,
  );
  const atlas = await job;
  const retriedBy = by.get(shard);
  log(`shard ${shard} was computed again by ${retriedBy}`);
  const region = await runDistributed(regionAtlasStrategy, regionOptions, {
    queue: redis.url,
    name,
    loader: smallVggLoader,
    spec,
    context: ctx,
    onProgress: (p) =>
      log(`region atlas: shards ${p.shardsDone}/${p.shards}, ${p.samplesPerSecond.toFixed(1)} samples/s`),
  });
  smallVggLoader.dispose!(ctx);
  const sameAtlas = canonicalJson(atlas) === canonicalJson(referenceAtlas);
  const sameRegion = canonicalJson(region) === canonicalJson(referenceRegion);
  log(`global atlas identical: ${sameAtlas}; region atlas identical: ${sameRegion}`);
  identical =
    sameAtlas &&
    sameRegion &&
    !finishedFirst &&
    retriedBy !== undefined &&
    retriedBy !== victim.name() &&
    atlas.samples === SAMPLES;
} finally {
  for (const w of workers) w.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.exited));
  await redis.stop();
}
console.log(
  `distributed atlas: ${SAMPLES} samples, ${WORKERS} workers, ${killed} killed, identical=${identical}`,
);
process.exit(identical ? 0 : 1);
