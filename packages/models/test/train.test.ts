import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrpError } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import { fileCheckpoints, mnist } from '../src/node.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Dataset,
  disposeDataset,
  Lamb,
  registerTrainingKernels,
  type TrainProgress,
  train,
  vggFromBlocks,
} from '../src/index.js';

let root: string;
let small: { train: Dataset; validation: Dataset | undefined };

beforeAll(async () => {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  root = await mkdtemp(join(tmpdir(), 'crp-models-train-'));
  small = mnist({ train: 192, validation: 64, seed: 5 });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  disposeDataset(small.train);
  disposeDataset(small.validation);
});

/** conv 8 - pool - conv 16 - pool - dense 10 on 28x28x1 (about 3k parameters). */
const convNet = (seed: number) =>
  vggFromBlocks([[8], [16]], { inputShape: [28, 28, 1], classes: 10, hidden: [], dropout: 0, seed });

async function weightsOf(model: ReturnType<typeof convNet>): Promise<number[]> {
  const out: number[] = [];
  for (const w of model.getWeights()) out.push(...(await w.data()));
  return out;
}

describe('train', () => {
  it('reaches > 85% validation accuracy on 1000 real MNIST digits with LAMB, with progress and a confusion matrix', async () => {
    const { train: data, validation } = mnist({ train: 1000, validation: 200, seed: 1 });
    const model = convNet(1);
    const events: TrainProgress[] = [];
    const started = Date.now();
    const result = await train(model, data, {
      epochs: 5,
      batchSize: 32,
      optimizer: new Lamb({ learningRate: 0.01 }),
      validation: validation!,
      seed: 1,
      onProgress: (p) => events.push(p),
    });
    const seconds = (Date.now() - started) / 1000;
    const accuracy = result.validation!.accuracy;
    console.log(
      `mnist 1000/200, 5 epochs on ${tf.getBackend()}: ${seconds.toFixed(1)} s, validation accuracy ${accuracy}`,
      result.history.map((h) => `${h.loss.toFixed(3)}/${h.valAccuracy!.toFixed(3)}`).join(' '),
    );
    expect(accuracy).toBeGreaterThan(0.85);
    expect(result.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4, 5]);
    expect(result.history[4]!.loss).toBeLessThan(result.history[0]!.loss);
    // progress: 32 batches per epoch, then the epoch
    expect(events.filter((e) => e.phase === 'batch').length).toBe(5 * 32);
    const epochEvents = events.filter((e) => e.phase === 'epoch');
    expect(epochEvents.map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5]);
    expect(epochEvents[4]!.valAccuracy).toBe(result.history[4]!.valAccuracy);
    expect(epochEvents[4]!.etaMs).toBe(0);
    expect(events[10]!.etaMs).toBeGreaterThan(0);
    // the shared Progress fields count the training steps of this call
    expect(events.filter((e) => e.phase === 'batch').map((e) => e.done)).toEqual(
      Array.from({ length: 5 * 32 }, (_, i) => i + 1),
    );
    expect(events.every((e) => e.total === 5 * 32 && e.unit === 'batches')).toBe(true);
    const matrix = result.validation!.confusionMatrix;
    expect(matrix.length).toBe(10);
    expect(matrix.flat().reduce((a, b) => a + b, 0)).toBe(200);
    expect(matrix.reduce((s, row, i) => s + row[i]!, 0) / 200).toBe(accuracy);
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    model.dispose();
    disposeDataset(data);
    disposeDataset(validation);
  });

  it('is deterministic for a seed and leaks no tensors', async () => {
    const before = tf.memory().numTensors;
    const runs: { losses: number[]; weights: number[] }[] = [];
    for (const seed of [7, 7, 8]) {
      const model = convNet(3);
      const r = await train(model, small.train, { epochs: 1, batchSize: 64, seed });
      runs.push({ losses: r.history.map((h) => h.loss), weights: await weightsOf(model) });
      model.dispose();
    }
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]!.weights).not.toEqual(runs[0]!.weights);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('writes checkpoints atomically and resumes from the latest exactly as an uninterrupted run', async () => {
    const options = (dir?: string) => ({
      batchSize: 64,
      seed: 2,
      validation: small.validation!,
      optimizer: new Lamb({ learningRate: 0.01, weightDecay: 0.01 }),
      ...(dir === undefined ? {} : { checkpoints: fileCheckpoints(dir) }),
    });
    const straight = convNet(4);
    const full = await train(straight, small.train, { ...options(), epochs: 3 });

    const dir = join(root, 'ckpt');
    const first = convNet(4);
    const part = await train(first, small.train, { ...options(dir), epochs: 2 });
    expect(part.checkpoint).toBe(join(dir, 'epoch-0002'));
    first.dispose();
    // a fresh process would rebuild the model (other initial weights do not matter: they are replaced)
    const second = convNet(99);
    const epochs: number[] = [];
    const rest = await train(second, small.train, {
      ...options(dir),
      epochs: 3,
      onProgress: (p) => epochs.push(p.epoch),
    });
    expect(rest.resumedFrom).toBe(2);
    expect([...new Set(epochs)]).toEqual([3]);
    expect(rest.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(rest.history.map((h) => h.loss)).toEqual(full.history.map((h) => h.loss));
    expect(await weightsOf(second)).toEqual(await weightsOf(straight));
    expect((await readdir(dir)).sort()).toEqual(['epoch-0002', 'epoch-0003']);
    expect((await readdir(join(dir, 'epoch-0003'))).sort()).toEqual(['model', 'optimizer.bin', 'state.json']);
    // nothing left to do: the latest checkpoint already has 3 epochs
    const again = await train(second, small.train, { ...options(dir), epochs: 3 });
    expect(again.history.length).toBe(3);
    straight.dispose();
    second.dispose();
  });

  it('stops early and restores the best weights', async () => {
    const model = convNet(5);
    const result = await train(model, small.train, {
      epochs: 6,
      batchSize: 64,
      validation: small.validation!,
      optimizer: new Lamb({ learningRate: 0.01 }),
      // an improvement of more than 10 in loss never happens after the first epoch
      earlyStopping: { patience: 2, minDelta: 10 },
    });
    expect(result.stoppedEarly).toBe(true);
    expect(result.history.length).toBe(3);
    expect(result.bestEpoch).toBe(1);
    expect(result.validation!.loss).toBeCloseTo(result.history[0]!.valLoss!, 5);
    model.dispose();
  });

  it('updates batch-norm statistics and trains through dropout', async () => {
    const model = vggFromBlocks([[4], [8]], {
      inputShape: [28, 28, 1],
      classes: 10,
      hidden: [16],
      dropout: 0.25,
      batchNorm: true,
      seed: 8,
    });
    const movingMean = async () => Array.from(await model.getLayer('block1_bn1').getWeights()[2]!.data());
    const before = await movingMean();
    const result = await train(model, small.train, {
      epochs: 2,
      batchSize: 64,
      optimizer: new Lamb({ learningRate: 0.01 }),
    });
    expect(await movingMean()).not.toEqual(before);
    expect(result.history[1]!.loss).toBeLessThan(result.history[0]!.loss);
    model.dispose();
  });

  it('says what does not fit', async () => {
    const model = convNet(6);
    const wrong = vggFromBlocks([[4]], { inputShape: [28, 28, 1], classes: 3, hidden: [], dropout: 0 });
    await expect(train(wrong, small.train)).rejects.toThrow(/has 10 classes but the model gives 3 outputs/);
    const big = mnist({ train: 10, validation: 0, inputSize: [32, 32] });
    const err = await train(model, big.train).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CrpError);
    expect((err as CrpError).code).toBe('invalid-shape');
    expect((err as Error).message).toMatch(/shape \[10, 32, 32, 1\] but the model takes \[N, 28, 28, 1\]/);
    await expect(
      train(model, small.train, { earlyStopping: { patience: 1, monitor: 'val_accuracy' } }),
    ).rejects.toThrow(/monitors 'val_accuracy' but no validation set/);
    await expect(train(model, small.train, { epochs: 0 })).rejects.toThrow(
      /epochs must be a whole number >= 1/,
    );
    disposeDataset(big.train);
    model.dispose();
    wrong.dispose();
  });
});

describe('registerTrainingKernels', () => {
  it("gives wasm a Conv2DBackpropFilter that matches the cpu backend's", async () => {
    registerTrainingKernels();
    const cases = [
      { x: [2, 9, 9, 3], f: [3, 3, 3, 4], strides: 1, pad: 'same' },
      { x: [1, 10, 8, 2], f: [5, 5, 2, 3], strides: 2, pad: 'valid' },
      { x: [2, 7, 7, 4], f: [1, 1, 4, 2], strides: 2, pad: 'same' },
    ] as const;
    for (const c of cases) {
      const x = tf.randomNormal([...c.x], 0, 1, 'float32', 1) as tf.Tensor4D;
      const f = tf.randomNormal([...c.f], 0, 1, 'float32', 2) as tf.Tensor4D;
      const gradient = () =>
        tf.grad((w: tf.Tensor) => tf.sum(tf.square(tf.conv2d(x, w as tf.Tensor4D, c.strides, c.pad))))(f);
      await tf.setBackend('cpu');
      const expected = await gradient().data();
      await tf.setBackend('wasm');
      const actual = await gradient().data();
      for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i]!, 3);
      tf.dispose([x, f]);
    }
  });
});
