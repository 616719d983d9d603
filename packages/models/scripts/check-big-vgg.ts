/**
 * One-off check on a full-size model (not a CI test: the model is 515 MB). Imports the torchvision vgg11_bn
 * (2 classes) written by `fixtures-src/make-torch-pth.py --big DIR`, times the import (wasm backend), reports the
 * peak RSS, and compares the logits of the 128x128 test image with PyTorch's.
 *
 *   /usr/bin/python3 fixtures-src/make-torch-pth.py --big /tmp/bigvgg
 *   npx tsx scripts/check-big-vgg.ts /tmp/bigvgg [runs]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { readTorchVgg } from '../src/node.js';

const dir = process.argv[2] ?? '/tmp/bigvgg';
const runs = Number(process.argv[3] ?? 3);
await tf.setBackend('wasm');
const reference = JSON.parse(readFileSync(join(dir, 'vgg11_bn-2.json'), 'utf8')) as {
  logits: number[];
  size: number;
};

const times: number[] = [];
let model: Awaited<ReturnType<typeof readTorchVgg>> | undefined;
for (let r = 0; r < runs; r++) {
  model?.dispose();
  const start = performance.now();
  const cpu = process.cpuUsage();
  model = await readTorchVgg(join(dir, 'vgg11_bn-2.pth'), { inputSize: reference.size });
  times.push(performance.now() - start);
  const used = process.cpuUsage(cpu);
  // CPU time too: on a machine shared with other work the wall time says more about the neighbours
  console.log(
    `import ${r + 1}: ${(times.at(-1)! / 1000).toFixed(2)} s wall, ${((used.user + used.system) / 1e6).toFixed(2)} s CPU, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
  );
}
const sorted = [...times].sort((a, b) => a - b);
console.log(
  `median import time: ${(sorted[Math.floor(sorted.length / 2)]! / 1000).toFixed(2)} s over ${runs} runs`,
);
console.log(`parameters: ${model!.countParams()}, layers: ${model!.layers.map((l) => l.name).join(' ')}`);

// the 128-pixel image of the fixture script: NHWC values 2u - 1, u = mulberry32(1000 + size)
const size = reference.size;
const rng = mulberry32(1000 + size);
const pixels = Float32Array.from({ length: size * size * 3 }, () => 2 * rng() - 1);
const x = tf.tensor4d(pixels, [1, size, size, 3]);
const y = model!.predict(x) as tf.Tensor;
const logits = Array.from(await y.data());
const scale = Math.max(...reference.logits.map(Math.abs));
const diff = Math.max(...logits.map((v, i) => Math.abs(v - reference.logits[i]!)));
console.log(`logits ${logits.join(', ')} vs torch ${reference.logits.join(', ')}`);
console.log(
  `max |difference| ${diff.toExponential(2)} = ${(diff / scale).toExponential(2)} of max |logit| (bound 1e-4): ${diff / scale <= 1e-4 ? 'OK' : 'FAIL'}`,
);
console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
tf.dispose([x, y]);
model!.dispose();
