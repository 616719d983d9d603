import { CrpError } from '@crp/common';
import type { HybridOptions } from './search-hit.js';

/** One fused result: document number, fused score and its rank on each side. */
export interface FusedResult {
  readonly doc: number;
  readonly score: number;
  readonly denseRank?: number;
  readonly lexicalRank?: number;
}

/** Checks hybrid options and fills in defaults. */
export function resolveHybrid(options: HybridOptions = {}): Required<HybridOptions> {
  const denseWeight = options.denseWeight ?? 0.3;
  if (!(denseWeight >= 0 && denseWeight <= 1)) {
    throw new CrpError('invalid-argument', `denseWeight must be in [0, 1]; got ${denseWeight}.`);
  }
  const fusion = options.fusion ?? 'weighted';
  if (fusion !== 'rrf' && fusion !== 'weighted') {
    throw new CrpError('invalid-argument', `fusion must be "rrf" or "weighted"; got "${String(fusion)}".`);
  }
  const candidates = options.candidates ?? 50;
  if (!Number.isInteger(candidates) || candidates < 1) {
    throw new CrpError('invalid-argument', `candidates must be a positive integer; got ${candidates}.`);
  }
  const rrfK = options.rrfK ?? 60;
  if (!(rrfK > 0)) throw new CrpError('invalid-argument', `rrfK must be positive; got ${rrfK}.`);
  const rerank = options.rerank ?? 20;
  if (!Number.isInteger(rerank) || rerank < 0) {
    throw new CrpError('invalid-argument', `rerank must be a non-negative integer; got ${rerank}.`);
  }
  const answerRerank = options.answerRerank ?? true;
  return { fusion, denseWeight, candidates, rrfK, rerank, answerRerank };
}

/** 1-based ranks of the documents by score (highest first); documents scoring `<= floor` get no rank. */
function ranks(scores: ArrayLike<number>, floor: number): Int32Array {
  const order = Array.from({ length: scores.length }, (_, i) => i)
    .filter((i) => scores[i]! > floor)
    .sort((a, b) => scores[b]! - scores[a]! || a - b);
  const r = new Int32Array(scores.length);
  order.forEach((doc, i) => {
    r[doc] = i + 1;
  });
  return r;
}

/**
 * The rank {@link ranks} gives one document (0 when it scores `<= floor`), by counting the documents before it:
 * for the few results this is a pass over the scores instead of sorting them all.
 */
function rankOf(scores: ArrayLike<number>, doc: number, floor: number): number {
  const s = scores[doc]!;
  if (!(s > floor)) return 0;
  let before = 0;
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i]!;
    if (v > s || (v === s && i < doc)) before++;
  }
  return before + 1;
}

/**
 * The `k` documents with the highest positive scores, best first, ties by document number: the first `k` of a
 * full sort, kept in a short sorted list instead.
 */
function bestPositive(scores: ArrayLike<number>, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i]!;
    if (!(v > 0)) continue;
    // a later document ties below an earlier one, so it enters only when strictly better than the last
    if (best.length === k && !(v > scores[best[k - 1]!]!)) continue;
    let at = best.length;
    while (at > 0 && v > scores[best[at - 1]!]!) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/**
 * Fuses the dense and lexical scores of every document into one ranking and returns its `topK` best.
 *
 * Weighted fusion compares like with like: the lexical score is divided by the best lexical score, and the
 * dense score counts by how far a chunk stands out from the corpus (`cos - mean`, divided by the best such
 * lift, negatives 0), because raw cosines of sentence encoders sit in a narrow band above 0 for any text.
 * `dense` may hold `NaN` for documents without a dense score (an external store returned only its best);
 * they count as the mean. With `sides` (0 or 1 per document: scored against the question itself or against its
 * gloss in the other language), each side's lift is taken over its own mean.
 */
export function fuseScores(
  dense: ArrayLike<number>,
  lexical: ArrayLike<number>,
  options: Required<HybridOptions>,
  topK: number,
  sides?: ArrayLike<number>,
): FusedResult[] {
  const n = lexical.length;
  // the mean of each side (0, 1): scores against a question's gloss sit at another level than against itself
  const sum = [0, 0];
  const known = [0, 0];
  for (let i = 0; i < n; i++) {
    const d = dense[i]!;
    if (!Number.isNaN(d)) {
      const g = sides?.[i] ?? 0;
      sum[g]! += d;
      known[g]!++;
    }
  }
  const mean = sum.map((x, g) => (known[g] ? x / known[g]! : 0));
  // and its spread: a side's lift counts in its own standard deviations (one side: the same ranking as before)
  const square = [0, 0];
  for (let i = 0; i < n; i++) {
    const d = dense[i]!;
    const g = sides?.[i] ?? 0;
    if (!Number.isNaN(d)) square[g]! += (d - mean[g]!) ** 2;
  }
  const spread = square.map((x, g) => (known[g] && x > 0 ? Math.sqrt(x / known[g]!) : 1));
  const lift = new Float64Array(n);
  let maxLift = 0;
  let maxLex = 0;
  for (let i = 0; i < n; i++) {
    const d = dense[i]!;
    const g = sides?.[i] ?? 0;
    lift[i] = Number.isNaN(d) ? 0 : Math.max(0, (d - mean[g]!) / spread[g]!);
    if (lift[i]! > maxLift) maxLift = lift[i]!;
    if (lexical[i]! > maxLex) maxLex = lexical[i]!;
  }
  const wd = options.denseWeight;
  const wl = 1 - wd;
  const fused = new Float64Array(n);
  // reciprocal rank fusion needs every rank; the weighted sum only those of its results
  const denseRanks = options.fusion === 'rrf' ? ranks(lift, 0) : undefined;
  const lexRanks = options.fusion === 'rrf' ? ranks(lexical, 0) : undefined;
  for (let i = 0; i < n; i++) {
    if (denseRanks && lexRanks) {
      const dr = denseRanks[i]!;
      const lr = lexRanks[i]!;
      fused[i] =
        (dr > 0 && dr <= options.candidates ? wd / (options.rrfK + dr) : 0) +
        (lr > 0 && lr <= options.candidates ? wl / (options.rrfK + lr) : 0);
    } else {
      fused[i] =
        (maxLift > 0 ? (wd * lift[i]!) / maxLift : 0) + (maxLex > 0 ? (wl * lexical[i]!) / maxLex : 0);
    }
  }
  return bestPositive(fused, topK).map((doc) => {
    const dr = denseRanks ? denseRanks[doc]! : rankOf(lift, doc, 0);
    const lr = lexRanks ? lexRanks[doc]! : rankOf(lexical, doc, 0);
    return {
      doc,
      score: fused[doc]!,
      ...(dr > 0 ? { denseRank: dr } : {}),
      ...(lr > 0 ? { lexicalRank: lr } : {}),
    };
  });
}
