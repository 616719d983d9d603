/**
 * The job of `pnpm distributed:check` and the distributed benchmark: the small VGG of the benchmarks (64x64x3,
 * seed 2) on `samples` seeded random images, loaded the same way by the coordinator and every worker process.
 */
import '@tensorflow/tfjs-backend-wasm';
import { fromTensors } from '@crp/attribution';
import { CondAttribution } from '@crp/core';
import { smallVgg } from '@crp/models';
import { datasetIdentity, type JobLoader } from '@crp/queue';
import * as tf from '@tensorflow/tfjs-core';

export interface SmallVggSpec {
  samples: number;
}

/** The same backend everywhere (results are compared to the last bit): single-threaded wasm. */
export async function useWasm(): Promise<void> {
  if (tf.getBackend() !== 'wasm') {
    if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend is unavailable');
    await tf.ready();
  }
}

const images = new WeakMap<object, tf.Tensor>();

export const smallVggLoader: JobLoader<SmallVggSpec> = {
  async load(spec) {
    await useWasm();
    const model = smallVgg({ seed: 2 });
    const x = tf.randomUniform([spec.samples, 64, 64, 3], 0, 1, 'float32', 11);
    const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
    images.set(crp, x);
    const labels = Array.from({ length: spec.samples }, (_, i) => i % 10);
    return { crp, model, dataset: fromTensors(x, labels) };
  },
  async identify(spec, ctx) {
    return {
      model: 'small VGG 64x64, seed 2',
      data: `${datasetIdentity(ctx.dataset)}, images seed 11 (${spec.samples})`,
    };
  },
  dispose(ctx) {
    images.get(ctx.crp)?.dispose();
    ctx.crp.dispose();
    ctx.model?.dispose();
  },
};
