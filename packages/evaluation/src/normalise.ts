import type { Attributions } from './data.js';

/**
 * How explanations are normalised before a metric reads them (Quantus's `normalise_func`). Quantus normalises
 * over the whole batch it is called with (the maximum over every sample), not per sample; so does the toolkit,
 * which makes a sample's score depend on the batch where the metric is not scale-invariant.
 * - `max`: divide by the largest |value| (Quantus's default `normalise_by_max`);
 * - `negative`: positive values by the maximum, negative ones by |minimum| (`normalise_by_negative`).
 */
export type NormaliseName = 'max' | 'negative';

/** The explanation processing every Quantus metric applies first: normalise (if asked), then |.| (if asked). */
export interface ExplanationProcessing {
  /** Normalise the explanations (Quantus `normalise`; the metric's default). */
  normalise?: boolean;
  /** Which normalisation (Quantus `normalise_func`); default `max`. */
  normaliseFunc?: NormaliseName;
  /** Take the absolute value (Quantus `abs`; the metric's default). */
  abs?: boolean;
}

/** Applies {@link ExplanationProcessing} to a batch of explanations (new arrays, float32 as numpy computes). */
export function processAttributions(
  a: Attributions,
  options: ExplanationProcessing,
  defaults: { normalise: boolean; abs: boolean },
): Attributions {
  const normalise = options.normalise ?? defaults.normalise;
  const abs = options.abs ?? defaults.abs;
  // slice, not Float32Array.from: from goes through the iterator, element by element (MPRT processes 9 maps)
  let values: Float32Array[] = a.values.map((v) => v.slice());
  if (normalise) values = (options.normaliseFunc ?? 'max') === 'max' ? byMax(values) : byNegative(values);
  if (abs) for (const v of values) for (let i = 0; i < v.length; i++) v[i] = Math.abs(v[i]!);
  return { channels: a.channels, values };
}

function allZero(values: Float32Array[]): boolean {
  for (const v of values) for (let i = 0; i < v.length; i++) if (v[i] !== 0) return false;
  return true;
}

function byMax(values: Float32Array[]): Float32Array[] {
  if (allZero(values)) return values;
  let max = 0;
  for (const v of values) for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i]!));
  // a loop, not map's callback per value; the quotient is rounded to float32 on the store either way
  return values.map((v) => {
    const out = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = v[i]! / max;
    return out;
  });
}

function byNegative(values: Float32Array[]): Float32Array[] {
  if (allZero(values)) return values;
  let max = Number.NEGATIVE_INFINITY;
  let min = Number.POSITIVE_INFINITY;
  for (const v of values) {
    for (const x of v) {
      max = Math.max(max, x);
      min = Math.min(min, x);
    }
  }
  return values.map((v) =>
    v.map((x) => {
      if (min >= 0) return max !== 0 ? x / max : 0;
      if (max <= 0) return min !== 0 ? -x / min : 0;
      return x > 0 ? x / max : x < 0 ? -x / min : 0;
    }),
  );
}
