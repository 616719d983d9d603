import { CrpError } from '@crp/common';
import { type Attributions, checkLabels, readAttributions, readSamples, type Samples } from './data.js';
import { type ExplanationProcessing, processAttributions } from './normalise.js';
import { type RandomSource, seededRandom } from './random.js';
import type { MetricInput, RunOptions } from './types.js';

/** Inputs, labels and processed explanations of a metric call, read once. */
export interface Prepared {
  s: Samples;
  a: Attributions;
  labels: readonly number[];
}

/** Reads and checks a metric's input and applies the explanation processing with the metric's defaults. */
export async function prepare(
  input: MetricInput,
  processing: ExplanationProcessing,
  defaults: { normalise: boolean; abs: boolean },
): Promise<Prepared> {
  const s = await readSamples(input.x);
  checkLabels(input.labels, s.n);
  const raw = await readAttributions(input.explanation, s);
  return { s, a: processAttributions(raw, processing, defaults), labels: input.labels };
}

/** The run's random source. */
export function randomOf(run: RunOptions): RandomSource {
  return run.random ?? seededRandom(run.seed ?? 0);
}

/** Refuses an option that is not an integer in [min, max]. */
export function checkInteger(
  metric: string,
  name: string,
  value: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`;
    throw new CrpError('invalid-argument', `${metric}: ${name} is ${value}; give an integer ${range}`, {
      details: { metric, option: name, value },
    });
  }
}
