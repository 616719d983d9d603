import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { smallVgg, VGG_CONFIGS, vgg } from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Parameters of a VGG computed from its definition: 3x3 convs with bias, then dense layers with bias. */
function expectedParams(
  blocks: readonly (readonly number[])[],
  input: [number, number, number],
  hidden: number[],
  classes: number,
): number {
  let channels = input[2];
  let params = 0;
  for (const block of blocks) {
    for (const width of block) {
      params += 3 * 3 * channels * width + width;
      channels = width;
    }
  }
  const side = input[0] / 2 ** blocks.length;
  let units = side * side * channels;
  for (const h of [...hidden, classes]) {
    params += units * h + h;
    units = h;
  }
  return params;
}

describe('vgg builders', () => {
  it('builds every configuration with the expected parameter count and readable names', () => {
    for (const name of Object.keys(VGG_CONFIGS) as (keyof typeof VGG_CONFIGS)[]) {
      const m = vgg(name, { inputShape: [32, 32, 3], classes: 10, hidden: [16, 16] });
      expect(m.countParams()).toBe(expectedParams(VGG_CONFIGS[name], [32, 32, 3], [16, 16], 10));
      const convs = m.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => l.name);
      expect(convs.length).toBe(VGG_CONFIGS[name].flat().length);
      expect(convs[0]).toBe('block1_conv1');
      expect(m.layers[m.layers.length - 1]!.name).toBe('predictions');
      m.dispose();
    }
  });

  it('adds batch norm after every conv when asked', () => {
    const m = vgg('vgg11', { inputShape: [32, 32, 3], classes: 4, hidden: [8, 8], batchNorm: true });
    const bns = m.layers.filter((l) => l.getClassName() === 'BatchNormalization');
    expect(bns.length).toBe(8);
    expect(bns[0]!.name).toBe('block1_bn1');
    m.dispose();
  });

  it('the small VGG is conv 32-32-M-64-64-M-128-M, Dense 8192->128->10 on 64x64x3', () => {
    const m = smallVgg();
    expect(m.countParams()).toBe(expectedParams([[32, 32], [64, 64], [128]], [64, 64, 3], [128], 10));
    const fc1 = m.getLayer('fc1');
    expect(fc1.getWeights()[0]!.shape).toEqual([8192, 128]);
    const y = m.predict(tf.zeros([2, 64, 64, 3])) as tf.Tensor;
    expect(y.shape).toEqual([2, 10]);
    y.dispose();
    m.dispose();
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const a = smallVgg({ seed: 3 });
    const b = smallVgg({ seed: 3 });
    const c = smallVgg({ seed: 4 });
    const wa = a.getLayer('block1_conv1').getWeights()[0]!.dataSync();
    const wb = b.getLayer('block1_conv1').getWeights()[0]!.dataSync();
    const wc = c.getLayer('block1_conv1').getWeights()[0]!.dataSync();
    expect(Array.from(wa)).toEqual(Array.from(wb));
    expect(Array.from(wa)).not.toEqual(Array.from(wc));
    for (const m of [a, b, c]) m.dispose();
  });

  it('rejects an unknown configuration with the valid names', () => {
    expect(() => vgg('vgg17' as never)).toThrow(/valid: vgg11, vgg13, vgg16, vgg19/);
  });
});
