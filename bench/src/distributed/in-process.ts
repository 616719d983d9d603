/** The in-process figure of the distributed benchmark, in a process set up like a worker's:
 * in-process.ts <samples> <runs>. Prints {"runs": [ms, ...]} (after one warm-up run). */
import { conceptAtlas } from '@crp/attribution';
import { smallVggLoader, useWasm } from './small-vgg-job.js';

const [samples, runs] = process.argv.slice(2).map(Number);
await useWasm();
const ctx = await smallVggLoader.load({ samples: samples! });
const times: number[] = [];
for (let i = 0; i <= runs!; i++) {
  const t0 = performance.now();
  const atlas = await conceptAtlas(ctx.crp, ctx.dataset, { target: 0, samples: 'all' });
  if (atlas.samples !== samples) throw new Error(`voted ${atlas.samples} samples, expected ${samples}`);
  if (i > 0) times.push(performance.now() - t0); // the first run warms up
}
smallVggLoader.dispose!(ctx);
process.stdout.write(`${JSON.stringify({ runs: times })}\n`);
