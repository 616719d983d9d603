import { Attributor, disposeResult } from '@crp/lrp';
import { smallVgg, vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import { type BenchResult, medianMs } from '../measure.js';

/** Reference: zennit on PyTorch CPU, 2 cores (issue #2): VGG16 heatmap 1.50 s (forward 321 ms), small VGG
 * 17.3 ms per sample. */
const ZENNIT_VGG16_MS = 1500;
const ZENNIT_VGG16_FORWARD_MS = 321;
const ZENNIT_SMALL_VGG_MS = 17.3;

export async function lrpSuite(log: (s: string) => void): Promise<BenchResult[]> {
  const results: BenchResult[] = [];

  log('building VGG16 (224x224x3, random He-normal weights)...');
  const big = vgg('vgg16', { seed: 1 });
  const image = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 7);
  const lrp = new Attributor(big, { composite: 'epsilon_plus_flat' });
  const forwardMs = await medianMs(() => {
    const pass = lrp.forward(image);
    pass.prediction.dataSync();
    pass.dispose();
  }, 3);
  const vggMs = await medianMs(() => {
    const r = lrp.attribute(image, { target: 0 });
    r.relevance.dataSync();
    disposeResult(r);
  }, 3);
  lrp.dispose();
  big.dispose();
  image.dispose();
  results.push(
    {
      name: 'lrp.vgg16_224.forward_ms',
      value: forwardMs,
      unit: 'ms',
      note: `zennit/PyTorch forward ${ZENNIT_VGG16_FORWARD_MS} ms`,
    },
    {
      name: 'lrp.vgg16_224.epsilon_plus_flat.latency_ms',
      value: vggMs,
      unit: 'ms',
      note: `zennit/PyTorch ${ZENNIT_VGG16_MS} ms; ratio ours/zennit ${(vggMs / ZENNIT_VGG16_MS).toFixed(2)}`,
    },
  );

  log('small VGG (64x64x3)...');
  const small = smallVgg({ seed: 2 });
  const lrpSmall = new Attributor(small, { composite: 'epsilon_plus_flat' });
  for (const batch of [1, 16]) {
    const x = tf.randomUniform([batch, 64, 64, 3], 0, 1, 'float32', 11);
    const ms = await medianMs(
      () => {
        const r = lrpSmall.attribute(x, { target: 3 });
        r.relevance.dataSync();
        disposeResult(r);
      },
      batch === 1 ? 20 : 5,
      2,
    );
    x.dispose();
    const perSample = ms / batch;
    results.push({
      name: `lrp.small_vgg_64.per_sample_ms.batch${batch}`,
      value: perSample,
      unit: 'ms',
      note: `zennit/PyTorch ${ZENNIT_SMALL_VGG_MS} ms; ratio ours/zennit ${(perSample / ZENNIT_SMALL_VGG_MS).toFixed(2)}`,
    });
  }
  lrpSmall.dispose();
  small.dispose();
  return results;
}
