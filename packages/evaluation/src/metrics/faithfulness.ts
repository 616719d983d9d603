import { CrpError } from '@crp/common';
import {
  BLUR_KERNEL_SIZE,
  baselineValue,
  blurAt,
  checkBaseline,
  drawUniform,
  type PerturbBaseline,
} from '../baselines.js';
import { perFeature, type Samples } from '../data.js';
import { changedBox, IncrementalForward } from '../incremental.js';
import type { ExplanationProcessing } from '../normalise.js';
import { argsort, auc, pearson, spearman } from '../numeric.js';
import { predictIncremental, predictTargets, type ScoredInput } from '../predict.js';
import { checkInteger, type Prepared, prepare, randomOf } from '../prepare.js';
import type { RandomSource } from '../random.js';
import { slic } from '../slic.js';
import { type MetricInput, type MetricResult, mean, type RunOptions } from '../types.js';

/** Options shared by the perturbation metrics. */
export interface PerturbationOptions extends ExplanationProcessing {
  /** What replaces removed features (Quantus `perturb_baseline`). */
  perturbBaseline?: PerturbBaseline;
  /** Read the softmax of the output instead of the logit (Quantus `softmax`; the metric's default). */
  softmax?: boolean;
  /** Side of the box kernel of the `blur` baseline (Quantus `blur_kernel_size`); default 15. */
  blurKernelSize?: number;
}

/** Correlation used by FaithfulnessCorrelation, FaithfulnessEstimate and MonotonicityCorrelation. */
export type CorrelationName = 'pearson' | 'spearman';

function correlation(name: CorrelationName): (a: ArrayLike<number>, b: ArrayLike<number>) => number {
  if (name === 'pearson') return pearson;
  if (name === 'spearman') return spearman;
  throw new CrpError('invalid-argument', `unknown similarity '${String(name)}'; valid: pearson, spearman`);
}

const shapeOf = (s: Samples): [number, number, number] => [s.height, s.width, s.channels];

/** The model's output for the unperturbed inputs. */
async function originalOutputs(
  input: MetricInput,
  p: Prepared,
  softmax: boolean,
  run: RunOptions,
  metric: string,
) {
  const items: ScoredInput[] = p.s.x.map((x, i) => ({ input: x, label: p.labels[i]! }));
  return predictTargets(input.model, shapeOf(p.s), items, p.s.n, {
    ...run,
    softmax,
    phase: metric,
    describe: (i) => `the unperturbed sample ${i}`,
  });
}

/** Quantus's assert_features_in_step: H * W must be a multiple of featuresInStep. */
function checkFeaturesInStep(metric: string, k: number, s: Samples): void {
  checkInteger(metric, 'featuresInStep', k, 1, s.features);
  if ((s.height * s.width) % k !== 0) {
    throw new CrpError(
      'invalid-argument',
      `${metric}: featuresInStep ${k} does not divide H * W = ${s.height * s.width}; Quantus requires it to`,
    );
  }
}

/** Below this share of the full passes' estimated work the incremental forward is used by default: a window
 * costs more per multiply-add than a batched full pass (small GEMMs, copies in and out). */
const INCREMENTAL_SHARE = 0.5;

/** Runs `steps` perturbation steps on every sample (Quantus's batched loop): `step(t, i, random draws)` changes
 * sample i's array in place and returns the input to score; every sample is scored after every step. Where the
 * model allows it and the steps are local enough (`run.incremental`), sample by sample through the incremental
 * forward, else all samples in lockstep, batched. Returns the outputs as curves[i][t]. With `original`, the
 * incremental path also scores each sample's unperturbed input (`original(i)`) first, as the full pass that its
 * steps start from (one full pass a sample fewer), and returns those outputs in `original`; the batched path
 * leaves it undefined (the caller scores the unperturbed inputs itself). */
async function lockstepCurves(
  input: MetricInput,
  p: Prepared,
  steps: number,
  start: (i: number) => Float32Array,
  step: (t: number, i: number, cur: Float32Array, uniform: Float64Array | undefined) => Float32Array,
  draw: (t: number) => Float64Array | undefined,
  softmax: boolean,
  run: RunOptions,
  metric: string,
  incremental = false,
  original?: (i: number) => Float32Array,
): Promise<{ curves: number[][]; original?: number[] }> {
  const n = p.s.n;
  const describe = (k: number) => `sample ${k % n} perturbed in step ${Math.floor(k / n) + 1} of ${metric}`;
  const options = { ...run, softmax, phase: metric, describe };
  const forward =
    incremental && run.incremental !== false ? IncrementalForward.of(input.model, shapeOf(p.s)) : undefined;
  // with a choice of paths, drawn up front in the order of the lockstep loop, so that both see the same draws
  const drawn = forward === undefined ? undefined : Array.from({ length: steps }, (_, t) => draw(t));
  const drawAt = drawn === undefined ? draw : (t: number) => drawn[t];
  function* sequence(i: number): Generator<Float32Array> {
    const cur = start(i);
    for (let t = 0; t < steps; t++) yield step(t, i, cur, drawAt(t));
  }
  let out: Float64Array;
  let originals: number[] | undefined;
  if (
    forward !== undefined &&
    (run.incremental === true || worthIncremental(forward, p.s, n, steps, sequence))
  ) {
    if (original === undefined)
      out = await predictIncremental(forward, sequence, n, steps, p.labels, options);
    else {
      function* fromOriginal(i: number): Generator<Float32Array> {
        yield original!(i);
        yield* sequence(i);
      }
      const describeFrom = (k: number) => (k < n ? `the unperturbed sample ${k}` : describe(k - n));
      const all = await predictIncremental(forward, fromOriginal, n, steps + 1, p.labels, {
        ...options,
        describe: describeFrom,
      });
      originals = Array.from(all.subarray(0, n));
      out = all.subarray(n);
    }
  } else {
    const state = Array.from({ length: n }, (_, i) => start(i));
    function* inputs(): Generator<ScoredInput> {
      for (let t = 0; t < steps; t++) {
        const u = drawAt(t);
        for (let i = 0; i < n; i++) yield { input: step(t, i, state[i]!, u), label: p.labels[i]! };
      }
    }
    out = await predictTargets(input.model, shapeOf(p.s), inputs(), steps * n, options);
  }
  forward?.dispose();
  const curves = Array.from({ length: n }, (_, i) =>
    Array.from({ length: steps }, (_, t) => out[t * n + i]!),
  );
  return originals === undefined ? { curves } : { curves, original: originals };
}

/** Whether the incremental forward's estimated work for these steps (a dry run of the perturbations, which
 * finds each step's changed box) is at most {@link INCREMENTAL_SHARE} of the full passes'. */
function worthIncremental(
  forward: IncrementalForward,
  s: Samples,
  n: number,
  steps: number,
  sequence: (i: number) => Iterable<Float32Array>,
): boolean {
  let work = 0;
  const budget = INCREMENTAL_SHARE * n * steps * forward.fullCost;
  for (let i = 0; i < n; i++) {
    let prev: Float32Array | undefined;
    for (const x of sequence(i)) {
      work += prev === undefined ? forward.fullCost : forward.cost(changedBox(prev, x, s.height, s.width));
      if (work > budget) return false;
      if (prev === undefined) prev = Float32Array.from(x);
      else prev.set(x);
    }
  }
  return true;
}

function result(
  metric: string,
  scores: number[],
  higherIsBetter: boolean,
  curves?: number[][],
): MetricResult {
  const r: MetricResult = { metric, scores, aggregate: mean(scores), higherIsBetter };
  if (curves !== undefined) r.curves = curves;
  return r;
}

// ------------------------------------------------------------------------------------------ PixelFlipping

/** Options of {@link pixelFlipping} (Quantus `PixelFlipping`). */
export interface PixelFlippingOptions extends PerturbationOptions {
  /** Features removed per step; H * W must be a multiple of it. Default 1. */
  featuresInStep?: number;
}

/**
 * Pixel flipping (Bach et al. 2015): remove the input features in order of decreasing relevance,
 * `featuresInStep` at a time, cumulatively, and record the model's output for the class after each step
 * (Quantus `PixelFlipping`; defaults: `featuresInStep` 1, baseline `black`, softmax, normalise, no abs). The
 * faster the curve falls, the better; `scores` are the areas under the curves (lower is better).
 */
export async function pixelFlipping(
  input: MetricInput,
  options: PixelFlippingOptions = {},
  run: RunOptions = {},
): Promise<MetricResult> {
  const metric = 'PixelFlipping';
  const p = await prepare(input, options, { normalise: true, abs: false });
  const k = options.featuresInStep ?? 1;
  checkFeaturesInStep(metric, k, p.s);
  const baseline = options.perturbBaseline ?? 'black';
  const kernel = options.blurKernelSize ?? BLUR_KERNEL_SIZE;
  checkBaseline(baseline, metric, kernel);
  const random = randomOf(run);
  const orders = p.a.values.map((a) => argsort(perFeature(a, p.a.channels, p.s.channels), true));
  const steps = Math.ceil(p.s.features / k);
  const { curves } = await lockstepCurves(
    input,
    p,
    steps,
    (i) => Float32Array.from(p.s.x[i]!),
    (t, i, cur, u) => {
      const removed = orders[i]!.subarray(t * k, Math.min((t + 1) * k, orders[i]!.length));
      if (baseline === 'blur') {
        blurAt(cur, removed, p.s.height, p.s.width, p.s.channels, kernel);
        return cur;
      }
      const value = baselineValue(baseline, cur, () => u![i]!);
      for (const f of removed) cur[f] = value;
      return cur;
    },
    () => drawUniform(baseline, random, p.s.n),
    options.softmax ?? true,
    run,
    metric,
    true,
  );
  return result(metric, curves.map(auc), false, curves);
}

// ------------------------------------------------------------------- RegionPerturbation and Selectivity

/** Quantus's get_padding_size: the padding that makes `dim` a multiple of `patch` (floor before, ceil after). */
function paddingOf(dim: number, patch: number): [number, number] {
  const m = dim % patch;
  if (m === 0) return [0, 0];
  const total = patch - m;
  return [Math.floor(total / 2), Math.ceil(total / 2)];
}

/** The patch grid of Quantus's region metrics: the image padded to a multiple of the patch size, patches in
 * row-major order, each the flat indices (padded NHWC, all channels) it covers. */
interface PatchGrid {
  ph: [number, number];
  pw: [number, number];
  hp: number;
  wp: number;
  patches: Int32Array[];
}

function patchGrid(s: Samples, patchSize: number): PatchGrid {
  const ph = paddingOf(s.height, patchSize);
  const pw = paddingOf(s.width, patchSize);
  const hp = s.height + ph[0] + ph[1];
  const wp = s.width + pw[0] + pw[1];
  const patches: Int32Array[] = [];
  for (let by = 0; by < hp / patchSize; by++) {
    for (let bx = 0; bx < wp / patchSize; bx++) {
      const idx = new Int32Array(patchSize * patchSize * s.channels);
      let k = 0;
      for (let y = by * patchSize; y < (by + 1) * patchSize; y++) {
        for (let x = bx * patchSize; x < (bx + 1) * patchSize; x++) {
          for (let c = 0; c < s.channels; c++) idx[k++] = (y * wp + x) * s.channels + c;
        }
      }
      patches.push(idx);
    }
  }
  return { ph, pw, hp, wp, patches };
}

/** Edge padding (numpy `mode='edge'`) of one NHWC sample to the grid. */
function padEdge(x: Float32Array, s: Samples, g: PatchGrid): Float32Array {
  const out = new Float32Array(g.hp * g.wp * s.channels);
  for (let y = 0; y < g.hp; y++) {
    const sy = Math.min(Math.max(y - g.ph[0], 0), s.height - 1);
    for (let px = 0; px < g.wp; px++) {
      const sx = Math.min(Math.max(px - g.pw[0], 0), s.width - 1);
      const from = (sy * s.width + sx) * s.channels;
      out.set(x.subarray(from, from + s.channels), (y * g.wp + px) * s.channels);
    }
  }
  return out;
}

/** The sample region of a padded array (the inverse of the padding). */
function crop(padded: Float32Array, s: Samples, g: PatchGrid): Float32Array {
  const out = new Float32Array(s.features);
  const rowLen = s.width * s.channels;
  for (let y = 0; y < s.height; y++) {
    const from = ((y + g.ph[0]) * g.wp + g.pw[0]) * s.channels;
    out.set(padded.subarray(from, from + rowLen), y * rowLen);
  }
  return out;
}

/** Sum of the (zero-padded, channel-broadcast) explanation over each patch. */
function patchSums(a: Float32Array, aChannels: number, s: Samples, g: PatchGrid): Float64Array {
  const full = perFeature(a, aChannels, s.channels);
  const padded = new Float32Array(g.hp * g.wp * s.channels);
  for (let y = 0; y < s.height; y++) {
    const from = y * s.width * s.channels;
    padded.set(
      full.subarray(from, from + s.width * s.channels),
      ((y + g.ph[0]) * g.wp + g.pw[0]) * s.channels,
    );
  }
  return Float64Array.from(g.patches, (idx) => {
    let sum = 0;
    for (const j of idx) sum += padded[j]!;
    return sum;
  });
}

/** Perturbs patches in the given per-sample order, cumulatively, on the edge-padded input; returns the
 * output after each step, and with `original` the unperturbed inputs' outputs where the incremental forward
 * computed them (see {@link lockstepCurves}). */
async function patchCurves(
  input: MetricInput,
  p: Prepared,
  g: PatchGrid,
  orders: Int32Array[],
  steps: number,
  baseline: PerturbBaseline,
  blurKernelSize: number,
  random: RandomSource,
  softmax: boolean,
  run: RunOptions,
  metric: string,
  original = false,
): Promise<{ curves: number[][]; original?: number[] }> {
  return lockstepCurves(
    input,
    p,
    steps,
    (i) => padEdge(p.s.x[i]!, p.s, g),
    (t, i, cur, u) => {
      const patch = g.patches[orders[i]![t]!]!;
      if (baseline === 'blur') {
        // as in Quantus, the blur sees the edge-padded array
        blurAt(cur, patch, g.hp, g.wp, p.s.channels, blurKernelSize);
        return crop(cur, p.s, g);
      }
      const value = baselineValue(baseline, cur, () => u![i]!);
      for (const j of patch) cur[j] = value;
      return crop(cur, p.s, g);
    },
    () => drawUniform(baseline, random, p.s.n),
    softmax,
    run,
    metric,
    true,
    original ? (i) => p.s.x[i]! : undefined,
  );
}

/** Options of {@link regionPerturbation} (Quantus `RegionPerturbation`). */
export interface RegionPerturbationOptions extends PerturbationOptions {
  /** Side of the square patches; default 8. The image is edge-padded to a multiple of it. */
  patchSize?: number;
  /** Which patches first: `morf` most relevant first (default), `lerf` least relevant first, `random`. */
  order?: 'morf' | 'lerf' | 'random';
  /** Number of patches perturbed; default 100 (at most all patches). */
  regionsEvaluation?: number;
}

/**
 * Region perturbation (Samek et al. 2016): remove square patches in order of their summed relevance
 * (most relevant first, least relevant first, or random), cumulatively, and record the drop of the model's
 * output, `y - y_perturbed`, after each (Quantus `RegionPerturbation`; defaults: patch 8, `morf`, 100 regions,
 * baseline `black`, softmax, normalise). `scores` are the areas under the curves: for `morf` higher is better
 * (a fast drop), for `lerf` lower; {@link regionPerturbationAbpc} gives the area between the two.
 */
export async function regionPerturbation(
  input: MetricInput,
  options: RegionPerturbationOptions = {},
  run: RunOptions = {},
): Promise<MetricResult> {
  const metric = 'RegionPerturbation';
  const p = await prepare(input, options, { normalise: true, abs: false });
  const patchSize = options.patchSize ?? 8;
  checkInteger(metric, 'patchSize', patchSize, 1, Math.min(p.s.height, p.s.width));
  const regions = options.regionsEvaluation ?? 100;
  checkInteger(metric, 'regionsEvaluation', regions, 1);
  const order = options.order ?? 'morf';
  if (!['morf', 'lerf', 'random'].includes(order)) {
    throw new CrpError('invalid-argument', `${metric}: unknown order '${order}'; valid: morf, lerf, random`);
  }
  const baseline = options.perturbBaseline ?? 'black';
  const kernel = options.blurKernelSize ?? BLUR_KERNEL_SIZE;
  checkBaseline(baseline, metric, kernel);
  const softmax = options.softmax ?? true;
  const random = randomOf(run);
  const g = patchGrid(p.s, patchSize);
  const orders =
    order === 'random'
      ? p.a.values.map(() => random.permutation(g.patches.length))
      : p.a.values.map((a) => argsort(patchSums(a, p.a.channels, p.s, g), order === 'morf'));
  const steps = Math.min(regions, g.patches.length);
  const outputs = await patchCurves(
    input,
    p,
    g,
    orders,
    steps,
    baseline,
    kernel,
    random,
    softmax,
    run,
    metric,
    true,
  );
  // on the incremental forward the unperturbed outputs came with the steps (their first, full pass)
  const y = outputs.original ?? (await originalOutputs(input, p, softmax, run, metric));
  const curves = outputs.curves.map((c, i) => c.map((v) => y[i]! - v));
  return result(metric, curves.map(auc), order !== 'lerf', curves);
}

/**
 * The area between the perturbation curves (ABPC, as AttnLRP reports it): the area under the output curve when
 * the least relevant patches go first minus the area when the most relevant go first, per sample, from
 * {@link regionPerturbation}'s `lerf` and `morf` curves (which hold output drops, so ABPC = AUC(morf) -
 * AUC(lerf)). Higher is better; a random explanation gives about 0. `curves` holds the morf curves, then the lerf
 * curves.
 */
export async function regionPerturbationAbpc(
  input: MetricInput,
  options: Omit<RegionPerturbationOptions, 'order'> = {},
  run: RunOptions = {},
): Promise<MetricResult> {
  const morf = await regionPerturbation(input, { ...options, order: 'morf' }, run);
  const lerf = await regionPerturbation(input, { ...options, order: 'lerf' }, run);
  const scores = morf.scores.map((m, i) => m - lerf.scores[i]!);
  return result('RegionPerturbationABPC', scores, true, [...morf.curves!, ...lerf.curves!]);
}

/** Options of {@link selectivity} (Quantus `Selectivity`). */
export interface SelectivityOptions extends PerturbationOptions {
  /** Side of the square patches; default 8. */
  patchSize?: number;
}

/**
 * Selectivity (Montavon et al. 2018): remove all patches in order of decreasing summed relevance, cumulatively,
 * and record the model's output after each (Quantus `Selectivity`; defaults: patch 8, baseline `black`,
 * softmax, normalise). `scores` are the areas under the curves (lower is better).
 */
export async function selectivity(
  input: MetricInput,
  options: SelectivityOptions = {},
  run: RunOptions = {},
): Promise<MetricResult> {
  const metric = 'Selectivity';
  const p = await prepare(input, options, { normalise: true, abs: false });
  const patchSize = options.patchSize ?? 8;
  checkInteger(metric, 'patchSize', patchSize, 1, Math.min(p.s.height, p.s.width));
  const baseline = options.perturbBaseline ?? 'black';
  const kernel = options.blurKernelSize ?? BLUR_KERNEL_SIZE;
  checkBaseline(baseline, metric, kernel);
  const g = patchGrid(p.s, patchSize);
  const orders = p.a.values.map((a) => argsort(patchSums(a, p.a.channels, p.s, g), true));
  const { curves } = await patchCurves(
    input,
    p,
    g,
    orders,
    g.patches.length,
    baseline,
    kernel,
    randomOf(run),
    options.softmax ?? true,
    run,
    metric,
  );
  return result(metric, curves.map(auc), false, curves);
}

// ------------------------------------------------------------------------------------------------ IROF

/** Quantus evaluates in batches of 64 samples (`batch_size`); IROF's baseline statistics span such a batch. */
const QUANTUS_BATCH = 64;

/** Options of {@link irof} (Quantus `IROF`). */
export interface IrofOptions extends PerturbationOptions {
  /** Superpixels [N, H, W] with labels 0..S-1 per sample; default: {@link slic} of each input with
   * scikit-image's defaults, Quantus's `segmentation_method='slic'`. */
  segments?: ArrayLike<number>[];
}

/**
 * Iterative removal of features (Rieger & Hansen 2020): remove superpixels in order of decreasing mean
 * relevance, cumulatively, and record the output relative to the unperturbed one; the score is the area over
 * that curve (Quantus `IROF`; defaults: baseline `mean`, softmax, normalise; higher is better). As in Quantus,
 * the baseline statistic (e.g. the mean) is taken over the whole batch of up to 64 samples being perturbed, not
 * per sample.
 */
export async function irof(
  input: MetricInput,
  options: IrofOptions,
  run: RunOptions = {},
): Promise<MetricResult> {
  const metric = 'IROF';
  const p = await prepare(input, options, { normalise: true, abs: false });
  const { s } = p;
  const segs =
    options.segments ??
    s.x.map((x) => slic({ data: x, height: s.height, width: s.width, channels: s.channels }));
  if (segs.length !== s.n || segs.some((g) => g.length !== s.height * s.width)) {
    throw new CrpError(
      'invalid-shape',
      `${metric}: segments must be ${s.n} maps of ${s.height} x ${s.width} labels (one per input); got ` +
        `${segs.length} of sizes ${[...new Set(Array.from(segs, (g) => g.length))].join(', ')}`,
    );
  }
  const baseline = options.perturbBaseline ?? 'mean';
  checkBaseline(baseline, metric);
  const softmax = options.softmax ?? true;
  const random = randomOf(run);
  const full = p.a.values.map((a) => perFeature(a, p.a.channels, s.channels));
  const orders = segs.map((seg, i) => {
    const count = new Set(Array.from(seg)).size;
    const sum = new Float64Array(count);
    const size = new Float64Array(count);
    for (let q = 0; q < seg.length; q++) {
      const label = seg[q]!;
      if (!Number.isInteger(label) || label < 0 || label >= count) {
        throw new CrpError(
          'invalid-argument',
          `${metric}: segment labels of sample ${i} must be 0..${count - 1}`,
        );
      }
      for (let c = 0; c < s.channels; c++) sum[label] = sum[label]! + full[i]![q * s.channels + c]!;
      size[label] = size[label]! + s.channels;
    }
    return argsort(
      Float64Array.from(sum, (v, l) => v / size[l]!),
      true,
    );
  });
  // computed only if a group takes the batched path: the incremental forward scores them with the steps
  let y: Float64Array | undefined;
  const scores: number[] = [];
  const curves: number[][] = [];
  for (let from = 0; from < s.n; from += QUANTUS_BATCH) {
    const group = Array.from({ length: Math.min(QUANTUS_BATCH, s.n - from) }, (_, j) => from + j);
    const steps = Math.max(...group.map((i) => orders[i]!.length));
    const sub: Prepared = {
      s: { ...s, n: group.length, x: group.map((i) => s.x[i]!) },
      a: p.a,
      labels: group.map((i) => p.labels[i]!),
    };
    // removes step t's segment of sample j (cumulatively: `cur` holds the steps before)
    const remove = (t: number, j: number, cur: Float32Array, value: number, u: Float64Array | undefined) => {
      const seg = segs[group[j]!]!;
      const label = orders[group[j]!]![t];
      if (label === undefined) return cur;
      for (let q = 0; q < seg.length; q++) {
        if (seg[q] !== label) continue;
        for (let c = 0; c < s.channels; c++) {
          const f = q * s.channels + c;
          // 'uniform' without a batch axis: Quantus draws one value per element
          cur[f] = u === undefined ? value : Math.fround(u[j * s.features + f]!);
        }
      }
      return cur;
    };
    // one baseline for the whole group, from its arrays before each step: computed up front, steps in lockstep,
    // so that each sample's sequence can then run on its own (the incremental forward runs them one by one)
    const values: number[] = [];
    if (baseline !== 'uniform') {
      const state = group.map((i) => Float32Array.from(s.x[i]!));
      for (let t = 0; t < steps; t++) {
        values.push(groupBaseline(baseline, state));
        for (const [j, cur] of state.entries()) remove(t, j, cur, values[t]!, undefined);
      }
    }
    const out = await lockstepCurves(
      input,
      sub,
      steps,
      (j) => Float32Array.from(s.x[group[j]!]!),
      (t, j, cur, u) => remove(t, j, cur, values[t] ?? 0, u),
      () => (baseline === 'uniform' ? random.uniform(group.length * s.features, 0, 1) : undefined),
      softmax,
      run,
      metric,
      true,
      (j) => s.x[group[j]!]!,
    );
    if (out.original === undefined) y ??= await originalOutputs(input, p, softmax, run, metric);
    group.forEach((i, j) => {
      const real = orders[i]!.length;
      const original = out.original?.[j] ?? y![i]!;
      const curve = out.curves[j]!.map((v, t) => (t < real ? v / original : 0));
      curves.push(curve.slice(0, real));
      scores.push(real - auc(curve));
    });
  }
  return result(metric, scores, true, curves);
}

/** The baseline over a whole group of arrays (Quantus's unbatched `baseline_replacement_by_mask`). */
function groupBaseline(baseline: PerturbBaseline, arrays: Float32Array[]): number {
  const all = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    all.set(a, o);
    o += a.length;
  }
  return baselineValue(baseline, all, () => 0);
}

// ----------------------------------------------------------------- FaithfulnessCorrelation / Estimate

/** Options of {@link faithfulnessCorrelation} (Quantus `FaithfulnessCorrelation`). */
export interface FaithfulnessCorrelationOptions extends PerturbationOptions {
  /** Random subsets per sample; default 100. */
  nrRuns?: number;
  /** Features per subset; default 224. */
  subsetSize?: number;
  /** Correlation of relevance sums and output drops; default `pearson`. */
  similarity?: CorrelationName;
}

/** Output drops of perturbed copies of the original inputs, one perturbation per (step, sample). */
async function drops(
  input: MetricInput,
  p: Prepared,
  steps: number,
  indices: (t: number, i: number) => ArrayLike<number>,
  baseline: PerturbBaseline,
  draw: (t: number) => Float64Array | undefined,
  softmax: boolean,
  run: RunOptions,
  metric: string,
): Promise<{ y: Float64Array; drops: number[][] }> {
  const y = await originalOutputs(input, p, softmax, run, metric);
  const { curves: outputs } = await lockstepCurves(
    input,
    p,
    steps,
    () => new Float32Array(0),
    (t, i, _cur, u) => {
      const x = Float32Array.from(p.s.x[i]!);
      const value = baselineValue(baseline, p.s.x[i]!, () => u![i]!);
      for (const j of Array.from(indices(t, i))) x[j] = value;
      return x;
    },
    draw,
    softmax,
    run,
    metric,
  );
  return { y, drops: outputs.map((c, i) => c.map((v) => y[i]! - v)) };
}

/**
 * Faithfulness correlation (Bhatt et al. 2020): the correlation, over `nrRuns` random subsets of features,
 * between the relevance summed over the subset and the drop of the output when the subset is removed (Quantus
 * `FaithfulnessCorrelation`; defaults: 100 runs of 224 features, `pearson`, baseline `black`, logits,
 * normalise). Higher is better.
 */
export async function faithfulnessCorrelation(
  input: MetricInput,
  options: FaithfulnessCorrelationOptions = {},
  run: RunOptions = {},
): Promise<MetricResult> {
  const metric = 'FaithfulnessCorrelation';
  const p = await prepare(input, options, { normalise: true, abs: false });
  const runs = options.nrRuns ?? 100;
  const k = options.subsetSize ?? 224;
  checkInteger(metric, 'nrRuns', runs, 2);
  checkInteger(metric, 'subsetSize', k, 1, p.s.features);
  const baseline = options.perturbBaseline ?? 'black';
  checkBaseline(baseline, metric);
  const sim = correlation(options.similarity ?? 'pearson');
  const random = randomOf(run);
  const subsets: Int32Array[][] = [];
  const uniforms: (Float64Array | undefined)[] = [];
  for (let r = 0; r < runs; r++) {
    subsets.push(p.s.x.map(() => random.subset(p.s.features, k)));
    uniforms.push(drawUniform(baseline, random, p.s.n));
  }
  const { drops: d } = await drops(
    input,
    p,
    runs,
    (r, i) => subsets[r]![i]!,
    baseline,
    (r) => uniforms[r],
    options.softmax ?? false,
    run,
    metric,
  );
  const scores = p.a.values.map((a, i) => {
    const full = perFeature(a, p.a.channels, p.s.channels);
    const sums = subsets.map((sub) => sub[i]!.reduce((s, j) => s + full[j]!, 0));
    return sim(sums, d[i]!);
  });
  return result(metric, scores, true);
}

/** Options of {@link faithfulnessEstimate} (Quantus `FaithfulnessEstimate`). */
export interface FaithfulnessEstimateOptions extends PerturbationOptions {
  /** Features removed per step (H * W must be a multiple); default 1. */
  featuresInStep?: number;
  /** Default `pearson`. */
  similarity?: CorrelationName;
}

/**
 * Faithfulness estimate (Alvarez-Melis & Jaakkola 2018): remove the features in order of decreasing relevance,
 * `featuresInStep` at a time, each step from the original input, and correlate each step's relevance sum with
 * the drop of the output (Quantus `FaithfulnessEstimate`; defaults: 1 feature, `pearson`, baseline `black`,
 * logits, normalise). Higher is better.
 */
export async function faithfulnessEstimate(
  input: MetricInput,
  options: FaithfulnessEstimateOptions = {},
  run: RunOptions = {},
): Promise<MetricResult> {
  const metric = 'FaithfulnessEstimate';
  const p = await prepare(input, options, { normalise: true, abs: false });
  const k = options.featuresInStep ?? 1;
  checkFeaturesInStep(metric, k, p.s);
  const baseline = options.perturbBaseline ?? 'black';
  checkBaseline(baseline, metric);
  const sim = correlation(options.similarity ?? 'pearson');
  const random = randomOf(run);
  const full = p.a.values.map((a) => perFeature(a, p.a.channels, p.s.channels));
  const orders = full.map((a) => argsort(a, true));
  const steps = Math.ceil(p.s.features / k);
  const slice = (t: number, i: number) => orders[i]!.subarray(t * k, (t + 1) * k);
  const { drops: d } = await drops(
    input,
    p,
    steps,
    slice,
    baseline,
    () => drawUniform(baseline, random, p.s.n),
    options.softmax ?? false,
    run,
    metric,
  );
  const scores = full.map((a, i) => {
    const sums = Array.from({ length: steps }, (_, t) => slice(t, i).reduce((s, j) => s + a[j]!, 0));
    return sim(sums, d[i]!);
  });
  return result(metric, scores, true);
}

// --------------------------------------------------------------------------------- MonotonicityCorrelation

/** Options of {@link monotonicityCorrelation} (Quantus `MonotonicityCorrelation`). */
export interface MonotonicityCorrelationOptions extends PerturbationOptions {
  /** Perturbations per step (they differ only with a random baseline); default 100. */
  nrSamples?: number;
  /** Features per step (H * W must be a multiple); default 1. */
  featuresInStep?: number;
  /** Outputs below it count as 1 in the variance weight; default 1e-5. */
  eps?: number;
  /** Default `spearman`. */
  similarity?: CorrelationName;
}

/**
 * Monotonicity correlation (Nguyen & Martinez 2020): for the features in order of increasing relevance,
 * `featuresInStep` at a time, the mean squared change of the output over `nrSamples` perturbations (weighted by
 * 1 / output^2), correlated with the step's relevance sum (Quantus `MonotonicityCorrelation`; defaults: 100
 * samples, 1 feature, `spearman`, baseline `uniform`, softmax, normalise, abs). Higher is better.
 */
export async function monotonicityCorrelation(
  input: MetricInput,
  options: MonotonicityCorrelationOptions = {},
  run: RunOptions = {},
): Promise<MetricResult> {
  const metric = 'MonotonicityCorrelation';
  const p = await prepare(input, options, { normalise: true, abs: true });
  const k = options.featuresInStep ?? 1;
  checkFeaturesInStep(metric, k, p.s);
  const nrSamples = options.nrSamples ?? 100;
  checkInteger(metric, 'nrSamples', nrSamples, 1);
  const eps = options.eps ?? 1e-5;
  const baseline = options.perturbBaseline ?? 'uniform';
  checkBaseline(baseline, metric);
  const sim = correlation(options.similarity ?? 'spearman');
  const softmax = options.softmax ?? true;
  const random = randomOf(run);
  const full = p.a.values.map((a) => perFeature(a, p.a.channels, p.s.channels));
  const orders = full.map((a) => argsort(a, false));
  const steps = Math.ceil(p.s.features / k);
  const draws: (Float64Array | undefined)[] = [];
  for (let t = 0; t < steps * nrSamples; t++) draws.push(drawUniform(baseline, random, p.s.n));
  const slice = (t: number, i: number) =>
    orders[i]!.subarray(Math.floor(t / nrSamples) * k, (Math.floor(t / nrSamples) + 1) * k);
  const { y, drops: d } = await drops(
    input,
    p,
    steps * nrSamples,
    slice,
    baseline,
    (t) => draws[t],
    softmax,
    run,
    metric,
  );
  const scores = full.map((a, i) => {
    const inv = Math.abs(y[i]!) >= eps ? (1 / Math.abs(y[i]!)) ** 2 : 1;
    const vars: number[] = [];
    const atts: number[] = [];
    for (let t = 0; t < steps; t++) {
      let v = 0;
      for (let j = 0; j < nrSamples; j++) v += d[i]![t * nrSamples + j]! ** 2;
      vars.push((v / nrSamples) * inv);
      atts.push(slice(t * nrSamples, i).reduce((s, q) => s + a[q]!, 0));
    }
    return sim(atts, vars);
  });
  return result(metric, scores, true);
}
