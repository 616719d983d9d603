/**
 * A tiny learnable data set and a small conv net trained on it (seeded, deterministic).
 *
 * Images are 16x16x3 on a noisy grey background with one 5x5 coloured square. The class is colour x side:
 * 0 red-left, 1 red-right, 2 blue-left, 3 blue-right. Colour features are shared by two classes each (low
 * layers), the colour-and-side combinations are class-specific (high layers).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mulberry32 } from './helpers.js';

export const SIZE = 16;
export const CLASSES = 4;
const COLOURS = [
  [0.9, 0.1, 0.1],
  [0.1, 0.2, 0.9],
];

export interface Data {
  images: tf.Tensor4D;
  labels: number[];
}

/** n images, classes in turn (balanced), positions and noise from `seed`. */
export function squares(n: number, seed: number): Data {
  const rng = mulberry32(seed);
  const data = new Float32Array(n * SIZE * SIZE * 3);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % CLASSES;
    labels.push(label);
    const colour = COLOURS[label >> 1]!;
    const right = (label & 1) === 1;
    const top = Math.floor(rng() * (SIZE - 5 + 1));
    const left = (right ? SIZE / 2 : 0) + Math.floor(rng() * (SIZE / 2 - 5 + 1));
    const base = i * SIZE * SIZE * 3;
    for (let p = 0; p < SIZE * SIZE; p++) {
      for (let c = 0; c < 3; c++) data[base + p * 3 + c] = 0.4 + 0.2 * rng();
    }
    for (let h = top; h < top + 5; h++) {
      for (let w = left; w < left + 5; w++) {
        for (let c = 0; c < 3; c++) data[base + (h * SIZE + w) * 3 + c] = colour[c]! + 0.1 * (rng() - 0.5);
      }
    }
  }
  return { images: tf.tensor4d(data, [n, SIZE, SIZE, 3]), labels };
}

/** conv1 (3->8, relu) - pool1 - conv2 (8->16) - bn2 - relu2 - pool2 - flatten - fc1 (256->24, relu) - fc2 (->4). */
export function squaresNet(seed = 1): tfl.Sequential {
  let s = seed * 100;
  const init = () => tfl.initializers.glorotUniform({ seed: s++ });
  const m = tfl.sequential({ name: 'squares_net' });
  m.add(
    tfl.layers.conv2d({
      inputShape: [SIZE, SIZE, 3],
      filters: 8,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      name: 'conv1',
      kernelInitializer: init(),
    }),
  );
  m.add(tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }));
  m.add(
    tfl.layers.conv2d({
      filters: 16,
      kernelSize: 3,
      padding: 'same',
      name: 'conv2',
      kernelInitializer: init(),
    }),
  );
  m.add(tfl.layers.batchNormalization({ name: 'bn2' }));
  m.add(tfl.layers.reLU({ name: 'relu2' }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }));
  m.add(tfl.layers.flatten({ name: 'flatten' }));
  m.add(tfl.layers.dense({ units: 24, activation: 'relu', name: 'fc1', kernelInitializer: init() }));
  m.add(tfl.layers.dropout({ rate: 0, name: 'drop' }));
  m.add(tfl.layers.dense({ units: CLASSES, name: 'fc2', kernelInitializer: init() }));
  return m;
}

/** Trains squaresNet on `train` with Adam (no shuffling: deterministic). On wasm it needs
 * registerTrainingKernels() from @crp/models. */
export async function trainSquaresNet(train: Data, epochs = 5, seed = 1, lr = 0.01): Promise<tfl.Sequential> {
  const model = squaresNet(seed);
  model.compile({ optimizer: tf.train.adam(lr), loss: logitsCrossEntropy });
  const y = tf.oneHot(tf.tensor1d(train.labels, 'int32'), CLASSES);
  await model.fit(train.images, y, { epochs, batchSize: 32, shuffle: false, verbose: 0 });
  y.dispose();
  return model;
}

/** Softmax cross-entropy on logits, for one-hot targets (the model outputs logits, as LRP wants). */
export function logitsCrossEntropy(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.losses.softmaxCrossEntropy(yTrue, yPred);
}
