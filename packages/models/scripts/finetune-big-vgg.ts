/**
 * One-off measurement on a full-size model (not a CI test: the model is 515 MB and a run takes minutes). Fine-tunes
 * the torchvision vgg11_bn (2 classes, 129M parameters) written by `fixtures-src/make-torch-pth.py --big DIR` with
 * LAMB on the wasm backend (2 threads), with a validation split and the best epoch kept, on synthetic but learnable
 * 128x128 patches, and reports the memory plan, the time per epoch (and per 100 images), the peak RSS and the wasm
 * heap's high-water mark.
 *
 *   /usr/bin/python3 fixtures-src/make-torch-pth.py --big /tmp/bigvgg
 *   npx tsx scripts/finetune-big-vgg.ts /tmp/bigvgg [--epochs 2] [--samples 80] [--train-layers all|classifier]
 *                                                   [--batch-size N] [--lr 0.001] [--threads 2]
 *
 * The patches: a noise texture (values in [-1, 1], as after normalisation); class 1 has a dark disc of radius 10
 * to 18 pixels near the centre (a "mitotic figure"), class 0 has none. Seeded: every run sees the same images.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { selectBackend } from '@crp/backend';
import { mulberry32 } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import {
  type Dataset,
  disposeDataset,
  evaluate,
  formatBytes,
  gatherDataset,
  Lamb,
  planTrainingMemory,
  type TrainProgress,
  train,
} from '../src/index.js';
import { readTorchVgg } from '../src/node.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    epochs: { type: 'string', default: '2' },
    samples: { type: 'string', default: '80' },
    'train-layers': { type: 'string', default: 'all' },
    'batch-size': { type: 'string' },
    threads: { type: 'string', default: '2' },
    lr: { type: 'string', default: '0.001' },
  },
});
const dir = positionals[0] ?? '/tmp/bigvgg';
const epochs = Number(values.epochs);
const samples = Number(values.samples);
const trainLayers = values['train-layers'] === 'all' ? 'all' : values['train-layers']!.split(',');
const SIZE = 128;

/** The synthetic patches (see the header). */
function patches(n: number, seed: number): Dataset {
  const rng = mulberry32(seed);
  const pixels = new Float32Array(n * SIZE * SIZE * 3);
  const labels: number[] = [];
  for (let k = 0; k < n; k++) {
    const label = k % 2;
    labels.push(label);
    const cx = SIZE / 2 + (rng() - 0.5) * 24;
    const cy = SIZE / 2 + (rng() - 0.5) * 24;
    const r = 10 + rng() * 8;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const inside = label === 1 && (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
        for (let c = 0; c < 3; c++) {
          const noise = 2 * rng() - 1;
          pixels[((k * SIZE + y) * SIZE + x) * 3 + c] = inside ? -0.8 + 0.2 * noise : 0.6 * noise;
        }
      }
    }
  }
  return { images: tf.tensor4d(pixels, [n, SIZE, SIZE, 3]), labels, classes: ['non-mitosis', 'mitosis'] };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const backend = await selectBackend({ prefer: ['wasm'], threads: Number(values.threads) });
console.log(`backend ${backend.backend}, ${backend.threads} threads ${backend.notes.join('; ')}`);
let started = performance.now();
const model = await readTorchVgg(join(dir, 'vgg11_bn-2.pth'), { inputSize: SIZE });
console.log(`model loaded in ${seconds(performance.now() - started)}: ${model.countParams()} parameters`);
const data = patches(samples, 11);

const plan = planTrainingMemory(model, { trainLayers });
const optimizer = new Lamb({ learningRate: Number(values.lr), moments: plan.moments });
console.log(
  `plan: batch size ${plan.batchSize} (${plan.limitedBy}), moments in ${plan.moments}, expected peak ${formatBytes(plan.peakBytes)} of ${formatBytes(plan.budgetBytes ?? 0)} planned (limit ${formatBytes(plan.limitBytes ?? 0)})`,
);
console.log(
  `  weights ${formatBytes(plan.bytes.weights)}, packed ${formatBytes(plan.bytes.packedWeights)}, gradients ${formatBytes(plan.bytes.gradients)}, optimizer ${formatBytes(plan.bytes.optimizerState + plan.bytes.optimizerWorkspace)}, other ${formatBytes(plan.bytes.other)}, fragmentation ${formatBytes(plan.bytes.fragmentation)}, activations ${formatBytes(plan.bytes.activationsPerImage)}/image; trained ${plan.parameters.trained} of ${plan.parameters.total} parameters, ${plan.selection.frozenPrefix} layers frozen before the first trained one`,
);

// the heap's high-water mark and the tensors' peak, sampled after every batch
const heapOf = () =>
  (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
let tensorPeak = 0;
let lastEpoch = 0;
let epochStart = performance.now();
const epochTimes: number[] = [];
started = performance.now();
let firstEvent: number | undefined;
const result = await train(model, data, {
  epochs,
  validationSplit: 0.2,
  seed: 1,
  trainLayers,
  optimizer,
  ...(values['batch-size'] === undefined ? {} : { batchSize: Number(values['batch-size']) }),
  onProgress: (p: TrainProgress) => {
    tensorPeak = Math.max(tensorPeak, tf.memory().numBytes);
    firstEvent ??= performance.now() - started;
    if (p.phase === 'epoch') {
      epochTimes.push(performance.now() - epochStart);
      epochStart = performance.now();
      console.log(
        `epoch ${p.epoch}/${p.epochs}: loss ${p.loss.toFixed(4)}, accuracy ${p.accuracy.toFixed(3)}, val loss ${p.valLoss?.toFixed(4)}, val accuracy ${p.valAccuracy?.toFixed(3)}; ${seconds(epochTimes.at(-1)!)}; heap ${mib(heapOf())}`,
      );
      lastEpoch = p.epoch;
    } else {
      console.log(
        `  batch ${p.batch}/${p.batches} of epoch ${p.epoch}: ${p.done}/${p.total}, elapsed ${seconds(p.elapsedMs)}, eta ${seconds(p.etaMs)}, loss ${p.loss.toFixed(4)}, heap ${mib(heapOf())}`,
      );
    }
  },
});
const total = performance.now() - started;
const nTrain = samples - (result.validationIndices?.length ?? 0);
console.log(
  `trained ${lastEpoch} epochs in ${seconds(total)} (first progress after ${seconds(firstEvent ?? 0)}); batch size ${result.batchSize}; best epoch ${result.bestEpoch}`,
);
console.log(
  `per epoch: ${epochTimes.map(seconds).join(', ')} for ${nTrain} training + ${result.validationIndices?.length ?? 0} validation images; ${epochTimes.map((t) => seconds((t / samples) * 100)).join(', ')} per 100 images`,
);
console.log(
  `final validation: accuracy ${result.validation?.accuracy}, confusion ${JSON.stringify(result.validation?.confusionMatrix)}`,
);
console.log(
  `memory: wasm heap high-water ${mib(result.heapBytes ?? heapOf())} (planned peak ${mib(plan.peakBytes)}), tensors at batch ends up to ${mib(tensorPeak)}, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
);
// the training images again, at inference (batch norm's moving statistics, no dropout): a randomly initialised
// model's moving statistics lag behind its batch statistics for many steps, which the validation accuracy shows
const seen = data.labels.map((_, i) => i).filter((i) => !(result.validationIndices ?? []).includes(i));
const trainSet = gatherDataset(data, seen);
started = performance.now();
const atInference = await evaluate(model, trainSet, { batchSize: result.batchSize });
console.log(
  `training images at inference: accuracy ${atInference.accuracy.toFixed(3)}, loss ${atInference.loss.toFixed(4)} (${seconds(performance.now() - started)})`,
);
disposeDataset(trainSet);
disposeDataset(data);
optimizer.dispose();
model.dispose();
