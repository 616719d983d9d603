/**
 * MPRT's cost on the small VGG, as the `evaluation` suite calls it: wall and CPU time per run (all threads), and
 * with `--kernels` a tally of the wasm kernels (calls, CPU) over the timed runs.
 *
 *   pnpm --filter @crp/bench exec tsx src/mprt-profile.ts [--threads 2] [--runs 7] [--kernels] [--cpu-prof FILE]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { selectBackend } from '@crp/backend';
import { lrpExplainer, mprt } from '@crp/evaluation';
import { smallVgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import { kernelTotals, printKernelTable, tallyWasmKernels } from './kernel-tally.js';
import { median, startCpuProfile } from './measure.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '7' },
    kernels: { type: 'boolean', default: false },
    order: { type: 'string', default: 'top_down' },
    shapes: { type: 'boolean', default: false },
    // a V8 CPU profile of the timed runs only (not the start-up or the warm-up), read by src/cpuprofile-table.ts
    'cpu-prof': { type: 'string' },
    'cpu-prof-interval': { type: 'string', default: '100' },
  },
});
await selectBackend({ prefer: ['wasm'], threads: Number(values.threads) });
const shapeLabel = (name: string, args: Parameters<tf.KernelFunc>[0]) =>
  `${name} ${Object.values(args.inputs)
    // FusedConv2D's absent inputs (no prelu weights) are undefined
    .filter((t) => t !== undefined && t !== null)
    .map((t) => (t as tf.TensorInfo).shape.join('x'))
    .join(' ')}`;
const tallies = values.kernels ? tallyWasmKernels(values.shapes ? shapeLabel : undefined) : undefined;
const model = smallVgg({ seed: 2 });
const x = tf.randomUniform([1, 64, 64, 3], 0, 1, 'float32', 11) as tf.Tensor4D;
const explainer = lrpExplainer('epsilon_plus_flat');
const layerOrder = values.order as 'top_down' | 'bottom_up' | 'independent';
const once = async () => {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await mprt({ model, x, labels: [3] }, explainer, { layerOrder });
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000, r };
};
const warm = await once();
tallies?.clear();
const before = tf.memory().numTensors;
const walls: number[] = [];
const cpus: number[] = [];
const stopProfile = await startCpuProfile(values['cpu-prof'], Number(values['cpu-prof-interval']));
for (let i = 0; i < Number(values.runs); i++) {
  const { wall, cpu } = await once();
  walls.push(wall);
  cpus.push(cpu);
}
await stopProfile();
const load = loadavg()[0]!.toFixed(1);
console.log(
  JSON.stringify({
    threads: Number(values.threads),
    order: layerOrder,
    wallMs: median(walls),
    cpuMs: median(cpus),
    walls: walls.map(Math.round),
    cpus: cpus.map(Math.round),
    load,
    leaked: tf.memory().numTensors - before,
    layers: warm.r.layers,
  }),
);
if (tallies !== undefined) {
  const runs = Number(values.runs);
  const calls = [...tallies.values()].reduce((sum, t) => sum + t.calls, 0) / runs;
  console.log(
    `kernels: ${(kernelTotals(tallies).cpu / runs).toFixed(1)} ms CPU, ${calls.toFixed(0)} calls per run`,
  );
  printKernelTable(tallies, { runs, top: values.shapes ? 60 : 25, nameWidth: values.shapes ? 60 : 28 });
}
