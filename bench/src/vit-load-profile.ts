// Loading a vit_b_16 .pth (346 MB, the bench's seeded formula weights under torchvision's keys): `--write` writes
// the file first; then loadModel (parse, CRC check, split of in_proj_weight, building the layers) is timed, wall
// and CPU (process.cpuUsage, all threads: the figure to compare under load). Profile with
// `node --import tsx --cpu-prof src/vit-load-profile.ts FILE` (wall-clock samples: inflated on a loaded machine).
import { writeFile } from 'node:fs/promises';
import { encodeTorchStateDict, type TorchTensor } from '@crp/models';
import { loadModel } from '@crp/models/node';
import { vitFormulaStateDict } from '@crp/testing/vit-formula';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';

const path = process.argv[2] ?? '/tmp/vit_b_16.pth';
const config = {
  imageSize: 224,
  patchSize: 16,
  hiddenDim: 768,
  numHeads: 12,
  mlpDim: 3072,
  numLayers: 12,
  numClasses: 1000,
};
if (process.argv.includes('--write')) {
  const sd = vitFormulaStateDict(config);
  const map = new Map<string, TorchTensor>();
  for (const n of sd.names) map.set(n, { shape: [...sd.entry(n).shape], data: sd.float32(n) });
  await writeFile(path, encodeTorchStateDict(map));
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
