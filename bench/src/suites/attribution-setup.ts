/** Job setup of the attribution benchmark: each worker thread builds the same small VGG and data set. */
import '@tensorflow/tfjs-backend-wasm';
import { fromTensors, type LabelledDataset } from '@crp/attribution';
import { CondAttribution } from '@crp/core';
import { smallVgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';

export async function setup(args: {
  samples: number;
}): Promise<{ crp: CondAttribution; dataset: LabelledDataset }> {
  if (tf.getBackend() !== 'wasm') {
    if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend unavailable');
    await tf.ready();
  }
  const model = smallVgg({ seed: 2 });
  const images = tf.randomUniform([args.samples, 64, 64, 3], 0, 1, 'float32', 11);
  const labels = new Array<number>(args.samples).fill(0);
  return {
    crp: new CondAttribution(model, { composite: 'epsilon_plus_flat' }),
    dataset: fromTensors(images, labels, { batchSize: 16 }),
  };
}
