import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decompose } from '@crp/attribution';
import { runAtlasJob } from '@crp/attribution/node';
import { CondAttribution } from '@crp/core';
import { smallVgg, vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import { type BenchResult, MIN_RUNS, median, result, type SuiteContext, timeRuns } from '../measure.js';

const setupModule = fileURLToPath(new URL('./attribution-setup.ts', import.meta.url));

/** Concept atlas over `samples` samples (small VGG, 64x64, all conv and dense layers, class 0) as a job,
 * whole job including the workers' setup: the wall time of each of at least 3 runs. */
async function atlasRuns(samples: number, workers: number): Promise<number[]> {
  const runs: number[] = [];
  for (let i = 0; i < MIN_RUNS; i++) {
    const file = join(tmpdir(), `crp-bench-atlas-${process.pid}-${workers}-${i}.jsonl`);
    await rm(file, { force: true });
    const t0 = performance.now();
    const atlas = await runAtlasJob(
      { module: setupModule, args: { samples } },
      { file, target: 0, samples: 'all', batchSize: 16, workers },
    );
    runs.push(performance.now() - t0);
    await rm(file, { force: true });
    if (atlas.samples !== samples)
      throw new Error(`atlas voted ${atlas.samples} samples, expected ${samples}`);
  }
  return runs;
}

export async function attributionSuite({ log, quick }: SuiteContext): Promise<BenchResult[]> {
  const samples = quick ? 64 : 512;
  log(`attribution: concept atlas, small VGG 64x64, ${samples} samples, 1 worker, ${MIN_RUNS} runs...`);
  const one = await atlasRuns(samples, 1);
  log(`attribution: concept atlas, small VGG 64x64, ${samples} samples, 2 workers, ${MIN_RUNS} runs...`);
  const two = await atlasRuns(samples, 2);
  const perSecond = (ms: number) => samples / (ms / 1000);
  const oneRate = median(one.map(perSecond));
  const twoRate = median(two.map(perSecond));

  // decomposition of one concept into the layer below: stopping there vs the full backward pass to the input
  const big = !quick;
  const name = big ? 'vgg16_224' : 'small_vgg_64';
  log(`attribution: decomposition on ${name}, early stop vs full pass (each warmed up first)...`);
  const model = big ? vgg('vgg16', { seed: 1 }) : smallVgg({ seed: 2 });
  const size = big ? 224 : 64;
  const crp = new CondAttribution(model, { composite: 'epsilon_plus_flat' });
  const image = tf.randomUniform([1, size, size, 3], 0, 1, 'float32', 5);
  const options = big
    ? { target: 0, layer: 'block5_conv3', concept: 7, depth: 1, width: 5 }
    : { target: 0, layer: 'block3_conv1', concept: 7, depth: 1, width: 5 };
  const below = big ? 'block5_conv2' : 'block2_conv2';
  // each variant gets its own warm-up: the full pass reaches layers (and derives rule weights) the early stop
  // never touches, so warming up only one would time the other's first use
  const early = await timeRuns(() => {
    decompose(crp, image, { ...options, fullPass: false });
  });
  const full = await timeRuns(() => {
    decompose(crp, image, { ...options, fullPass: true });
  });
  image.dispose();
  crp.dispose();
  model.dispose();
  return [
    result(
      `attribution.atlas.small_vgg_64.samples_per_s`,
      '1/s',
      one,
      `${samples} samples, 1 worker, whole job incl. setup; all conv/dense layers, 1 class`,
      perSecond,
    ),
    result(
      `attribution.atlas.small_vgg_64.2workers.samples_per_s`,
      '1/s',
      two,
      `${samples} samples, 2 worker threads, one single-threaded wasm instance each (1 worker = the main thread's backend); ${(twoRate / oneRate).toFixed(2)}x of 1 worker`,
      perSecond,
    ),
    result(
      `attribution.decompose.${name}.ms`,
      'ms',
      early.runs,
      `stops at ${below}; full backward pass to the input: ${full.median.toFixed(0)} ms (${(full.median / early.median).toFixed(1)}x); both warm`,
    ),
    result(`attribution.decompose.${name}.full_pass.ms`, 'ms', full.runs, 'warm (after a warm-up full pass)'),
  ];
}
