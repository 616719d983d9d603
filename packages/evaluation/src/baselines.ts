import { CrpError } from '@crp/common';
import type { RandomSource } from './random.js';

/**
 * What a perturbation puts in place of the removed features (Quantus's `perturb_baseline`): `black` the
 * minimum and `white` the maximum of the input, `mean` its mean, `uniform` a random value in [0, 1) (one per
 * sample and step, as Quantus's batched perturbation draws it), or a number. The statistics are taken over the
 * array being perturbed at that moment, as in Quantus: for the cumulative metrics (PixelFlipping,
 * RegionPerturbation, Selectivity) that is the already perturbed input, so `mean` drifts from step to step.
 */
export type PerturbBaseline = 'black' | 'white' | 'mean' | 'uniform' | number;

/** The baselines by name, for messages and option parsing. */
export const PERTURB_BASELINES = ['black', 'white', 'mean', 'uniform'] as const;

/** Refuses an unknown baseline with the list of valid ones. */
export function checkBaseline(baseline: PerturbBaseline, metric: string): void {
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
  }
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
