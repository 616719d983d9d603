import { RagError } from '../errors.js';
import type { HybridOptions } from './search-hit.js';

/** One fused result: document number, fused score and the two ranked inputs. */
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
    throw new RagError('INVALID_ARGUMENT', `denseWeight must be in [0, 1]; got ${denseWeight}.`);
  }
  const fusion = options.fusion ?? 'weighted';
  if (fusion !== 'rrf' && fusion !== 'weighted') {
    throw new RagError('INVALID_ARGUMENT', `fusion must be "rrf" or "weighted"; got "${String(fusion)}".`);
  }
  const candidates = options.candidates ?? 50;
  if (!Number.isInteger(candidates) || candidates < 1) {
    throw new RagError('INVALID_ARGUMENT', `candidates must be a positive integer; got ${candidates}.`);
  }
  return { fusion, denseWeight, candidates, rrfK: options.rrfK ?? 60 };
}

/**
 * Fuses two ranked lists (best first) into one. RRF: `w/(k+rank)` summed over the lists; weighted: scores
 * divided by the best score of their list, then weighted and summed.
 */
export function fuseRankings(
  dense: readonly { doc: number; score: number }[],
  lexical: readonly { doc: number; score: number }[],
  options: Required<HybridOptions>,
): FusedResult[] {
  const acc = new Map<number, { score: number; denseRank?: number; lexicalRank?: number }>();
  const wd = options.denseWeight;
  const wl = 1 - wd;
  const maxD = dense[0]?.score ?? 1;
  const minD = dense[dense.length - 1]?.score ?? 0;
  const maxL = lexical[0]?.score || 1;
  dense.forEach((h, i) => {
    const v =
      options.fusion === 'rrf' ? wd / (options.rrfK + i + 1) : (wd * (h.score - minD)) / (maxD - minD || 1);
    acc.set(h.doc, { score: v, denseRank: i + 1 });
  });
  lexical.forEach((h, i) => {
    const v = options.fusion === 'rrf' ? wl / (options.rrfK + i + 1) : (wl * h.score) / maxL;
    const e = acc.get(h.doc);
    if (e) {
      e.score += v;
      e.lexicalRank = i + 1;
    } else acc.set(h.doc, { score: v, lexicalRank: i + 1 });
  });
  return [...acc.entries()]
    .map(([doc, e]) => ({ doc, ...e }))
    .sort((a, b) => b.score - a.score || a.doc - b.doc);
}
