import { CrpError } from '@crp/common';
import { readMasks } from '../data.js';
import type { ExplanationProcessing } from '../normalise.js';
import { argsort } from '../numeric.js';
import { checkInteger, prepare } from '../prepare.js';
import { type MetricInput, type MetricResult, mean } from '../types.js';

/** Quantus evaluates in batches of 64 samples; AttributionLocalisation's `weighted` reads that batch's size. */
const QUANTUS_BATCH = 64;

/** Explanation values and the mask, both per explanation value (a mask pixel repeated over the explanation's
 * channels). */
async function withMasks(
  input: MetricInput,
  processing: ExplanationProcessing,
  defaults: { normalise: boolean; abs: boolean },
  metric: string,
) {
  if (input.mask === undefined) {
    throw new CrpError('invalid-argument', `${metric} needs region masks (mask: [N, H, W]); none were given`);
  }
  const p = await prepare(input, processing, defaults);
  const masks = (await readMasks(input.mask, p.s)).map((m) => {
    const c = p.a.channels;
    if (c === 1) return m;
    const out = new Uint8Array(m.length * c);
    for (let q = 0; q < m.length; q++) out.fill(m[q]!, q * c, (q + 1) * c);
    return out;
  });
  return { p, masks };
}

/** A localisation metric's result: one score per sample from its explanation values and mask. */
function scoreMasks(
  metric: string,
  { p, masks }: Awaited<ReturnType<typeof withMasks>>,
  score: (a: Float32Array, m: Uint8Array, i: number) => number,
): MetricResult {
  const scores = p.a.values.map((a, i) => score(a, masks[i]!, i));
  return { metric, scores, aggregate: mean(scores), higherIsBetter: true };
}

const count = (m: Uint8Array) => m.reduce((s, v) => s + v, 0);

/** The relevance inside the mask and in total, summed in index order. */
function massInside(a: ArrayLike<number>, m: Uint8Array): { inside: number; total: number } {
  let inside = 0;
  let total = 0;
  for (let j = 0; j < a.length; j++) {
    total += a[j]!;
    if (m[j]) inside += a[j]!;
  }
  return { inside, total };
}

/** How many of the k highest-relevance values (ties in argsort's order) lie inside the mask. */
function topHits(a: ArrayLike<number>, m: Uint8Array, k: number): number {
  const order = argsort(a, true);
  let hits = 0;
  for (let j = 0; j < k; j++) hits += m[order[j]!]!;
  return hits;
}

/**
 * Pointing game (Zhang et al. 2018): 1 when the highest relevance (any of its ties) lies inside the mask, else 0
 * (Quantus `PointingGame`; defaults: normalise, no abs). Quantus stores the hits in a boolean array, so its
 * NaN for an empty mask becomes 1 (True) and its `weighted` variant has no effect; the toolkit follows the
 * numbers (an empty mask scores 1) and offers no `weighted` option.
 */
export async function pointingGame(
  input: MetricInput,
  options: ExplanationProcessing = {},
): Promise<MetricResult> {
  const read = await withMasks(input, options, { normalise: true, abs: false }, 'PointingGame');
  return scoreMasks('PointingGame', read, (a, m) => {
    if (count(m) === 0) return 1;
    let max = Number.NEGATIVE_INFINITY;
    for (const v of a) max = Math.max(max, v);
    return a.some((v, j) => v === max && m[j] === 1) ? 1 : 0;
  });
}

/**
 * Relevance mass accuracy (Arras et al. 2022): the share of the total relevance that lies inside the mask
 * (Quantus `RelevanceMassAccuracy`; defaults: normalise, no abs; NaN for an empty mask).
 */
export async function relevanceMassAccuracy(
  input: MetricInput,
  options: ExplanationProcessing = {},
): Promise<MetricResult> {
  const metric = 'RelevanceMassAccuracy';
  const read = await withMasks(input, options, { normalise: true, abs: false }, metric);
  return scoreMasks(metric, read, (a, m) => {
    if (count(m) === 0) return Number.NaN;
    const { inside, total } = massInside(a, m);
    return inside / total;
  });
}

/**
 * Relevance rank accuracy (Arras et al. 2022): of the K highest-relevance values, K the mask's size, the share
 * inside the mask (Quantus `RelevanceRankAccuracy`; defaults: normalise, no abs; NaN for an empty mask).
 */
export async function relevanceRankAccuracy(
  input: MetricInput,
  options: ExplanationProcessing = {},
): Promise<MetricResult> {
  const metric = 'RelevanceRankAccuracy';
  const read = await withMasks(input, options, { normalise: true, abs: false }, metric);
  return scoreMasks(metric, read, (a, m) => {
    const k = count(m);
    return k === 0 ? Number.NaN : topHits(a, m, k) / k;
  });
}

/** Options of {@link topKIntersection} (Quantus `TopKIntersection`). */
export interface TopKIntersectionOptions extends ExplanationProcessing {
  /** Number of highest-relevance values; default 1000. */
  k?: number;
  /** Multiply by (values / mask size), the concept influence of Kim et al.; default false. */
  conceptInfluence?: boolean;
}

/**
 * Top-K intersection (Theiner et al. 2021): the share of the `k` highest-relevance values that lie inside the
 * mask (Quantus `TopKIntersection`; defaults: k 1000, normalise, no abs; NaN for an empty mask).
 */
export async function topKIntersection(
  input: MetricInput,
  options: TopKIntersectionOptions = {},
): Promise<MetricResult> {
  const read = await withMasks(input, options, { normalise: true, abs: false }, 'TopKIntersection');
  const k = options.k ?? 1000;
  checkInteger('TopKIntersection', 'k', k, 1, read.p.a.values[0]!.length);
  return scoreMasks('TopKIntersection', read, (a, m) => {
    const size = count(m);
    if (size === 0) return Number.NaN;
    const share = topHits(a, m, k) / k;
    return options.conceptInfluence ? (share * a.length) / size : share;
  });
}

/** Options of {@link attributionLocalisation} (Quantus `AttributionLocalisation`). */
export interface AttributionLocalisationOptions extends ExplanationProcessing {
  /** Multiply by the mask's share of the batch's size (see the defect below); default false. */
  weighted?: boolean;
  /** Clip negative relevance to 0 first; default false. */
  positiveAttributions?: boolean;
}

/**
 * Attribution localisation (Kohlbrenner et al. 2020): relevance inside the mask over total relevance (+1e-9);
 * NaN for an empty mask or a ratio above 1 (Quantus `AttributionLocalisation`; defaults: abs, normalise).
 * `weighted` follows a Quantus defect: the mask's size is divided by `x_batch[2:].size`, the size of the batch
 * without its first two samples (within Quantus's batches of 64), not by the image's size.
 */
export async function attributionLocalisation(
  input: MetricInput,
  options: AttributionLocalisationOptions = {},
): Promise<MetricResult> {
  const metric = 'AttributionLocalisation';
  const read = await withMasks(input, options, { normalise: true, abs: true }, metric);
  const { p } = read;
  return scoreMasks(metric, read, (raw, m, i) => {
    const a = options.positiveAttributions ? raw.map((v) => Math.max(v, 0)) : raw;
    const { inside, total } = massInside(a, m);
    const size = count(m);
    let ratio = inside / (total + 1e-9);
    if (size === 0 || ratio > 1) ratio = Number.NaN;
    if (options.weighted) {
      const batch = Math.min(QUANTUS_BATCH, p.s.n - Math.floor(i / QUANTUS_BATCH) * QUANTUS_BATCH);
      ratio *= size / (Math.max(batch - 2, 0) * p.s.features);
    }
    return ratio;
  });
}
