import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lrpExplainer, mprt, pixelFlipping, regionPerturbation, selectivity } from '@crp/evaluation';
import { smallVgg, vgg } from '@crp/models';
import * as tf from '@tensorflow/tfjs-core';
import { type BenchResult, median, result, type SuiteContext, timeRuns } from '../measure.js';

/** Quantus + zennit on PyTorch CPU, timed by bench/anchors/quantus_evaluation.py on this machine (if it ran). */
interface AnchorEntry {
  medianMs: number;
  cpuMs?: number[];
  ranAt?: string;
}
interface Anchor {
  pixelFlippingVgg16?: AnchorEntry;
  selectivityVgg16?: AnchorEntry;
  regionPerturbationVgg16?: AnchorEntry & { regions: number };
  mprtSmallVgg?: AnchorEntry & { medianCpuMs?: number; loadAverage?: number[][] };
  about?: { ranAt: string; threads: number };
}

/** How old an anchor's figure may be for a ratio: a peer timed on another day ran at another load, and the
 * ratio of two such figures says nothing (see the bench README's traps). Run the anchor script just before
 * this suite. */
const SAME_HOUR_MS = 90 * 60 * 1000;

/** The anchor's entry if it was timed within {@link SAME_HOUR_MS} before now, else why there is no ratio. */
function sameHour<T extends AnchorEntry>(entry: T | undefined, about: Anchor['about']): T | string {
  if (entry === undefined) return 'no Quantus anchor: run bench/anchors/quantus_evaluation.py';
  const ranAt = entry.ranAt ?? about?.ranAt;
  const age = ranAt === undefined ? Number.NaN : Date.now() - Date.parse(ranAt);
  if (!(age >= 0 && age <= SAME_HOUR_MS))
    return `Quantus anchor timed ${ranAt ?? 'at an unknown time'}, not in the hour before this run: no ratio (run bench/anchors/quantus_evaluation.py first)`;
  return entry;
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

function versus(ours: number, entry: AnchorEntry | undefined, anchor: Anchor): string {
  const peer = sameHour(entry, anchor.about);
  if (typeof peer === 'string') return peer;
  return `Quantus+zennit/PyTorch ${peer.medianMs.toFixed(0)} ms (${anchor.about?.threads} threads, ${peer.ranAt ?? anchor.about?.ranAt}); speed-up ${(peer.medianMs / ours).toFixed(2)}x; goal >= 3x`;
}

/** The CPU-time ratio to the anchor's median CPU time per run, where it recorded one in the same hour. */
function cpuVersus(ours: number, entry: AnchorEntry | undefined, anchor: Anchor): string {
  const peer = sameHour(entry, anchor.about);
  if (typeof peer === 'string' || peer.cpuMs === undefined || peer.cpuMs.length === 0)
    return 'CPU time per run; no CPU time of the same hour in the Quantus anchor';
  const q = median(peer.cpuMs);
  return `CPU time per run; Quantus+zennit/PyTorch CPU ${q.toFixed(0)} ms; ratio ${(q / ours).toFixed(2)}x; goal >= 3x`;
}

/** Runs `fn` timed (one run in `--quick`, which only checks that the workload runs), with the process's CPU
 * time per run (every thread: wasm's workers too) and the load average beside the wall times. */
async function timedWithCpu(
  fn: () => Promise<void>,
  quick: boolean,
): Promise<{ runs: number[]; median: number; cpuRuns: number[]; cpu: string }> {
  const cpuRuns: number[] = [];
  const load0 = loadavg()[0]!;
  const once = async () => {
    const c0 = process.cpuUsage();
    await fn();
    const c = process.cpuUsage(c0);
    cpuRuns.push((c.user + c.system) / 1000);
  };
  let t: { runs: number[]; median: number };
  if (quick) {
    const t0 = performance.now();
    await once();
    t = { runs: [performance.now() - t0], median: performance.now() - t0 };
  } else {
    t = await timeRuns(once, { warmup: 0 });
  }
  const cpuMs = median(cpuRuns);
  return {
    ...t,
    cpuRuns,
    cpu: `CPU ${(cpuMs / 1000).toFixed(1)} s a run on ${cpus().length} cores, load ${load0.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)}`,
  };
}

/** Images per forward pass of PixelFlipping's batched full passes on VGG16 (see bench/README.md: CPU time per
 * image at 2 threads hardly changes above 8). */
const PIXEL_FLIPPING_BATCH = 16;

/**
 * The evaluation metrics' heavy workloads, per image: PixelFlipping on VGG16 with 192 steps (784 features a
 * step: Quantus needs a divisor of 224 * 224; the random explanation scatters each step over the whole image,
 * so the incremental forward does not pay and the perturbed inputs are batched through the model);
 * Selectivity on VGG16 with 16x16 patches, 196 steps (pixel flipping in patches: each step changes one patch,
 * so the incremental forward recomputes only the windows it reaches); RegionPerturbation on VGG16 with 20 such
 * patches (the same, short enough for a loaded hour); MPRT cascading over every weighted layer
 * of the small VGG with LRP explanations. Each VGG16 workload records its wall time and its CPU time
 * (`_cpu_ms`), and VGG16's forward pass its CPU time per image at PixelFlipping's batch size. `--quick` runs
 * Selectivity's 196 steps once and PixelFlipping with 48 steps (3 batches): a check that finishes in minutes.
 */
export async function evaluationSuite({ log, quick }: SuiteContext): Promise<BenchResult[]> {
  const anchor = readAnchor();
  const results: BenchResult[] = [];
  const big = vgg('vgg16', { seed: 1 });
  const x = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
  const explanation = tf.randomUniform([1, 224, 224], -1, 1, 'float32', 8);
  const input = { model: big, x, labels: [0], explanation };
  // Quantus's PixelFlipping counts features over the channels too: 3 * 224 * 224 / 784 = 192 steps
  const pfSteps = quick ? 48 : 192;
  log(`PixelFlipping on VGG16 (224x224x3), ${pfSteps} steps, batches of ${PIXEL_FLIPPING_BATCH}...`);
  // warm-up on 3 steps (kernels compiled, weights uploaded), then full runs
  await pixelFlipping(input, { featuresInStep: 50176 });
  const pf = await timedWithCpu(async () => {
    await pixelFlipping(
      input,
      { featuresInStep: (3 * 50176) / pfSteps },
      { batchSize: PIXEL_FLIPPING_BATCH },
    );
  }, quick);
  const pfName = `evaluation.pixel_flipping.vgg16_224.${pfSteps}_steps`;
  const pfAnchor = quick ? undefined : anchor.pixelFlippingVgg16;
  results.push(
    result(`${pfName}_ms`, 'ms', pf.runs, `${versus(pf.median, pfAnchor, anchor)}; ${pf.cpu}`),
    result(`${pfName}_cpu_ms`, 'ms', pf.cpuRuns, cpuVersus(median(pf.cpuRuns), pfAnchor, anchor)),
    // a step is one forward pass of one perturbed image; the rest (ordering, perturbing) is under 1%
    result(
      'evaluation.pixel_flipping.vgg16_224.cpu_ms_per_step',
      'ms',
      pf.cpuRuns,
      `CPU time per step: about one VGG16 forward pass of one image in batches of ${PIXEL_FLIPPING_BATCH}`,
      (ms) => ms / pfSteps,
    ),
  );
  log('Selectivity on VGG16 (224x224x3), 16x16 patches, 196 steps, incremental forward...');
  // warm-up through the incremental forward (4 steps): its head's batched matMul packs VGG16's 400 MB fc1 weights
  // for XNNPACK once (model.predict's passes use another op), which the first timed run paid before: its fc1
  // call took about 1.6 s of CPU, 0.16 s after
  await selectivity(input, { patchSize: 112 }, { incremental: true });
  const sel = await timedWithCpu(async () => {
    await selectivity(input, { patchSize: 16 }, { batchSize: 16 });
  }, quick);
  results.push(
    result(
      'evaluation.selectivity.vgg16_224.196_patches_ms',
      'ms',
      sel.runs,
      `${versus(sel.median, anchor.selectivityVgg16, anchor)}; ${sel.cpu}`,
    ),
    result(
      'evaluation.selectivity.vgg16_224.196_patches_cpu_ms',
      'ms',
      sel.cpuRuns,
      cpuVersus(median(sel.cpuRuns), anchor.selectivityVgg16, anchor),
    ),
  );
  if (!quick) {
    // the anchor's short workload for a loaded machine: 20 patches, most relevant first
    const regions = 20;
    log(`RegionPerturbation on VGG16 (224x224x3), 16x16 patches, ${regions} steps, incremental forward...`);
    const rp = await timedWithCpu(async () => {
      await regionPerturbation(input, { patchSize: 16, regionsEvaluation: regions }, { batchSize: 16 });
    }, quick);
    const rpAnchor = anchor.regionPerturbationVgg16;
    const same = rpAnchor?.regions === regions ? rpAnchor : undefined;
    results.push(
      result(
        `evaluation.region_perturbation.vgg16_224.${regions}_patches_ms`,
        'ms',
        rp.runs,
        `${versus(rp.median, same, anchor)}; ${rp.cpu}`,
      ),
      result(
        `evaluation.region_perturbation.vgg16_224.${regions}_patches_cpu_ms`,
        'ms',
        rp.cpuRuns,
        cpuVersus(median(rp.cpuRuns), same, anchor),
      ),
    );
  }
  tf.dispose([x, explanation]);
  big.dispose();
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
  // --quick explains only after the last layer: not the anchor's workload
  const mprtAnchor = quick ? undefined : anchor.mprtSmallVgg;
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
      `${versus(t.median, mprtAnchor, timedAnchor)}; ${load}`,
    ),
  );
  // the warm-up call is the first entry
  const cpuRuns = cpuMs.slice(1);
  const mprtPeer = sameHour(mprtAnchor, anchor.about);
  const cpuNote = quick
    ? '--quick: one explanation (skipLayers), not comparable with the anchor'
    : typeof mprtPeer === 'string'
      ? mprtPeer
      : mprtPeer.medianCpuMs === undefined
        ? 'no CPU time in the Quantus anchor'
        : `Quantus+zennit/PyTorch CPU ${mprtPeer.medianCpuMs.toFixed(0)} ms; ratio ${(mprtPeer.medianCpuMs / median(cpuRuns)).toFixed(2)}x`;
  results.push(result('evaluation.mprt.small_vgg_64.cascading_cpu_ms', 'ms', cpuRuns, `${cpuNote}; ${load}`));
  return results;
}
