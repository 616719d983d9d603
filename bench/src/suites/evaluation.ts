import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lrpExplainer, mprt, pixelFlipping, regionPerturbation, selectivity } from '@crp/evaluation';
import { smallVgg, vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import { type BenchResult, median, result, type SuiteContext, timeRuns } from '../measure.js';

/** Quantus + zennit on PyTorch CPU, timed by bench/anchors/quantus_evaluation.py on this machine (if it ran). */
interface Anchor {
  pixelFlippingVgg16?: { medianMs: number; cpuMs?: number[] };
  selectivityVgg16?: { medianMs: number; cpuMs?: number[] };
  regionPerturbationVgg16?: { medianMs: number; cpuMs?: number[]; regions: number };
  mprtSmallVgg?: { medianMs: number; medianCpuMs?: number; ranAt?: string; loadAverage?: number[][] };
  about?: { ranAt: string; threads: number };
}

function readAnchor(): Anchor {
  const file = join(
    dirname(fileURLToPath(import.meta.url)),
    '..',
    '..',
    'anchors',
    'quantus-evaluation.json',
  );
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Anchor;
  } catch {
    return {};
  }
}

function versus(ours: number, quantus: number | undefined, anchor: Anchor): string {
  if (quantus === undefined) return 'no Quantus anchor: run bench/anchors/quantus_evaluation.py';
  return `Quantus+zennit/PyTorch ${quantus.toFixed(0)} ms (${anchor.about?.threads} threads, ${anchor.about?.ranAt}); speed-up ${(quantus / ours).toFixed(2)}x; goal >= 3x`;
}

/** Runs `fn` timed, with the process's CPU time and the load average beside the wall times. */
async function timedWithCpu(
  fn: () => Promise<void>,
): Promise<{ runs: number[]; median: number; cpu: string }> {
  const c0 = process.cpuUsage();
  const load0 = loadavg()[0]!;
  const t = await timeRuns(fn, { warmup: 0 });
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000 / t.runs.length;
  return {
    ...t,
    cpu: `CPU ${(cpuMs / 1000).toFixed(1)} s a run on ${cpus().length} cores, load ${load0.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)}`,
  };
}

/**
 * The evaluation metrics' heavy workloads, per image: PixelFlipping on VGG16 with 192 steps (784 features a
 * step: Quantus needs a divisor of 224 * 224; the random explanation scatters each step over the whole image,
 * so the incremental forward does not pay and the perturbed inputs are batched through the model);
 * Selectivity on VGG16 with 16x16 patches, 196 steps (pixel flipping in patches: each step changes one patch,
 * so the incremental forward recomputes only the windows it reaches); RegionPerturbation on VGG16 with 20 such
 * patches (the same, short enough for a loaded hour); MPRT cascading over every weighted layer
 * of the small VGG with LRP explanations.
 */
export async function evaluationSuite({ log, quick }: SuiteContext): Promise<BenchResult[]> {
  const anchor = readAnchor();
  const results: BenchResult[] = [];
  if (!quick) {
    log('PixelFlipping on VGG16 (224x224x3), 192 steps...');
    const big = vgg('vgg16', { seed: 1 });
    const x = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const explanation = tf.randomUniform([1, 224, 224], -1, 1, 'float32', 8);
    const input = { model: big, x, labels: [0], explanation };
    // warm-up on a few steps (kernels compiled, weights uploaded), then full runs
    await pixelFlipping(input, { featuresInStep: 50176 });
    const pf = await timedWithCpu(async () => {
      await pixelFlipping(input, { featuresInStep: 784 }, { batchSize: 16 });
    });
    results.push(
      result(
        'evaluation.pixel_flipping.vgg16_224.192_steps_ms',
        'ms',
        pf.runs,
        `${versus(pf.median, anchor.pixelFlippingVgg16?.medianMs, anchor)}; ${pf.cpu}`,
      ),
    );
    log('Selectivity on VGG16 (224x224x3), 16x16 patches, 196 steps, incremental forward...');
    await selectivity(input, { patchSize: 224 });
    const sel = await timedWithCpu(async () => {
      await selectivity(input, { patchSize: 16 }, { batchSize: 16 });
    });
    results.push(
      result(
        'evaluation.selectivity.vgg16_224.196_patches_ms',
        'ms',
        sel.runs,
        `${versus(sel.median, anchor.selectivityVgg16?.medianMs, anchor)}; ${sel.cpu}`,
      ),
    );
    // the anchor's short workload for a loaded machine: 20 patches, most relevant first
    const regions = 20;
    log(`RegionPerturbation on VGG16 (224x224x3), 16x16 patches, ${regions} steps, incremental forward...`);
    const rp = await timedWithCpu(async () => {
      await regionPerturbation(input, { patchSize: 16, regionsEvaluation: regions }, { batchSize: 16 });
    });
    const rpAnchor = anchor.regionPerturbationVgg16;
    results.push(
      result(
        `evaluation.region_perturbation.vgg16_224.${regions}_patches_ms`,
        'ms',
        rp.runs,
        `${versus(rp.median, rpAnchor?.regions === regions ? rpAnchor.medianMs : undefined, anchor)}; ${rp.cpu}`,
      ),
    );
    tf.dispose([x, explanation]);
    big.dispose();
  }
  log('MPRT cascading, small VGG (64x64x3), every layer...');
  const small = smallVgg({ seed: 2 });
  const xs = tf.randomUniform([1, 64, 64, 3], 0, 1, 'float32', 11) as tf.Tensor4D;
  const explainer = lrpExplainer('epsilon_plus_flat');
  // CPU time of every thread of the process beside the wall time: on the shared machine a run's wall time is
  // mostly waiting for a core, and the anchor records both
  const cpuMs: number[] = [];
  const loadBefore = loadavg();
  const t = await timeRuns(async () => {
    const c0 = process.cpuUsage();
    await mprt({ model: small, x: xs, labels: [3] }, explainer, { skipLayers: quick });
    const c = process.cpuUsage(c0);
    cpuMs.push((c.user + c.system) / 1000);
  });
  const loadAfter = loadavg();
  xs.dispose();
  small.dispose();
  const mprtAnchor = anchor.mprtSmallVgg;
  const timedAnchor = {
    ...anchor,
    about: { threads: anchor.about?.threads ?? 0, ranAt: mprtAnchor?.ranAt ?? anchor.about?.ranAt ?? '?' },
  };
  const load = `load average ${loadBefore[0]!.toFixed(1)} -> ${loadAfter[0]!.toFixed(1)}`;
  results.push(
    result(
      'evaluation.mprt.small_vgg_64.cascading_ms',
      'ms',
      t.runs,
      `${versus(t.median, mprtAnchor?.medianMs, timedAnchor)}; ${load}`,
    ),
  );
  // the warm-up call is the first entry
  const cpuRuns = cpuMs.slice(1);
  const cpuNote =
    mprtAnchor?.medianCpuMs === undefined
      ? 'no CPU time in the Quantus anchor'
      : `Quantus+zennit/PyTorch CPU ${mprtAnchor.medianCpuMs.toFixed(0)} ms; ratio ${(mprtAnchor.medianCpuMs / median(cpuRuns)).toFixed(2)}x`;
  results.push(result('evaluation.mprt.small_vgg_64.cascading_cpu_ms', 'ms', cpuRuns, `${cpuNote}; ${load}`));
  return results;
}
