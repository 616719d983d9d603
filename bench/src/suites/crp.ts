import { CondAttribution, disposeCondResult } from '@crp/core';
import { smallVgg, vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type BenchResult, result, type SuiteContext, timeRuns } from '../measure.js';

/** Reference: zennit-crp on PyTorch CPU, 2 cores (issue #3): 20.4 s (VGG16) and 74 ms (small VGG). */
const ZENNIT_CRP_VGG16_MS = 20_400;
const ZENNIT_CRP_SMALL_MS = 74;

function convLayers(model: LayersModel): string[] {
  return model.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => l.name);
}

/** 8 conditions {y: [c], <last conv>: [k]}: one image, optionally relevance recorded at every conv layer.
 * Timed after one warm-up run. */
async function eightConditions(model: LayersModel, size: number, minRuns: number, recordAll: boolean) {
  const convs = convLayers(model);
  const last = convs[convs.length - 1]!;
  const conditions = Array.from({ length: 8 }, (_, k) => ({ y: [k % 3], [last]: [k * 7] }));
  const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  const image = tf.randomUniform([1, size, size, 3], 0, 1, 'float32', 5);
  const t = await timeRuns(
    () => {
      const r = crp.run(image, conditions, recordAll ? { recordLayers: convs } : {});
      r.heatmap!.dataSync();
      disposeCondResult(r);
    },
    { minRuns },
  );
  image.dispose();
  crp.dispose();
  return t;
}

export async function crpSuite({ log, quick }: SuiteContext): Promise<BenchResult[]> {
  log('CRP small VGG (64x64x3), 8 conditions...');
  const small = smallVgg({ seed: 2 });
  const smallT = await eightConditions(small, 64, 30, false);
  small.dispose();
  const results = [
    result(
      'crp.small_vgg_64.8conditions.ms',
      'ms',
      smallT.runs,
      `zennit-crp/PyTorch ${ZENNIT_CRP_SMALL_MS} ms; speed-up ${(ZENNIT_CRP_SMALL_MS / smallT.median).toFixed(2)}x`,
    ),
  ];
  if (!quick) {
    log('CRP VGG16 (224x224x3), 8 conditions, recording every conv layer...');
    const big = vgg('vgg16', { seed: 1 });
    const bigT = await eightConditions(big, 224, 3, true);
    big.dispose();
    results.push(
      result(
        'crp.vgg16_224.8conditions_record_all_conv.ms',
        'ms',
        bigT.runs,
        `zennit-crp/PyTorch ${ZENNIT_CRP_VGG16_MS} ms; speed-up ${(ZENNIT_CRP_VGG16_MS / bigT.median).toFixed(2)}x`,
      ),
    );
  }
  return results;
}
