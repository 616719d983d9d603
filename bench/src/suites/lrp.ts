import { Attributor, disposeResult } from '@crp/lrp';
import { smallVgg, vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import { type BenchResult, result, type SuiteContext, timeRuns } from '../measure.js';

/** Reference: zennit on PyTorch CPU, 2 cores (issue #2): VGG16 heatmap 1.50 s (forward 321 ms), small VGG
 * 17.3 ms per sample. */
const ZENNIT_VGG16_MS = 1500;
const ZENNIT_VGG16_FORWARD_MS = 321;
const ZENNIT_SMALL_VGG_MS = 17.3;

export async function lrpSuite({ log, quick }: SuiteContext): Promise<BenchResult[]> {
  const results: BenchResult[] = [];

  if (!quick) {
    log('building VGG16 (224x224x3, random He-normal weights)...');
    const big = vgg('vgg16', { seed: 1 });
    const image = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 7);
    const lrp = new Attributor(big, { composite: 'epsilon_plus_flat' });
    const forward = await timeRuns(() => {
      const pass = lrp.forward(image);
      pass.prediction.dataSync();
      pass.dispose();
    });
    const heatmap = await timeRuns(() => {
      const r = lrp.attribute(image, { target: 0 });
      r.relevance.dataSync();
      disposeResult(r);
    });
    lrp.dispose();
    big.dispose();
    image.dispose();
    results.push(
      result(
        'lrp.vgg16_224.forward_ms',
        'ms',
        forward.runs,
        `zennit/PyTorch forward ${ZENNIT_VGG16_FORWARD_MS} ms`,
      ),
      result(
        'lrp.vgg16_224.epsilon_plus_flat.latency_ms',
        'ms',
        heatmap.runs,
        `zennit/PyTorch ${ZENNIT_VGG16_MS} ms; ratio ours/zennit ${(heatmap.median / ZENNIT_VGG16_MS).toFixed(2)}`,
      ),
    );
  }

  log('small VGG (64x64x3)...');
  const small = smallVgg({ seed: 2 });
  const lrpSmall = new Attributor(small, { composite: 'epsilon_plus_flat' });
  for (const batch of [1, 16]) {
    const x = tf.randomUniform([batch, 64, 64, 3], 0, 1, 'float32', 11);
    const t = await timeRuns(
      () => {
        const r = lrpSmall.attribute(x, { target: 3 });
        r.relevance.dataSync();
        disposeResult(r);
      },
      { warmup: 2, minRuns: batch === 1 ? 20 : 5 },
    );
    x.dispose();
    const perSample = t.median / batch;
    results.push(
      result(
        `lrp.small_vgg_64.per_sample_ms.batch${batch}`,
        'ms',
        t.runs,
        `zennit/PyTorch ${ZENNIT_SMALL_VGG_MS} ms; ratio ours/zennit ${(perSample / ZENNIT_SMALL_VGG_MS).toFixed(2)}`,
        (ms) => ms / batch,
      ),
    );
  }
  lrpSmall.dispose();
  small.dispose();
  return results;
}
