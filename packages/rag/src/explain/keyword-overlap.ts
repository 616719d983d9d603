import type { Bm25Index } from '../retrieval/bm25.js';
import type { AnalyzedQuery } from '../text/query.js';

/** A question word that a retrieved chunk shares (itself or a translation), and what it contributed. */
export interface SharedKeyword {
  /** The word as written in the question. */
  readonly word: string;
  /** The index terms of the chunk that matched (`de:regel`: language and stem). */
  readonly stems: readonly string[];
  /** True when only a dictionary translation matched (an English word found in German text, or the reverse). */
  readonly translated: boolean;
  /** BM25 contribution of the word to the chunk's lexical score. */
  readonly weight: number;
  readonly idf: number;
  /** Weighted occurrences in the chunk (title and section included). */
  readonly count: number;
}

/** Shared words of the question and one retrieved chunk. */
export interface KeywordOverlap {
  /** Source number (1-based). */
  readonly source: number;
  readonly chunkId: string;
  /** Sorted by weight, largest first. */
  readonly shared: readonly SharedKeyword[];
  /** Question words (content words) the chunk does not contain in any form. */
  readonly missing: readonly string[];
}

/** Keyword overlap of the analysed question with the chunk at position `doc` of the BM25 index. */
export function keywordOverlap(
  query: AnalyzedQuery,
  doc: number,
  source: number,
  chunkId: string,
  bm25: Bm25Index,
): KeywordOverlap {
  const shared: SharedKeyword[] = [];
  const missing: string[] = [];
  for (const c of query.concepts) {
    const m = doc >= 0 ? bm25.conceptMatch(c, doc) : undefined;
    if (!m) {
      if (!missing.includes(c.word)) missing.push(c.word);
      continue;
    }
    const translated = m.matched.every((t) => c.terms.find((x) => x.term === t)?.via === 'translation');
    shared.push({ word: c.word, stems: m.matched, translated, weight: m.score, idf: m.idf, count: m.tf });
  }
  return { source, chunkId, shared: shared.sort((a, b) => b.weight - a.weight), missing };
}
