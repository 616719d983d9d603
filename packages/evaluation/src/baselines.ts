import { CrpError } from '@crp/common';
import type { RandomSource } from './random.js';

/**
 * What a perturbation puts in place of the removed features (Quantus's `perturb_baseline`): `black` the
 * minimum and `white` the maximum of the input, `mean` its mean, `uniform` a random value in [0, 1) (one per
 * sample and step, as Quantus's batched perturbation draws it), `blur` a blurred copy of the input (Quantus's
 * `baseline_replacement_by_blur`, see {@link blurAt}; PixelFlipping, RegionPerturbation and Selectivity only), or
 * a number. The statistics are taken over the array being perturbed at that moment, as in Quantus: for the
 * cumulative metrics (PixelFlipping, RegionPerturbation, Selectivity) that is the already perturbed input, so
 * `mean` drifts from step to step.
 */
export type PerturbBaseline = 'black' | 'white' | 'mean' | 'uniform' | 'blur' | number;

/** The baselines by name, for messages and option parsing. */
export const PERTURB_BASELINES = ['black', 'white', 'mean', 'uniform', 'blur'] as const;

/** Quantus's default `blur_kernel_size`. */
export const BLUR_KERNEL_SIZE = 15;

/** The metrics that take the `blur` baseline: those that perturb whole pixels of an image in place. */
const BLUR_METRICS = ['PixelFlipping', 'RegionPerturbation', 'Selectivity'];

/** Refuses an unknown baseline with the list of valid ones. */
export function checkBaseline(baseline: PerturbBaseline, metric: string, blurKernelSize?: number): void {
  if (baseline === 'blur' && !BLUR_METRICS.includes(metric)) {
    throw new CrpError(
      'invalid-argument',
      `${metric}: perturbBaseline 'blur' is available for ${BLUR_METRICS.join(', ')}; valid here: ` +
        `${PERTURB_BASELINES.filter((b) => b !== 'blur').join(', ')} or a number`,
    );
  }
  if (blurKernelSize !== undefined && !(Number.isInteger(blurKernelSize) && blurKernelSize >= 1)) {
    throw new CrpError(
      'invalid-value',
      `${metric}: blurKernelSize must be an integer >= 1; got ${blurKernelSize}`,
    );
  }
  if (typeof baseline === 'number') {
    if (!Number.isFinite(baseline)) {
      throw new CrpError('invalid-value', `${metric}: perturbBaseline ${baseline} is not a finite number`);
    }
    return;
  }
  if (!(PERTURB_BASELINES as readonly string[]).includes(baseline)) {
    throw new CrpError(
      'invalid-argument',
      `${metric}: unknown perturbBaseline '${String(baseline)}'; valid: ${PERTURB_BASELINES.join(', ')} or a number`,
    );
  }
}

/** The baseline value of one sample's array (float32, as numpy computes on float32 arrays). */
export function baselineValue(baseline: PerturbBaseline, arr: Float32Array, uniform: () => number): number {
  if (typeof baseline === 'number') return Math.fround(baseline);
  switch (baseline) {
    case 'black': {
      let m = Number.POSITIVE_INFINITY;
      for (const v of arr) if (v < m) m = v;
      return m;
    }
    case 'white': {
      let m = Number.NEGATIVE_INFINITY;
      for (const v of arr) if (v > m) m = v;
      return m;
    }
    case 'mean': {
      let s = 0;
      for (const v of arr) s += v;
      return Math.fround(s / arr.length);
    }
    case 'uniform':
      return Math.fround(uniform());
    case 'blur':
      throw new Error('the blur baseline has no single value; use blurAt');
  }
}

/**
 * Replaces the features `indices` of one HWC array (in place) by their blurred values: the mean over a k x k
 * window of the same channel (zero padding, always divided by k^2; for an even k the window reaches k/2 before
 * and k/2 - 1 after), read from the array as it was before this call — Quantus's `baseline_replacement_by_blur`
 * with a box kernel of `blur_kernel_size` over the image axes.
 */
export function blurAt(
  arr: Float32Array,
  indices: ArrayLike<number>,
  height: number,
  width: number,
  channels: number,
  kernel: number,
): void {
  const before = Math.floor(kernel / 2);
  const weight = Math.fround(1 / (kernel * kernel));
  const values = new Float32Array(indices.length);
  for (let j = 0; j < indices.length; j++) {
    const f = indices[j]!;
    const c = f % channels;
    const q = (f - c) / channels;
    const y = Math.floor(q / width);
    const x = q % width;
    let sum = 0;
    for (let yy = Math.max(y - before, 0); yy < Math.min(y - before + kernel, height); yy++) {
      for (let xx = Math.max(x - before, 0); xx < Math.min(x - before + kernel, width); xx++) {
        sum += arr[(yy * width + xx) * channels + c]! * weight;
      }
    }
    values[j] = sum;
  }
  for (let j = 0; j < indices.length; j++) arr[indices[j]!] = values[j]!;
}

/** The `uniform` baseline values of one perturbation call over a batch: one per sample (Quantus draws
 * `uniform(0, 1, size=batch)`), or none when the baseline is not random. */
export function drawUniform(
  baseline: PerturbBaseline,
  random: RandomSource,
  n: number,
): Float64Array | undefined {
  return baseline === 'uniform' ? random.uniform(n, 0, 1) : undefined;
}
