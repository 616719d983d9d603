/**
 * The hand-computable model of hand-computed.test.ts and report.test.ts: 4x4 RGB images (blue always 0), two
 * 1x1 conv layers with hand-set weights, global average pooling and a dense output layer (see there).
 */
import type { Dataset } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export const W1 = [
  [1, 0],
  [0, 2],
  [0, 0],
]; // [input channel][c1 channel]; the third input channel (blue, so that the images are RGB) is all zero
export const W2 = [
  [1, 0, 0.5],
  [0.25, 1, 0.5],
]; // [c1 channel][c2 channel]
export const W3 = [
  [1, 0],
  [0, 2],
  [1, -1],
]; // [c2 channel][class]
export const EPS = 1e-6; // zennit's epsilon and stabiliser

/** A 4x4 map with `value` at the given pixels (index y * 4 + x). */
export const map = (value: number, pixels: number[]) =>
  Array.from({ length: 16 }, (_, p) => (pixels.includes(p) ? value : 0));
export const CENTRE = [5, 6, 9, 10];
export const ALL = Array.from({ length: 16 }, (_, p) => p);

/** The images: [input channel 0, input channel 1] per sample, and their labels (0 = a, 1 = b). */
export const SAMPLES: { x: [number[], number[]]; label: number }[] = [
  { x: [map(2, CENTRE), map(0, [])], label: 0 },
  { x: [map(1, [0, 3, 12, 15]), map(1, [5, 6, 9])], label: 0 },
  { x: [map(1, [0]), map(1, CENTRE)], label: 0 }, // more of channel 1: predicted b
  { x: [map(1, [0, 1, 2, 3, 5]), map(0, [])], label: 0 },
  { x: [map(0, []), map(2, CENTRE)], label: 1 },
  { x: [map(1, CENTRE), map(1, [1, 2, 4, 7])], label: 1 }, // predicted a
  { x: [map(0, []), map(1, [8, 9, 10, 11, 12, 13, 14, 15])], label: 1 },
  { x: [map(1, ALL), map(0, [])], label: 1 }, // logit of b negative
];

/** The model with the weights above, and the samples as a data set with classes 'a' and 'b'. */
export function handModel(): { model: tfl.LayersModel; data: Dataset & { classes: string[] } } {
  const m = tfl.sequential({ name: 'hand' });
  m.add(
    tfl.layers.conv2d({
      name: 'c1',
      inputShape: [4, 4, 3],
      filters: 2,
      kernelSize: 1,
      activation: 'relu',
      useBias: false,
    }),
  );
  m.add(tfl.layers.conv2d({ name: 'c2', filters: 3, kernelSize: 1, activation: 'relu', useBias: false }));
  m.add(tfl.layers.globalAveragePooling2d({ name: 'pool' }));
  m.add(tfl.layers.dense({ name: 'out', units: 2, useBias: false }));
  tf.tidy(() => {
    m.getLayer('c1').setWeights([tf.tensor4d(W1.flat(), [1, 1, 3, 2])]);
    m.getLayer('c2').setWeights([tf.tensor4d(W2.flat(), [1, 1, 2, 3])]);
    m.getLayer('out').setWeights([tf.tensor2d(W3)]);
  });
  // NHWC: pixel p, channel c at (p * 3 + c)
  const pixels = SAMPLES.flatMap((s) => ALL.flatMap((p) => [s.x[0][p]!, s.x[1][p]!, 0]));
  return {
    model: m,
    data: {
      images: tf.tensor4d(pixels, [SAMPLES.length, 4, 4, 3]),
      labels: SAMPLES.map((s) => s.label),
      classes: ['a', 'b'],
    },
  };
}
