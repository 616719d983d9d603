import { baselineValue, checkBaseline, type PerturbBaseline } from '../baselines.js';
import type { ExplanationProcessing } from '../normalise.js';
import { predictTargets } from '../predict.js';
import { prepare, randomOf } from '../prepare.js';
import { type MetricInput, type MetricResult, mean, type RunOptions } from '../types.js';

/** Options of {@link completeness} (Quantus `Completeness`). */
export interface CompletenessOptions extends ExplanationProcessing {
  /** The reference input: every feature replaced by this baseline; default `black`. */
  perturbBaseline?: PerturbBaseline;
  /** Applied to the output difference before the comparison (Quantus `output_func`); default the identity. */
  outputFunc?: (difference: number) => number;
  /** Default false (logits). */
  softmax?: boolean;
}

/**
 * Completeness (Sundararajan et al. 2017; conservation in LRP): whether the explanation sums to the difference
 * of the outputs for the input and for the baseline input, `sum(a) == f(x) - f(baseline)` (Quantus
 * `Completeness`; defaults: baseline `black`, normalise, no abs). Quantus compares with exact equality, so the
 * score is 1 only for a bit-exact match, which float32 sums almost never give; `details` holds both sides
 * (`relevanceSum`, `outputDifference`) for a tolerant comparison. Higher is better.
 */
export async function completeness(
  input: MetricInput,
  options: CompletenessOptions = {},
  run: RunOptions = {},
): Promise<MetricResult> {
  const metric = 'Completeness';
  const p = await prepare(input, options, { normalise: true, abs: false });
  const baseline = options.perturbBaseline ?? 'black';
  checkBaseline(baseline, metric);
  const uniform = baseline === 'uniform' ? randomOf(run).uniform(p.s.n, 0, 1) : undefined;
  const shape: [number, number, number] = [p.s.height, p.s.width, p.s.channels];
  const items = [
    ...p.s.x.map((x, i) => ({ input: x, label: p.labels[i]! })),
    ...p.s.x.map((x, i) => ({
      input: new Float32Array(x.length).fill(baselineValue(baseline, x, () => uniform![i]!)),
      label: p.labels[i]!,
    })),
  ];
  const out = await predictTargets(input.model, shape, items, items.length, {
    ...run,
    softmax: options.softmax ?? false,
    phase: metric,
    describe: (k) => (k < p.s.n ? `sample ${k}` : `the baseline input of sample ${k - p.s.n}`),
  });
  const outputFunc = options.outputFunc ?? ((d: number) => d);
  const relevanceSum = p.a.values.map((a) => a.reduce((s, v) => s + v, 0));
  const outputDifference = p.s.x.map((_, i) => outputFunc(Math.fround(out[i]! - out[p.s.n + i]!)));
  const scores = relevanceSum.map((r, i) => (Math.fround(r) === outputDifference[i] ? 1 : 0));
  return {
    metric,
    scores,
    aggregate: mean(scores),
    higherIsBetter: true,
    details: { relevanceSum, outputDifference },
  };
}
