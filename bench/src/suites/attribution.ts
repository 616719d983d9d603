import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decompose } from '@crp/attribution';
import { runAtlasJob } from '@crp/attribution/node';
import { CondAttribution } from '@crp/core';
import { vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import { type BenchResult, peakRssMiB } from '../measure.js';

const SAMPLES = 512;
const setupModule = fileURLToPath(new URL('./attribution-setup.ts', import.meta.url));

/** Concept atlas over 512 samples (small VGG, 64x64, all conv and dense layers, class 0) as a job. */
async function atlasSamplesPerSecond(workers: number): Promise<number> {
  const file = join(tmpdir(), `crp-bench-atlas-${process.pid}-${workers}.jsonl`);
  await rm(file, { force: true });
  const t0 = performance.now();
  const atlas = await runAtlasJob(
    { module: setupModule, args: { samples: SAMPLES } },
    { file, target: 0, samples: 'all', batchSize: 16, workers },
  );
  const seconds = (performance.now() - t0) / 1000;
  await rm(file, { force: true });
  if (atlas.samples !== SAMPLES) throw new Error(`atlas voted ${atlas.samples} samples, expected ${SAMPLES}`);
  return SAMPLES / seconds;
}

export async function attributionSuite(log: (s: string) => void): Promise<BenchResult[]> {
  log(`attribution: concept atlas, small VGG 64x64, ${SAMPLES} samples, 1 worker...`);
  const one = await atlasSamplesPerSecond(1);
  log(`attribution: concept atlas, small VGG 64x64, ${SAMPLES} samples, 2 workers...`);
  const two = await atlasSamplesPerSecond(2);

  log(
    'attribution: VGG16 224, decomposition of block5_conv3 #7 into block5_conv2 (early stop vs full pass)...',
  );
  const model = vgg('vgg16', { seed: 1 });
  const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  const image = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 5);
  const options = { classId: 0, layer: 'block5_conv3', concept: 7, depth: 1, width: 5 };
  decompose(crp, image, options); // warm-up (rule weights)
  const time = (fullPass: boolean) => {
    const t0 = performance.now();
    decompose(crp, image, { ...options, fullPass });
    return performance.now() - t0;
  };
  const early = time(false);
  const full = time(true);
  image.dispose();
  crp.dispose();
  model.dispose();
  return [
    {
      name: 'attribution.atlas.small_vgg_64.samples_per_s',
      value: one,
      unit: '1/s',
      note: `1 worker, whole job incl. setup; all conv/dense layers, 1 class`,
    },
    {
      name: 'attribution.atlas.small_vgg_64.2workers.samples_per_s',
      value: two,
      unit: '1/s',
      note: `2 worker threads, one single-threaded wasm instance each (1 worker = the main thread's backend); ${(two / one).toFixed(2)}x of 1 worker`,
    },
    {
      name: 'attribution.decompose.vgg16_224.ms',
      value: early,
      unit: 'ms',
      note: `stops at block5_conv2; full backward pass to the input: ${full.toFixed(0)} ms (${(full / early).toFixed(1)}x)`,
    },
    { name: 'attribution.decompose.vgg16_224.full_pass.ms', value: full, unit: 'ms' },
    { name: 'attribution.peak_rss_mib', value: peakRssMiB(), unit: 'MiB' },
  ];
}
