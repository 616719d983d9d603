import { dot, type EmbeddingProvider } from '../embeddings/embedding-provider.js';
import type { Bm25Index } from '../retrieval/bm25.js';
import { analyze } from '../text/analyzer.js';
import { detectLanguage } from '../text/language.js';
import { splitSentences } from '../text/sentences.js';
import type { Source } from './source.js';

/** A sentence of a source with how well it matches the question. */
export interface ScoredSentence {
  /** Source number (1-based). */
  readonly source: number;
  readonly text: string;
  /** Character span in the source chunk text. */
  readonly start: number;
  readonly end: number;
  /** Cosine similarity of sentence and question embeddings. */
  readonly dense: number;
  /** IDF-weighted share of the question's terms that occur in the sentence (0..1). */
  readonly lexical: number;
  /** Combined score, 0..1: mean of the rescaled dense score and the lexical share. */
  readonly score: number;
  /** The sentence's embedding (unit length). */
  readonly vector: Float32Array;
}

/** Rescales a cosine similarity from [-1, 1] (in practice [0, 1]) to [0, 1]. */
export const cosineTo01 = (c: number) => Math.max(0, Math.min(1, c));

/** IDF-weighted share of `query` terms present in `terms`. */
export function termCoverage(
  query: readonly string[],
  terms: ReadonlySet<string>,
  idf: (t: string) => number,
): number {
  const unique = [...new Set(query)];
  let total = 0;
  let hit = 0;
  for (const t of unique) {
    const w = Math.max(idf(t), 0.1);
    total += w;
    if (terms.has(t)) hit += w;
  }
  return total > 0 ? hit / total : 0;
}

/**
 * Splits every source into sentences and scores each against the question (embedding similarity and
 * IDF-weighted term coverage). Used for the extractive answer, grounding and the sentence heatmaps.
 */
export async function scoreSourceSentences(
  question: string,
  questionVector: Float32Array,
  sources: readonly Source[],
  embedding: EmbeddingProvider,
  bm25: Bm25Index,
): Promise<ScoredSentence[]> {
  const raw = sources.flatMap((s) => splitSentences(s.text).map((x) => ({ ...x, source: s.n })));
  if (raw.length === 0) return [];
  const vectors = await embedding.embed(raw.map((r) => r.text));
  const qTerms = analyze(question, detectLanguage(question));
  const idf = (t: string) => bm25.idf(t);
  return raw.map((r, i) => {
    const vector = vectors[i]!;
    const dense = dot(questionVector, vector);
    const lexical = termCoverage(qTerms, new Set(analyze(r.text, detectLanguage(r.text))), idf);
    return { ...r, dense, lexical, score: 0.5 * cosineTo01(dense) + 0.5 * lexical, vector };
  });
}
