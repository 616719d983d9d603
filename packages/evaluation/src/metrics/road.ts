import { CrpError } from '@crp/common';
import type { Samples } from '../data.js';
import type { ExplanationProcessing } from '../normalise.js';
import { argsort, auc } from '../numeric.js';
import { predictTargets, type ScoredInput } from '../predict.js';
import { prepare, randomOf } from '../prepare.js';
import type { RandomSource } from '../random.js';
import { type MetricInput, type MetricResult, mean, type RunOptions } from '../types.js';

/** Options of {@link road} (Quantus `ROAD`). */
export interface RoadOptions extends ExplanationProcessing {
  /** Percentages of the pixels imputed, each from the original image; default 1, 3, ..., 99 (Quantus). */
  percentages?: number[];
  /** Standard deviation of the Gaussian noise added to the imputed values; default 0.01. */
  noise?: number;
  /** Apply the softmax before the argmax (Quantus `softmax`, default true; it does not change the argmax). */
  softmax?: boolean;
}

/** Quantus's ROAD percentages: 1, 3, ..., 99. */
const DEFAULT_PERCENTAGES = Array.from({ length: 50 }, (_, i) => 1 + 2 * i);

// the neighbours of a pixel and their weights (Rong et al.'s noisy linear imputation: edges 1/6, corners 1/12)
const NEIGHBOURS: readonly (readonly [number, number, number])[] = [
  [1, 1, 1 / 12],
  [0, 1, 1 / 6],
  [-1, 1, 1 / 12],
  [1, -1, 1 / 12],
  [0, -1, 1 / 6],
  [-1, -1, 1 / 12],
  [1, 0, 1 / 6],
  [-1, 0, 1 / 6],
];

/**
 * Noisy linear imputation (Rong et al. 2022, Quantus's `noisy_linear_imputation`): the pixels `removed` of one
 * HWC image get the values that make each of them the weighted mean of its 8 neighbours (a sparse linear system,
 * one per channel, with the kept pixels as boundary values), plus `noise` times a standard normal draw
 * (`normal[c * k + j]` for channel c of the j-th removed pixel, numpy's order). Returns a new array.
 */
export function noisyLinearImputation(
  x: Float32Array,
  height: number,
  width: number,
  channels: number,
  removed: ArrayLike<number>,
  noise: number,
  normal: Float64Array | undefined,
): Float32Array {
  const out = Float32Array.from(x);
  const k = removed.length;
  if (k === 0) return out;
  // unknowns in pixel order: a neighbour is at most width + 1 pixels away, so the system is banded
  const pixels = Int32Array.from(removed).sort();
  const variable = new Int32Array(height * width).fill(-1);
  pixels.forEach((q, v) => {
    variable[q] = v;
  });
  const band = width + 1;
  const stride = 2 * band + 1;
  const a = new Float64Array(k * stride); // a[v * stride + band + (u - v)] = A[v][u]
  const b = new Float64Array(k * channels);
  for (let v = 0; v < k; v++) {
    const q = pixels[v]!;
    const y = Math.floor(q / width);
    const xx = q % width;
    let diagonal = 1;
    for (const [dy, dx, weight] of NEIGHBOURS) {
      const ny = y + dy;
      const nx = xx + dx;
      if (ny < 0 || nx < 0 || ny >= height || nx >= width) {
        diagonal -= weight;
        continue;
      }
      const n = ny * width + nx;
      const u = variable[n]!;
      if (u < 0) {
        for (let c = 0; c < channels; c++)
          b[v * channels + c] = b[v * channels + c]! - weight * x[n * channels + c]!;
      } else {
        a[v * stride + band + (u - v)] = weight;
      }
    }
    a[v * stride + band] = -diagonal;
  }
  solveBanded(a, b, k, band, channels);
  // Quantus writes the solution in its own order of the removed pixels (relevance order) and adds the noise so
  for (let j = 0; j < k; j++) {
    const q = removed[j]!;
    const v = variable[q]!;
    for (let c = 0; c < channels; c++) {
      const e = normal === undefined ? 0 : normal[c * k + j]!;
      out[q * channels + c] = b[v * channels + c]! + noise * e;
    }
  }
  return out;
}

/** Gaussian elimination without pivoting on a banded matrix (the imputation's matrix is symmetric and diagonally
 * dominant, so no pivot is needed), in place; `b` holds `m` right-hand sides per row and ends as the solution. */
function solveBanded(a: Float64Array, b: Float64Array, n: number, band: number, m: number): void {
  const stride = 2 * band + 1;
  const at = (r: number, c: number) => r * stride + band + (c - r);
  for (let p = 0; p < n; p++) {
    const pivot = a[at(p, p)]!;
    for (let r = p + 1; r <= Math.min(p + band, n - 1); r++) {
      const f = a[at(r, p)]! / pivot;
      if (f === 0) continue;
      for (let c = p; c <= Math.min(p + band, n - 1); c++) a[at(r, c)] = a[at(r, c)]! - f * a[at(p, c)]!;
      for (let j = 0; j < m; j++) b[r * m + j] = b[r * m + j]! - f * b[p * m + j]!;
    }
  }
  for (let p = n - 1; p >= 0; p--) {
    for (let j = 0; j < m; j++) {
      let s = b[p * m + j]!;
      for (let c = p + 1; c <= Math.min(p + band, n - 1); c++) s -= a[at(p, c)]! * b[c * m + j]!;
      b[p * m + j] = s / a[at(p, p)]!;
    }
  }
}

/** The pixel order of ROAD: by the explanation's value per pixel (summed over its channels), most relevant first. */
function pixelOrder(values: Float32Array, channels: number, s: Samples): Int32Array {
  const perPixel = new Float64Array(s.height * s.width);
  for (let q = 0; q < perPixel.length; q++) {
    for (let c = 0; c < channels; c++) perPixel[q] = perPixel[q]! + values[q * channels + c]!;
  }
  return argsort(perPixel, true);
}

/**
 * ROAD, RemOve And Debias (Rong et al. 2022): for each percentage p, replace the p% most relevant pixels of the
 * original image by noisy linear imputation ({@link noisyLinearImputation}), which removes the information
 * without the sharp-edged, out-of-distribution holes a constant baseline leaves, and record whether the model
 * still predicts the class (Quantus `ROAD`; defaults: percentages 1, 3, ..., 99, noise 0.01, normalise). Each
 * sample's curve holds 1 (still predicted) or 0 per percentage; the score is the mean of that curve, and the
 * area under it is in `details.auc`. Quantus returns the accuracy over the samples per percentage, i.e. the mean
 * of the curves at each percentage. Lower is better: the explanation found what the model needs.
 *
 * Quantus's imputation indexes H * W pixels with indices of the C * H * W features, so Quantus runs ROAD only on
 * one-channel inputs; here the pixels are ranked by the explanation summed over its channels and all channels of
 * a removed pixel are imputed, which is Quantus's computation for one channel.
 */
export async function road(
  input: MetricInput,
  options: RoadOptions = {},
  run: RunOptions = {},
): Promise<MetricResult> {
  const metric = 'ROAD';
  const p = await prepare(input, options, { normalise: true, abs: false });
  const { s } = p;
  const percentages = options.percentages ?? DEFAULT_PERCENTAGES;
  if (percentages.length === 0 || percentages.some((q) => !(q >= 0 && q <= 100))) {
    throw new CrpError(
      'invalid-argument',
      `${metric}: percentages must be a non-empty list of numbers in 0..100; got [${percentages.join(', ')}]`,
    );
  }
  const noise = options.noise ?? 0.01;
  if (!(Number.isFinite(noise) && noise >= 0)) {
    throw new CrpError('invalid-value', `${metric}: noise must be a finite number >= 0; got ${noise}`);
  }
  const random: RandomSource = randomOf(run);
  const orders = p.a.values.map((a) => pixelOrder(a, p.a.channels, s));
  // Quantus: int(a_size * p / 100) pixels, a_size the explanation's size per sample (H * W for a heatmap)
  const aSize = s.height * s.width * p.a.channels;
  const counts = percentages.map((q) => Math.min(Math.trunc((aSize * q) / 100), s.height * s.width));
  function* inputs(): Generator<ScoredInput> {
    for (const k of counts) {
      for (let i = 0; i < s.n; i++) {
        const removed = orders[i]!.subarray(0, k);
        const draws = noise === 0 || k === 0 ? undefined : random.normal(k * s.channels);
        const x = noisyLinearImputation(s.x[i]!, s.height, s.width, s.channels, removed, noise, draws);
        yield { input: x, label: p.labels[i]! };
      }
    }
  }
  const hits = await predictTargets(
    input.model,
    [s.height, s.width, s.channels],
    inputs(),
    counts.length * s.n,
    {
      ...run,
      softmax: options.softmax ?? true,
      correct: true,
      phase: metric,
      describe: (j) => `sample ${j % s.n} with ${percentages[Math.floor(j / s.n)]}% of its pixels imputed`,
    },
  );
  const curves = Array.from({ length: s.n }, (_, i) => counts.map((_, t) => hits[t * s.n + i]!));
  const scores = curves.map((c) => mean(c));
  return {
    metric,
    scores,
    curves,
    details: { auc: curves.map(auc) },
    aggregate: mean(scores),
    higherIsBetter: false,
  };
}
