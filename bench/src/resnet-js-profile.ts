/**
 * The JavaScript between the kernels of a resnet50 LRP heatmap (issue 21 item 7): warms up, then runs `--runs`
 * heatmaps and prints CPU and wall per heatmap, the relevance sum and a hash of the heatmap's bytes (the
 * bit-identity check). `--prof FILE` writes a V8 CPU profile (100 us sampling) of the timed heatmaps only.
 *
 *   pnpm --filter @crp/bench exec tsx src/resnet-js-profile.ts [--threads 1] [--runs 5] [--size 224] [--prof out.cpuprofile]
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { selectBackend } from '@crp/backend';
import { disposeResult } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import { startCpuProfile } from './measure.js';
import { BENCH_RESNETS, benchResNetHeatmap } from './torch-fixtures.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    size: { type: 'string', default: '224' },
    runs: { type: 'string', default: '5' },
    warm: { type: 'string', default: '2' },
    prof: { type: 'string' },
  },
});
await selectBackend({
  prefer: ['wasm'],
  threads: values.threads === 'auto' ? 'auto' : Number(values.threads),
});
const size = Number(values.size);
const workload = await benchResNetHeatmap(BENCH_RESNETS.resnet50, size);
const { image, lrp } = workload;
let sum = 0;
let hash = '';
const heatmap = (check: boolean) => {
  const r = lrp.attribute(image, { target: 0 });
  if (check) {
    const data = r.relevance.dataSync() as Float32Array;
    hash = createHash('sha256')
      .update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
      .digest('hex');
    sum = tf.tidy(() => tf.sum(r.relevance).dataSync()[0]!);
  }
  disposeResult(r);
};
for (let i = 0; i < Number(values.warm); i++) heatmap(i === 0);
const before = tf.memory().numTensors;
const runs = Number(values.runs);
const stopProfile = await startCpuProfile(values.prof);
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < runs; i++) heatmap(false);
const wall = (performance.now() - t0) / runs;
const c = process.cpuUsage(c0);
await stopProfile();
console.log(
  JSON.stringify({
    threads: values.threads,
    cpuMs: (c.user + c.system) / 1000 / runs,
    userMs: c.user / 1000 / runs,
    sysMs: c.system / 1000 / runs,
    wallMs: wall,
    sum,
    hash: hash.slice(0, 16),
    tensors: `${before} -> ${tf.memory().numTensors}`,
    load: (await import('node:os')).loadavg()[0],
  }),
);
workload.dispose();
