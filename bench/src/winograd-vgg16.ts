/**
 * VGG16's forward pass at 224 px (PixelFlipping's batched full passes, issue 23) with `@crp/backend`'s Winograd
 * convolutions on and off in turn, in one process (off = the original wasm kernels, as on main): CPU time (all
 * threads) and wall per image, medians, the largest logit difference, and tensors leaked.
 *
 *   pnpm --filter @crp/bench exec tsx src/winograd-vgg16.ts [--threads 2] [--batch 16] [--runs 5]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { installWasmWinograd, selectBackend, uninstallWasmWinograd } from '@crp/backend';
import { vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import { median } from './measure.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    batch: { type: 'string', default: '16' },
    runs: { type: 'string', default: '5' },
  },
});
await selectBackend({ prefer: ['wasm'], threads: Number(values.threads) });
const batch = Number(values.batch);
const model = vgg('vgg16', { seed: 1 });
const x = tf.randomUniform([batch, 224, 224, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
const modes = ['direct', 'winograd'] as const;
const set = (mode: (typeof modes)[number]) => {
  if (mode === 'winograd') installWasmWinograd();
  else uninstallWasmWinograd();
};
const logits = modes.map((mode) => {
  set(mode);
  return model.predict(x) as tf.Tensor; // also the warm-up (weights transformed once)
});
const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(logits[0]!, logits[1]!))).dataSync()[0]!);
const scale = tf.tidy(() => tf.max(tf.abs(logits[0]!)).dataSync()[0]!);
tf.dispose(logits);
const before = tf.memory().numTensors;
const cpu = modes.map(() => [] as number[]);
const wall = modes.map(() => [] as number[]);
const load0 = loadavg()[0]!.toFixed(1);
for (let r = 0; r < Number(values.runs); r++)
  modes.forEach((mode, i) => {
    set(mode);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const y = model.predict(x) as tf.Tensor;
    y.dataSync();
    wall[i]!.push((performance.now() - t0) / batch);
    const c = process.cpuUsage(c0);
    cpu[i]!.push((c.user + c.system) / 1000 / batch);
    y.dispose();
  });
console.log(
  JSON.stringify({
    threads: Number(values.threads),
    batch,
    load: `${load0} -> ${loadavg()[0]!.toFixed(1)}`,
    perImageMs: Object.fromEntries(
      modes.map((m, i) => [
        m,
        { cpu: median(cpu[i]!), wall: median(wall[i]!), cpus: cpu[i]!.map(Math.round) },
      ]),
    ),
    cpuRatio: median(cpu[0]!) / median(cpu[1]!),
    maxLogitDiff: diff,
    maxLogit: scale,
    leaked: tf.memory().numTensors - before,
  }),
);
