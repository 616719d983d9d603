import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Dataset, Lamb, train, vggFromBlocks } from '@crp/models';
import { fileSystem } from '@crp/models/node';
import * as tfl from '@tensorflow/tfjs-layers';

/** The classifier of the study: a small VGG for 28x28 digits (conv 16-M-32-M-64-M, Dense 576->64->10). */
export const MODEL_CONFIG = {
  blocks: [[16], [32], [64]],
  inputShape: [28, 28, 1] as [number, number, number],
  classes: 10,
  hidden: [64],
  dropout: 0.25,
  seed: 7,
  epochs: 4,
  batchSize: 64,
  learningRate: 0.01,
};

/**
 * Trains the study's model (seeded) or loads it from the cache: the cache key is a hash of the configuration
 * and of the training data, so a changed setup trains again.
 */
/** The cache key of the trained model: a hash of the configuration and of the training data. */
export function modelKey(data: { train: Dataset }): string {
  return createHash('sha256')
    .update(JSON.stringify(MODEL_CONFIG))
    .update(new Uint8Array(data.train.images.dataSync().buffer))
    .digest('hex')
    .slice(0, 16);
}

export async function trainedModel(
  data: { train: Dataset; validation: Dataset },
  cacheDir: string,
  log: (s: string) => void,
): Promise<{ model: tfl.LayersModel; cached: boolean; seconds: number }> {
  const key = modelKey(data);
  const dir = join(cacheDir, `model-${key}`);
  if (existsSync(join(dir, 'model.json'))) {
    return { model: await tfl.loadLayersModel(fileSystem(dir)), cached: true, seconds: 0 };
  }
  const c = MODEL_CONFIG;
  const model = vggFromBlocks(
    c.blocks,
    { inputShape: c.inputShape, classes: c.classes, hidden: c.hidden, dropout: c.dropout, seed: c.seed },
    'digits_vgg',
  );
  const started = performance.now();
  await train(model, data.train, {
    epochs: c.epochs,
    batchSize: c.batchSize,
    optimizer: new Lamb({ learningRate: c.learningRate }),
    validation: data.validation,
    seed: c.seed,
    onProgress: (p) => {
      if (p.phase === 'epoch')
        log(
          `  epoch ${p.epoch}/${p.epochs}: loss ${p.loss.toFixed(3)}, validation accuracy ${p.valAccuracy?.toFixed(3)}`,
        );
    },
  });
  await model.save(fileSystem(dir));
  return { model, cached: false, seconds: (performance.now() - started) / 1000 };
}
