import { CrpError, mulberry32 } from '@crp/common';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Dataset,
  disposeDataset,
  Lamb,
  memoryCheckpoints,
  planTrainingMemory,
  registerTrainingKernels,
  type TrainProgress,
  train,
  vggFromBlocks,
} from '../src/index.js';

/**
 * 48 images 8x8x1 in 2 classes: class 1 is brighter in the upper half, class 0 in the lower half (noise on top).
 * Learnable by a small conv net in a few epochs.
 */
function halves(n: number, seed: number): Dataset {
  const rng = mulberry32(seed);
  const pixels = new Float32Array(n * 64);
  const labels: number[] = [];
  for (let k = 0; k < n; k++) {
    const label = k % 2;
    labels.push(label);
    for (let i = 0; i < 64; i++) {
      const upper = i < 32;
      pixels[k * 64 + i] = (upper === (label === 1) ? 0.8 : -0.8) + (rng() - 0.5);
    }
  }
  return { images: tf.tensor4d(pixels, [n, 8, 8, 1]), labels, classes: ['lower', 'upper'] };
}

/** The same images with the other label: the better a model learns `halves`, the worse it does here. */
const inverted = (data: Dataset): Dataset => ({
  images: data.images.clone(),
  labels: data.labels.map((y) => 1 - y),
  classes: data.classes!,
});

const net = (seed: number, extra: { batchNorm?: boolean; hidden?: number[]; dropout?: number } = {}) =>
  vggFromBlocks([[4], [8]], { inputShape: [8, 8, 1], classes: 2, hidden: [], dropout: 0, seed, ...extra });

async function weightsOf(model: tfl.LayersModel, names?: string[]): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const layer of model.layers) {
    if (names !== undefined && !names.includes(layer.name)) continue;
    for (const w of layer.weights) out[w.originalName] = Array.from(await w.read().data());
  }
  return out;
}

let data: Dataset;
let flipped: Dataset;

beforeAll(async () => {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  registerTrainingKernels();
  data = halves(48, 3);
  flipped = inverted(data);
});
afterAll(() => {
  disposeDataset(data);
  disposeDataset(flipped);
});

describe('train keeps the best epoch', () => {
  it('ends with the weights of the best validation epoch, exactly those of a run stopped there', async () => {
    const options = { batchSize: 16, seed: 4, optimizer: new Lamb({ learningRate: 0.02 }) };
    const model = net(1);
    const result = await train(model, data, { ...options, epochs: 4, validation: flipped });
    const history = result.history;
    // the rule: highest validation accuracy, ties to the lower validation loss (first of equals)
    const expected = history.reduce((best, h) =>
      h.valAccuracy! > best.valAccuracy! || (h.valAccuracy === best.valAccuracy && h.valLoss! < best.valLoss!)
        ? h
        : best,
    ).epoch;
    expect(result.bestEpoch).toBe(expected);
    // the validation set fights the training set, so the best epoch is not the last: a restore happened
    expect(expected).toBeLessThan(4);
    expect(history[3]!.valAccuracy).toBeLessThan(history[expected - 1]!.valAccuracy!);
    expect(result.validation!.loss).toBe(history[expected - 1]!.valLoss);
    expect(result.validation!.accuracy).toBe(history[expected - 1]!.valAccuracy);
    // the same training stopped at the best epoch: bit for bit the same weights
    const stopped = net(1);
    await train(stopped, data, {
      ...options,
      optimizer: new Lamb({ learningRate: 0.02 }),
      epochs: expected,
      validation: flipped,
      keepBest: false,
    });
    expect(await weightsOf(model)).toEqual(await weightsOf(stopped));
    // keepBest: false keeps the last epoch
    const last = net(1);
    const lastResult = await train(last, data, {
      ...options,
      optimizer: new Lamb({ learningRate: 0.02 }),
      epochs: 4,
      validation: flipped,
      keepBest: false,
    });
    expect(lastResult.bestEpoch).toBeUndefined();
    expect(lastResult.validation!.accuracy).toBe(history[3]!.valAccuracy);
    for (const m of [model, stopped, last]) m.dispose();
  });

  it('splits off a stratified validation set with validationSplit and says which images it took', async () => {
    const model = net(2);
    const result = await train(model, data, { epochs: 2, batchSize: 16, validationSplit: 0.25, seed: 7 });
    const held = result.validationIndices!;
    expect(held.length).toBe(12);
    expect(new Set(held).size).toBe(12);
    expect(held.filter((i) => data.labels[i] === 1).length).toBe(6);
    expect(result.validation!.confusionMatrix.flat().reduce((a, b) => a + b, 0)).toBe(12);
    expect(result.history.every((h) => h.valAccuracy !== undefined)).toBe(true);
    // 36 training images in batches of 16: 3 steps per epoch
    expect(result.history.length).toBe(2);
    await expect(train(model, data, { validation: flipped, validationSplit: 0.2 })).rejects.toThrow(
      /validation or validationSplit, not both/,
    );
    await expect(train(model, data, { validationSplit: 48 })).rejects.toThrow(/whole number in \[1, 47\]/);
    model.dispose();
  });
});

describe('train with trainLayers', () => {
  it('changes only the chosen layers; the frozen ones (batch norm statistics too) stay as they were', async () => {
    const model = net(3, { batchNorm: true, hidden: [6], dropout: 0.25 });
    const frozen = model.layers.map((l) => l.name).filter((n) => n !== 'fc1');
    const before = await weightsOf(model);
    const result = await train(model, data, {
      epochs: 2,
      batchSize: 16,
      trainLayers: ['fc1'],
      optimizer: new Lamb({ learningRate: 0.05 }),
    });
    expect(result.plan.selection).toEqual({ trained: ['fc1'], frozenPrefix: 9 });
    const after = await weightsOf(model);
    for (const [name, values] of Object.entries(before)) {
      if (frozen.includes(name.split('/')[0]!)) expect(after[name], name).toEqual(values);
      else expect(after[name], name).not.toEqual(values);
    }
    expect(Object.keys(before).some((k) => k.startsWith('block1_bn1/') && k.includes('moving_mean'))).toBe(
      true,
    );
    model.dispose();
  });

  it('trains the head on the frozen layers at inference, cached across epochs: the same steps as by hand', async () => {
    const hyper = { learningRate: 0.05, weightDecay: 0.01 };
    const model = net(5, { batchNorm: true });
    await train(model, data, {
      epochs: 3,
      batchSize: 48, // one step per epoch: the order of the images does not change the mean loss
      trainLayers: ['predictions'],
      optimizer: new Lamb(hyper),
    });
    // by hand: the frozen layers at inference, then LAMB on the head with the softmax cross-entropy
    const reference = net(5, { batchNorm: true });
    const head = reference.getLayer('predictions');
    const features = tf.tidy(() => {
      let h: tf.Tensor = data.images;
      for (const layer of reference.layers.slice(0, -1)) h = layer.apply(h, { training: false }) as tf.Tensor;
      return h;
    });
    const labels = tf.oneHot(tf.tensor1d([...data.labels], 'int32'), 2);
    const optimizer = new Lamb(hyper);
    for (let step = 0; step < 3; step++) {
      optimizer.minimize(
        () => tf.losses.softmaxCrossEntropy(labels, head.apply(features) as tf.Tensor) as tf.Scalar,
        false,
        head.trainableWeights.map((w) => w.read() as tf.Variable),
      );
    }
    const [trained, byHand] = [
      await weightsOf(model, ['predictions']),
      await weightsOf(reference, ['predictions']),
    ];
    for (const [name, values] of Object.entries(byHand)) {
      const got = trained[name]!;
      for (const [i, v] of values.entries()) expect(got[i]).toBeCloseTo(v, 5);
    }
    // and the head really moved
    const initial = await weightsOf(net(5, { batchNorm: true }), ['predictions']);
    expect(trained['predictions/kernel']).not.toEqual(initial['predictions/kernel']);
    tf.dispose([features, labels]);
    optimizer.dispose();
    model.dispose();
    reference.dispose();
  });
});

describe('train with LAMB moments in JavaScript', () => {
  it('leaks no tensors over several epochs and steps, and resumes from checkpoints exactly', async () => {
    const before = tf.memory().numTensors;
    const options = () => ({
      batchSize: 8,
      seed: 2,
      validation: flipped,
      keepBest: false,
      optimizer: new Lamb({ learningRate: 0.02, weightDecay: 0.01, moments: 'js' }),
    });
    const straight = net(6);
    const full = await train(straight, data, { ...options(), epochs: 3 });
    const store = memoryCheckpoints();
    const first = net(6);
    await train(first, data, { ...options(), epochs: 2, checkpoints: store });
    first.dispose();
    const second = net(60); // other initial weights: the checkpoint replaces them
    const rest = await train(second, data, { ...options(), epochs: 3, checkpoints: store });
    expect(rest.resumedFrom).toBe(2);
    expect(rest.history.map((h) => h.loss)).toEqual(full.history.map((h) => h.loss));
    expect(await weightsOf(second)).toEqual(await weightsOf(straight));
    straight.dispose();
    second.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("plans the default optimizer's moments, and its batch size from the memory limit", async () => {
    const model = net(7);
    const events: TrainProgress[] = [];
    // a limit with room for 3 images when the moments are in JavaScript, 2 when they are on the backend
    const js = planTrainingMemory(model, { moments: 'js' });
    const onBackend = planTrainingMemory(model, { moments: 'backend' });
    const perImage = js.bytes.activationsPerImage;
    const optimizer = onBackend.bytes.optimizerState + onBackend.bytes.optimizerWorkspace;
    expect(optimizer).toBeLessThan(perImage);
    const memoryLimit = js.peakBytes - js.batchSize * perImage + 3 * perImage + optimizer / 2;
    const result = await train(model, data, {
      epochs: 2,
      memory: { memoryLimit, headroom: 1 },
      onProgress: (p) => events.push(p),
    });
    expect(result.plan.moments).toBe('js');
    expect(result.batchSize).toBe(3);
    const steps = 2 * Math.ceil(48 / result.batchSize);
    expect(events.filter((e) => e.phase === 'batch').map((e) => e.done)).toEqual(
      Array.from({ length: steps }, (_, i) => i + 1),
    );
    expect(events.every((e) => e.total === steps && Number.isFinite(e.etaMs) && e.etaMs >= 0)).toBe(true);
    expect(events.at(-1)!.etaMs).toBe(0);
    model.dispose();
  });

  it('refuses a batch size beyond the memory plan before the first step', async () => {
    const model = net(8);
    const before = await weightsOf(model);
    const err = await train(model, data, {
      batchSize: 48,
      memory: { memoryLimit: 4 * tf.memory().numBytes + 100_000, headroom: 1 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CrpError);
    expect((err as CrpError).code).toBe('out-of-memory');
    expect((err as Error).message).toMatch(/batch size 48 does not fit: at most \d+ does/);
    expect(await weightsOf(model)).toEqual(before);
    const none = await train(model, data, { memory: { memoryLimit: 1000 } }).catch((e: unknown) => e);
    expect((none as CrpError).code).toBe('out-of-memory');
    expect((none as Error).message).toMatch(/does not fit even with batch size 1.*trainLayers/);
    model.dispose();
  });
});
