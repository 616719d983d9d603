/**
 * RegionPerturbation (20 patches of 16x16) and Selectivity (196 patches) on VGG16 at 224, as the `evaluation`
 * suite calls them, on the incremental forward: CPU and wall time per run (all threads), the AUCs (to check that
 * a change keeps them to the last bit), and with `--kernels` a tally of the wasm kernels by input shapes.
 *
 *   pnpm --filter @crp/bench exec tsx src/regpert-profile.ts [--metric region|selectivity] [--threads 2]
 *     [--runs 3] [--kernels] [--cpu-prof FILE]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { selectBackend } from '@crp/backend';
import { regionPerturbation, selectivity } from '@crp/evaluation';
import { vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import { kernelTotals, printKernelTable, tallyWasmKernels } from './kernel-tally.js';
import { median, startCpuProfile } from './measure.js';

const { values } = parseArgs({
  options: {
    metric: { type: 'string', default: 'region' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    kernels: { type: 'boolean', default: false },
    // a V8 CPU profile of the timed runs only, read by src/cpuprofile-table.ts
    'cpu-prof': { type: 'string' },
  },
});
await selectBackend({ prefer: ['wasm'], threads: Number(values.threads) });
const shapeLabel = (name: string, args: Parameters<tf.KernelFunc>[0]) =>
  `${name} ${Object.values(args.inputs)
    .filter((t) => t !== undefined)
    .map((t) => (t as tf.TensorInfo).shape.join('x'))
    .join(' ')}`;
const tallies = values.kernels ? tallyWasmKernels(shapeLabel) : undefined;
const model = vgg('vgg16', { seed: 1 });
const x = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
const explanation = tf.randomUniform([1, 224, 224], -1, 1, 'float32', 8);
const input = { model, x, labels: [0], explanation };
const metric = async () =>
  values.metric === 'region'
    ? regionPerturbation(input, { patchSize: 16, regionsEvaluation: 20 }, { batchSize: 16 })
    : selectivity(input, { patchSize: 16 }, { batchSize: 16 });
const once = async () => {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await metric();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000, r };
};
// warm-up as the suite's: kernels compiled, weights uploaded, and the incremental head's batched matMul packed
// (XNNPACK packs a weight matrix once per op; model.predict's passes use another)
await selectivity(input, { patchSize: 112 }, { incremental: true });
tallies?.clear();
const before = tf.memory().numTensors;
const walls: number[] = [];
const cpus: number[] = [];
let scores: number[] = [];
const stopProfile = await startCpuProfile(values['cpu-prof']);
for (let i = 0; i < Number(values.runs); i++) {
  const { wall, cpu, r } = await once();
  walls.push(wall);
  cpus.push(cpu);
  scores = r.scores;
}
await stopProfile();
console.log(
  JSON.stringify({
    metric: values.metric,
    threads: Number(values.threads),
    wallMs: median(walls),
    cpuMs: median(cpus),
    walls: walls.map(Math.round),
    cpus: cpus.map(Math.round),
    load: loadavg()[0]!.toFixed(1),
    leaked: tf.memory().numTensors - before,
    scores,
  }),
);
if (tallies !== undefined) {
  const runs = Number(values.runs);
  const calls = [...tallies.values()].reduce((sum, t) => sum + t.calls, 0) / runs;
  console.log(
    `kernels: ${(kernelTotals(tallies).cpu / runs).toFixed(1)} ms CPU, ${calls.toFixed(0)} calls per run`,
  );
  printKernelTable(tallies, { runs, top: 70, nameWidth: 60 });
  const byKernel = new Map<string, { calls: number; wall: number; cpu: number }>();
  for (const [k, t] of tallies) {
    const name = k.split(' ')[0]!;
    const s = byKernel.get(name) ?? { calls: 0, wall: 0, cpu: 0 };
    s.calls += t.calls;
    s.wall += t.wall;
    s.cpu += t.cpu;
    byKernel.set(name, s);
  }
  printKernelTable(byKernel, { runs, nameWidth: 20 });
}
