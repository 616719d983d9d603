import type { Bm25Index } from '../retrieval/bm25.js';
import { tokenize } from '../text/analyzer.js';
import { detectLanguage } from '../text/language.js';

/** A query term that a retrieved chunk shares, and what it contributed. */
export interface SharedKeyword {
  /** The word as written in the question. */
  readonly word: string;
  /** The stems that matched. */
  readonly stems: readonly string[];
  /** BM25 contribution of the term to the chunk's lexical score. */
  readonly weight: number;
  readonly idf: number;
  /** Occurrences in the chunk (title and section included). */
  readonly count: number;
}

/** Shared terms of the question and one retrieved chunk. */
export interface KeywordOverlap {
  /** Source number (1-based). */
  readonly source: number;
  readonly chunkId: string;
  /** Sorted by weight, largest first. */
  readonly shared: readonly SharedKeyword[];
  /** Question words (content words) the chunk does not contain. */
  readonly missing: readonly string[];
}

/** Keyword overlap of the question with the chunk at position `doc` of the BM25 index. */
export function keywordOverlap(
  question: string,
  doc: number,
  source: number,
  chunkId: string,
  bm25: Bm25Index,
): KeywordOverlap {
  const tokens = tokenize(question, detectLanguage(question));
  const byWord = new Map<string, SharedKeyword>();
  const missing: string[] = [];
  for (const t of tokens) {
    const key = t.surface.toLowerCase();
    if (byWord.has(key)) continue;
    let weight = 0;
    let idf = 0;
    let count = 0;
    const stems: string[] = [];
    for (const term of t.terms) {
      const tf = bm25.termFrequency(term, doc);
      if (tf > 0) {
        stems.push(term);
        weight += bm25.termScore(term, doc, tf);
        idf = Math.max(idf, bm25.idf(term));
        count = Math.max(count, tf);
      }
    }
    if (stems.length) byWord.set(key, { word: t.surface, stems, weight, idf, count });
    else if (!missing.includes(t.surface)) missing.push(t.surface);
  }
  return { source, chunkId, shared: [...byWord.values()].sort((a, b) => b.weight - a.weight), missing };
}
