/** A worker process of the check and the benchmark: worker.ts <redis url> <queue name> <lock ms>. One JSON line
 * per event on stdout. */
import { startWorker } from '@crp/queue';
import { smallVggLoader, useWasm } from './small-vgg-job.js';

const [url, name, lockMs] = process.argv.slice(2);
await useWasm();
const worker = await startWorker({
  queue: url!,
  name: name!,
  loader: smallVggLoader,
  lockDurationMs: Number(lockMs),
  stalledIntervalMs: 1000,
  onEvent: (e) => process.stdout.write(`${JSON.stringify(e)}\n`),
});
process.stdout.write(`${JSON.stringify({ type: 'ready', name: worker.name })}\n`);
const stop = () => {
  void worker.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
