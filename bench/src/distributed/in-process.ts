/** The in-process figure of the distributed benchmark, in a process set up like a worker's: in-process.ts
 * <samples>. Loads the job, then for each line "run" on stdin computes the atlas and prints {"ms": ...}. */
import { createInterface } from 'node:readline';
import { conceptAtlas } from '@crp/attribution';
import { smallVggLoader, useWasm } from './small-vgg-job.js';

const samples = Number(process.argv[2]);
await useWasm();
const ctx = await smallVggLoader.load({ samples });
process.stdout.write('{"ready":true}\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== 'run') break;
  const t0 = performance.now();
  const atlas = await conceptAtlas(ctx.crp, ctx.dataset, { target: 0, samples: 'all' });
  if (atlas.samples !== samples) throw new Error(`voted ${atlas.samples} samples, expected ${samples}`);
  process.stdout.write(`${JSON.stringify({ ms: performance.now() - t0 })}\n`);
}
smallVggLoader.dispose!(ctx);
