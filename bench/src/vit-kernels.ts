/**
 * Which TF.js wasm kernels a vit_b_16 AttnLRP heatmap and an 8-condition CRP run spend their time in, wall and
 * CPU (all threads) per kernel: a kernel whose CPU time is about its wall time ran on one thread, one near
 * twice it used both (on a free machine). Manual (the figures of bench/README.md's `vit` section):
 *
 *   pnpm --filter @crp/bench exec tsx src/vit-kernels.ts [--threads N] [--layers L] [--top K]
 *
 * Every kernel registered for wasm is wrapped (kernels that a kernel calls directly count in the caller); the
 * time outside kernels (JavaScript: graph walk, head blocks of `ops/head-matmul.ts`) is the rest.
 */
import { parseArgs } from 'node:util';
import { selectBackend } from '@crp/backend';
import { CondAttribution, type Condition, disposeCondResult } from '@crp/core';
import { torchVitFromStateDict, type VitConfig } from '@crp/models';
import { vitFormulaImage, vitFormulaStateDict } from '@crp/testing/vit-formula';
import * as tf from '@tensorflow/tfjs-core';
import { kernelTotals, printKernelTable, tallyWasmKernels } from './kernel-tally.js';
import { vitB16Config } from './torch-fixtures.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: 'auto' },
    layers: { type: 'string', default: '12' },
    top: { type: 'string', default: '14' },
  },
});
const choice = await selectBackend({
  prefer: ['wasm'],
  threads: values.threads === 'auto' ? 'auto' : Number(values.threads),
});

const tallies = tallyWasmKernels();

const config: VitConfig = vitB16Config({ numLayers: Number(values.layers) });
const model = torchVitFromStateDict(vitFormulaStateDict(config), { numHeads: config.numHeads });
const image = vitFormulaImage(config);
const crp = new CondAttribution(model, { composite: 'attn_lrp', canonizers: [] });
const last = `encoder.layers.encoder_layer_${config.numLayers - 1}.mlp.1`;

function profile(name: string, fn: () => void): void {
  tallies.clear();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1000;
  const inKernels = kernelTotals(tallies);
  console.log(
    `\n${name}: ${wall.toFixed(0)} ms wall, ${cpu.toFixed(0)} ms CPU (CPU/wall ${(cpu / wall).toFixed(2)}); outside kernels ${(wall - inKernels.wall).toFixed(0)} ms wall, ${(cpu - inKernels.cpu).toFixed(0)} ms CPU`,
  );
  printKernelTable(tallies, {
    sortBy: 'wall',
    top: Number(values.top),
    shareOf: wall,
    shareLabel: 'share of wall',
  });
}

const heatmap = () => {
  const r = crp.run(image, [{ y: [0] }]);
  r.heatmap!.dataSync();
  disposeCondResult(r);
};
const conditions: Condition[] = Array.from({ length: 8 }, (_, k) => ({ y: [0], [last]: [k * 7] }));
const crp8 = () => {
  const r = crp.run(image, conditions);
  r.heatmap!.dataSync();
  disposeCondResult(r);
};
console.log(`backend ${tf.getBackend()} x${choice.threads}, vit_b_16 with ${config.numLayers} blocks`);
heatmap(); // untimed: the attributor's one-time derivations
profile('AttnLRP heatmap (CRP run, y only)', heatmap);
profile('CRP, 8 conditions on the last block', crp8);
crp.dispose();
image.dispose();
model.dispose();
