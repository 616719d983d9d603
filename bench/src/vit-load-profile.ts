// Loading a vit_b_16 .pth (346 MB, the bench's seeded formula weights under torchvision's keys): `--write` writes
// the file first; then loadModel (parse, CRC check, split of in_proj_weight, building the layers) is timed, wall
// and CPU (process.cpuUsage, all threads: the figure to compare under load). Profile with
// `node --import tsx --cpu-prof src/vit-load-profile.ts FILE` (wall-clock samples: inflated on a loaded machine).
import { loadModel } from '@crp/models/node';
import { vitFormulaStateDict } from '@crp/testing/vit-formula';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { vitB16Config, writePth } from './torch-fixtures.js';

const path = process.argv[2] ?? '/tmp/vit_b_16.pth';
const config = vitB16Config();
if (process.argv.includes('--write')) {
  await writePth(path, vitFormulaStateDict(config));
  console.log(`wrote ${path}`);
}
await tf.setBackend('cpu');
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const model = await loadModel(path);
const cpu = process.cpuUsage(cpu0);
console.log(
  `loadModel: ${((performance.now() - t0) / 1000).toFixed(2)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s CPU, ${model.countParams()} parameters`,
);
model.dispose();
