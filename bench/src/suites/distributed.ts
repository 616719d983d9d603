import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { atlasStrategy } from '@crp/attribution';
import { runDistributed } from '@crp/queue';
import { startRedis } from '@crp/testing/redis';
import { startWorkerProcess, until } from '../distributed/processes.js';
import { smallVggLoader } from '../distributed/small-vgg-job.js';
import { type BenchResult, MIN_RUNS, median, result, type SuiteContext } from '../measure.js';

/**
 * The queue's overhead: the concept atlas of the small VGG (64x64, all conv/dense layers, class 0) over
 * `samples` samples in shards of 64, in one process (conceptAtlas, the same shard grid) and on BullMQ with 1
 * and 2 worker processes (redis-server on loopback; this process coordinates). Every process uses the same
 * single-threaded wasm backend; workers are warm (one job first), so each figure is the steady state of a
 * whole job: enqueue, compute, store and merge the partials.
 */
export async function distributedSuite({ log, quick }: SuiteContext): Promise<BenchResult[]> {
  const samples = quick ? 128 : 512;
  const spec = { samples };
  const options = { target: 0, samples: 'all' as const };
  const perSecond = (ms: number) => samples / (ms / 1000);

  log(`distributed: in process, ${samples} samples, ${MIN_RUNS} runs after a warm-up...`);
  const script = fileURLToPath(new URL('../distributed/in-process.ts', import.meta.url));
  const child = spawnSync(process.execPath, ['--import', 'tsx', script, String(samples), String(MIN_RUNS)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (child.status !== 0) throw new Error(`the in-process run failed (exit ${child.status})`);
  const local = (JSON.parse(child.stdout) as { runs: number[] }).runs;

  const redis = await startRedis();
  const ctx = await smallVggLoader.load(spec);
  const figures: Record<number, number[]> = {};
  try {
    for (const n of [1, 2]) {
      const name = `bench-${n}`;
      const workers = Array.from({ length: n }, () => startWorkerProcess(redis.url, name, 60_000));
      try {
        await until('the workers to start', () => workers.every((w) => w.name() !== undefined));
        const job = () =>
          runDistributed(atlasStrategy, options, {
            queue: redis.url,
            name,
            loader: smallVggLoader,
            spec,
            context: ctx,
            pollMs: 50,
          });
        log(`distributed: ${n} worker process${n > 1 ? 'es' : ''}, a warm-up job, then ${MIN_RUNS} runs...`);
        await job();
        const runs: number[] = [];
        for (let i = 0; i < MIN_RUNS; i++) {
          const t0 = performance.now();
          const atlas = await job();
          runs.push(performance.now() - t0);
          if (atlas.samples !== samples)
            throw new Error(`voted ${atlas.samples} samples, expected ${samples}`);
        }
        figures[n] = runs;
      } finally {
        for (const w of workers) w.child.kill('SIGTERM');
        await Promise.all(workers.map((w) => w.exited));
      }
    }
  } finally {
    smallVggLoader.dispose!(ctx);
    await redis.stop();
  }
  const localRate = median(local.map(perSecond));
  const oneRate = median(figures[1]!.map(perSecond));
  const twoRate = median(figures[2]!.map(perSecond));
  const overhead = (1 - oneRate / localRate) * 100;
  return [
    result(
      'attribution.distributed.small_vgg_64.in_process.samples_per_s',
      '1/s',
      local,
      `${samples} samples, conceptAtlas in one process on the same shard grid (64), single-threaded wasm`,
      perSecond,
    ),
    result(
      'attribution.distributed.small_vgg_64.samples_per_s',
      '1/s',
      figures[1]!,
      `1 worker process on BullMQ (redis on loopback), shards of 64; queue overhead ${overhead.toFixed(1)}% vs in process (goal < 10%)`,
      perSecond,
    ),
    result(
      'attribution.distributed.small_vgg_64.2workers.samples_per_s',
      '1/s',
      figures[2]!,
      `2 worker processes, shards of 64; ${(twoRate / oneRate).toFixed(2)}x of 1 worker (2 cores, shared with the coordinator)`,
      perSecond,
    ),
  ];
}
