import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
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
 * and 2 worker processes (redis-server on loopback; this process coordinates). Every computing process uses the
 * same single-threaded wasm backend and is warm (one run first). The three set-ups run in rounds (in process,
 * 1 worker, 2 workers, again), so that a change in the machine's load hits all three alike; each figure is a
 * whole job: enqueue, compute, store and merge the partials.
 */
export async function distributedSuite({ log, quick }: SuiteContext): Promise<BenchResult[]> {
  const samples = quick ? 128 : 512;
  const spec = { samples };
  const options = { target: 0, samples: 'all' as const };
  const perSecond = (ms: number) => samples / (ms / 1000);

  const script = fileURLToPath(new URL('../distributed/in-process.ts', import.meta.url));
  const local = spawn(process.execPath, ['--import', 'tsx', script, String(samples)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const replies = createInterface({ input: local.stdout! })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await replies.next()).value as string) as { ms?: number };
  const redis = await startRedis();
  const ctx = await smallVggLoader.load(spec);
  const queues = [1, 2].map((n) => ({
    n,
    name: `bench-${n}`,
    workers: Array.from({ length: n }, () => startWorkerProcess(redis.url, `bench-${n}`, 60_000)),
  }));
  const runs: Record<string, number[]> = { local: [], 1: [], 2: [] };
  try {
    await next(); // loaded
    await until('the workers to start', () =>
      queues.every((q) => q.workers.every((w) => w.name() !== undefined)),
    );
    const inProcess = async () => {
      local.stdin!.write('run\n');
      return (await next()).ms!;
    };
    const queued = async (name: string) => {
      const t0 = performance.now();
      const atlas = await runDistributed(atlasStrategy, options, {
        queue: redis.url,
        name,
        loader: smallVggLoader,
        spec,
        context: ctx,
        pollMs: 50,
      });
      if (atlas.samples !== samples) throw new Error(`voted ${atlas.samples} samples, expected ${samples}`);
      return performance.now() - t0;
    };
    log(`distributed: ${samples} samples; warm-up (in process, 1 worker, 2 workers)...`);
    await inProcess();
    for (const q of queues) await queued(q.name);
    for (let round = 1; round <= MIN_RUNS; round++) {
      log(`distributed: round ${round} of ${MIN_RUNS} (in process, 1 worker, 2 workers)...`);
      runs.local!.push(await inProcess());
      for (const q of queues) runs[q.n]!.push(await queued(q.name));
    }
  } finally {
    local.stdin!.end();
    for (const q of queues) for (const w of q.workers) w.child.kill('SIGTERM');
    await Promise.all(queues.flatMap((q) => q.workers.map((w) => w.exited)));
    smallVggLoader.dispose!(ctx);
    await redis.stop();
  }
  const localRate = median(runs.local!.map(perSecond));
  const oneRate = median(runs[1]!.map(perSecond));
  const twoRate = median(runs[2]!.map(perSecond));
  return [
    result(
      'attribution.distributed.small_vgg_64.in_process.samples_per_s',
      '1/s',
      runs.local!,
      `${samples} samples, conceptAtlas in one process on the same shard grid (64), single-threaded wasm`,
      perSecond,
    ),
    result(
      'attribution.distributed.small_vgg_64.samples_per_s',
      '1/s',
      runs[1]!,
      `1 worker process on BullMQ (redis on loopback), shards of 64; queue overhead ${((1 - oneRate / localRate) * 100).toFixed(1)}% vs in process (goal < 10%)`,
      perSecond,
    ),
    result(
      'attribution.distributed.small_vgg_64.2workers.samples_per_s',
      '1/s',
      runs[2]!,
      `2 worker processes, shards of 64; ${(twoRate / oneRate).toFixed(2)}x of 1 worker (2 cores, shared with the coordinator)`,
      perSecond,
    ),
  ];
}
