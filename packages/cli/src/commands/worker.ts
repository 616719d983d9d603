import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { intArg, required } from '../args.js';
import { queueModule } from '../distributed.js';
import { cliJobLoader } from '../job-loader.js';

export const workerUsage = `crp worker --queue URL [--concurrency N] [options]

Computes the shards that crp atlas|refs|prune --queue put on a BullMQ queue (@crp/queue). For each job it
loads the model and data set from the paths in the job, exactly as the commands do (every worker must see
them at the same path: a shared file system or a mounted object store), checks them against the job's
fingerprint, and computes shards until stopped (SIGTERM or Ctrl-C: the shards in progress finish first).
A worker killed mid-shard loses nothing: once its lock expires another worker takes the shard over.

  --queue URL          redis://[user:password@]host:port/db or rediss:// (TLS); the password may come from
                       CRP_REDIS_PASSWORD instead (it is never printed); CRP_REDIS_CA_FILE=ca.pem trusts
                       a private CA for rediss://
  --queue-name NAME    queue name (default crp)
  --concurrency N      worker processes on this machine (default 1), each with its own model and backend
                       (TF.js computes synchronously: more cores need more processes)
  --lock-duration MS   how long a shard's lock lasts without renewal (default 30000); it is renewed between
                       batches, so it must exceed the longest batch
  --name NAME          this worker's name in errors and dashboards (default host:pid)`;

export interface WorkerSummary {
  /** worker names (one per process) */
  workers: string[];
  /** shards this process finished */
  shards: number;
}

function untilStopped(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

/** `--concurrency N` > 1: N processes of `crp worker`, stopped together. */
async function workerProcesses(argv: string[], n: number): Promise<WorkerSummary> {
  const here = import.meta.url;
  const fromSource = here.endsWith('.ts');
  const bin = fileURLToPath(new URL(fromSource ? '../bin.ts' : '../bin.js', here));
  const threads = String(Math.max(1, Math.floor(availableParallelism() / n)));
  const rest = argv.filter((a, i) => a !== '--concurrency' && argv[i - 1] !== '--concurrency');
  const children = Array.from({ length: n }, () =>
    fork(bin, ['worker', ...rest, '--concurrency', '1', '--threads', threads], {
      execArgv: fromSource ? ['--import', 'tsx'] : [],
      stdio: 'inherit',
    }),
  );
  const exits = children.map((c) => new Promise<number | null>((r) => c.on('exit', (code) => r(code))));
  const stopped = untilStopped().then(() => {
    for (const c of children) c.kill('SIGTERM');
  });
  await Promise.all(exits);
  void stopped;
  return { workers: children.map((c) => `pid ${c.pid}`), shards: 0 };
}

export async function worker(argv: string[], json: boolean): Promise<WorkerSummary> {
  const { values } = parseArgs({
    args: argv,
    options: {
      queue: { type: 'string' },
      'queue-name': { type: 'string' },
      concurrency: { type: 'string', default: '1' },
      'lock-duration': { type: 'string' },
      name: { type: 'string' },
    },
  });
  const url = required('queue', values.queue);
  const concurrency = intArg('concurrency', values.concurrency, 1)!;
  const lockDurationMs = intArg('lock-duration', values['lock-duration'], 1000);
  if (concurrency > 1) return workerProcesses(argv, concurrency);
  const { startWorker } = await queueModule();
  let shards = 0;
  const log = (s: string) => {
    if (!json) console.error(s);
  };
  const w = await startWorker({
    queue: url,
    loader: cliJobLoader,
    ...(values['queue-name'] === undefined ? {} : { name: values['queue-name'] }),
    ...(values.name === undefined ? {} : { workerName: values.name }),
    ...(lockDurationMs === undefined ? {} : { lockDurationMs }),
    onEvent: (e) => {
      if (e.type === 'loaded') log(`loaded the ${e.kind} job ${e.fingerprint} (${e.samples} samples)`);
      else if (e.type === 'finished') {
        shards++;
        log(`shard ${e.shard} done in ${(e.ms / 1000).toFixed(1)} s`);
      } else if (e.type === 'failed') log(e.message);
    },
  });
  log(
    `worker ${w.name} waiting for shards on queue '${values['queue-name'] ?? 'crp'}' (stop: SIGTERM or Ctrl-C)`,
  );
  await untilStopped();
  log(`worker ${w.name}: finishing the shards in progress...`);
  await w.close();
  return { workers: [w.name], shards };
}
