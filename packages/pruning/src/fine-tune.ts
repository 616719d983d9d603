import { CrpError, type Progress, progressTracker } from '@crp/common';
import { type Dataset, Lamb } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import type { MaskedModel } from './masked-model.js';

export interface FineTuneOptions {
  /** Passes over the data. Default 1. */
  epochs?: number;
  /** Default 32. */
  batchSize?: number;
  /** Default a `Lamb` from `@crp/models` with learning rate 0.01 and weight decay 0.01 (created and disposed
   * here). A given optimizer stays the caller's. */
  optimizer?: tf.Optimizer;
  /** Called after each step (`done`/`total` count the steps of all epochs, `unit: 'batches'`). */
  onProgress?: (progress: FineTuneProgress) => void;
}

/** Progress of {@link fineTune}: the shared {@link Progress} over the training steps, plus the step's numbers. */
export interface FineTuneProgress extends Progress {
  /** 0-based epoch and batch within it */
  epoch: number;
  batch: number;
  batches: number;
  /** loss of this step */
  loss: number;
}

/** Loss per batch, in order. */
export interface FineTuneResult {
  losses: number[];
}

function checkTrainable(): void {
  if (tf.getGradient('Conv2D') === undefined) {
    throw new CrpError(
      'invalid-argument',
      "gradients are not registered: import '@tensorflow/tfjs-layers' (its Node bundle registers them) or '@tensorflow/tfjs-core/dist/register_all_gradients' once in the application",
    );
  }
  if (tf.getKernel('Conv2DBackpropFilter', tf.getBackend()) === undefined) {
    throw new CrpError(
      'invalid-argument',
      `the ${tf.getBackend()} backend has no Conv2DBackpropFilter kernel, so convolutions cannot be trained; call registerTrainingKernels() from @crp/models once (it adds the kernel for wasm)`,
    );
  }
}

/**
 * Recovers accuracy after pruning: trains the masked copy (`masked.model`, inference-mode batch norm and
 * dropout) on labelled data with softmax cross-entropy on its outputs (logits), and zeroes the masked channels
 * again after every step ({@link MaskedModel.reapply}), so pruned channels stay pruned. A minimal loop: batches
 * in data order, no shuffling (deterministic). The user's model is not touched.
 */
export async function fineTune(
  masked: MaskedModel,
  samples: Dataset,
  options: FineTuneOptions = {},
): Promise<FineTuneResult> {
  checkTrainable();
  const epochs = options.epochs ?? 1;
  const batchSize = options.batchSize ?? 32;
  const optimizer = options.optimizer ?? new Lamb({ learningRate: 0.01, weightDecay: 0.01 });
  const data = samples;
  const n = data.images.shape[0]!;
  const classes = (masked.model.outputs[0]!.shape as number[]).at(-1)!;
  const onehot = tf.tidy(() =>
    tf.cast(tf.oneHot(tf.tensor1d(data.labels as number[], 'int32'), classes), 'float32'),
  );
  const variables = masked.model.trainableWeights.map((w) => w.read() as tf.Variable);
  const losses: number[] = [];
  const batches = Math.ceil(n / batchSize);
  const onProgress = options.onProgress;
  let step: { epoch: number; batch: number; loss: number } = { epoch: 0, batch: 0, loss: 0 };
  const tick = progressTracker(
    epochs * batches,
    onProgress === undefined ? undefined : (p) => onProgress({ ...p, ...step, batches }),
    { unit: 'batches' },
  );
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      for (let b = 0; b < batches; b++) {
        const start = b * batchSize;
        const size = Math.min(batchSize, n - start);
        const cost = optimizer.minimize(
          () =>
            tf.tidy(() => {
              const logits = masked.model.apply(tf.slice(data.images, start, size)) as tf.Tensor;
              return tf.losses.softmaxCrossEntropy(tf.slice(onehot, start, size), logits) as tf.Scalar;
            }),
          true,
          variables,
        );
        const loss = cost!.dataSync()[0]!;
        cost!.dispose();
        masked.reapply();
        losses.push(loss);
        step = { epoch, batch: b, loss };
        tick(1);
        // let the event loop breathe between steps
        await new Promise<void>((resolve) => setTimeout(resolve, 0));
      }
    }
  } finally {
    onehot.dispose();
    if (options.optimizer === undefined) optimizer.dispose();
  }
  return { losses };
}
