import { CrpError } from '@crp/common';
import type { ExplanationProcessing } from '../normalise.js';
import { prepare } from '../prepare.js';
import { type MetricInput, type MetricResult, mean } from '../types.js';

/**
 * Sparseness (Chalasani et al. 2020): the Gini index of the explanation's values (after |.| and normalisation,
 * plus 1e-7 as in Quantus); 1 is maximally sparse (Quantus `Sparseness`; defaults: abs, normalise). Higher is
 * better.
 */
export async function sparseness(
  input: MetricInput,
  options: ExplanationProcessing = {},
): Promise<MetricResult> {
  const p = await prepare(input, options, { normalise: true, abs: true });
  const scores = p.a.values.map((raw) => {
    const a = Float64Array.from(raw, (v) => Math.fround(v + 1e-7)).sort();
    const n = a.length;
    let num = 0;
    let sum = 0;
    for (let j = 0; j < n; j++) {
      num += (2 * (j + 1) - n - 1) * a[j]!;
      sum += a[j]!;
    }
    return num / (n * sum);
  });
  return { metric: 'Sparseness', scores, aggregate: mean(scores), higherIsBetter: true };
}

/**
 * Complexity (Bhatt et al. 2020): the entropy of the explanation's values divided by their sum of |.|
 * (Quantus `Complexity`; defaults: abs, normalise). Lower is better.
 */
export async function complexity(
  input: MetricInput,
  options: ExplanationProcessing = {},
): Promise<MetricResult> {
  const p = await prepare(input, options, { normalise: true, abs: true });
  const scores = p.a.values.map((a) => {
    let total = 0;
    for (const v of a) total += Math.abs(v);
    let h = 0;
    for (const v of a) {
      const q = Math.fround(v / total);
      h -= q * Math.log(q + 1e-12);
    }
    return h;
  });
  return { metric: 'Complexity', scores, aggregate: mean(scores), higherIsBetter: false };
}

/** Options of {@link effectiveComplexity}. */
export interface EffectiveComplexityOptions extends ExplanationProcessing {
  /** Values above it count; default 1e-5. */
  eps?: number;
}

/**
 * Effective complexity (Nguyen & Martinez 2020): the number of explanation values above `eps` (Quantus
 * `EffectiveComplexity`; defaults: eps 1e-5, abs, normalise). Lower is better.
 */
export async function effectiveComplexity(
  input: MetricInput,
  options: EffectiveComplexityOptions = {},
): Promise<MetricResult> {
  const eps = options.eps ?? 1e-5;
  if (!Number.isFinite(eps))
    throw new CrpError('invalid-argument', `EffectiveComplexity: eps is ${eps}; give a finite number`);
  const p = await prepare(input, options, { normalise: true, abs: true });
  const scores = p.a.values.map((a) => a.reduce((n, v) => n + (v > eps ? 1 : 0), 0));
  return { metric: 'EffectiveComplexity', scores, aggregate: mean(scores), higherIsBetter: false };
}
