import { dot, type EmbeddingProvider } from '../embeddings/embedding-provider.js';
import { analyze } from '../text/analyzer.js';
import { detectLanguage } from '../text/language.js';
import type { ScoredSentence } from './sentence-scorer.js';
import { cosineTo01 } from './sentence-scorer.js';

/** The source sentence that best supports an answer sentence. */
export interface Support {
  /** Source number (1-based). */
  readonly source: number;
  readonly sentence: string;
  /** 0..1: mean of embedding similarity and the share of the answer sentence's terms found in the source sentence. */
  readonly score: number;
}

/** One sentence of an answer, its citations and how well the sources support it. */
export interface GroundedSentence {
  readonly text: string;
  /** Source numbers cited by the sentence. */
  readonly citations: readonly number[];
  readonly support?: Support;
  /** False when no source sentence reaches the support threshold: the sentence is not grounded. */
  readonly supported: boolean;
}

/** Default minimum support score of a grounded sentence. */
export const SUPPORT_THRESHOLD = 0.5;

/** Removes `[n]` and `[file, p. N]` citation marks from a sentence. */
export function stripCitations(text: string): string {
  return text
    .replace(/\s*\[[^\]]*\]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * For each answer sentence, finds the best supporting sentence among the scored source sentences and flags
 * sentences whose best support is below `threshold`.
 */
export async function groundSentences(
  answerSentences: readonly { text: string; citations: readonly number[] }[],
  sourceSentences: readonly ScoredSentence[],
  embedding: EmbeddingProvider,
  threshold = SUPPORT_THRESHOLD,
): Promise<GroundedSentence[]> {
  if (answerSentences.length === 0) return [];
  const plain = answerSentences.map((s) => stripCitations(s.text));
  const vectors = await embedding.embed(plain.map((p) => p || '-'));
  const sourceTerms = sourceSentences.map((s) => new Set(analyze(s.text, detectLanguage(s.text))));
  return answerSentences.map((s, i) => {
    const terms = [...new Set(analyze(plain[i]!, detectLanguage(plain[i]!)))];
    let best: Support | undefined;
    sourceSentences.forEach((src, j) => {
      const have = sourceTerms[j]!;
      const containment = terms.length ? terms.filter((t) => have.has(t)).length / terms.length : 0;
      const score = 0.5 * cosineTo01(dot(vectors[i]!, src.vector)) + 0.5 * containment;
      if (!best || score > best.score) best = { source: src.source, sentence: src.text, score };
    });
    const supported = best !== undefined && best.score >= threshold;
    return best
      ? { text: s.text, citations: s.citations, support: best, supported }
      : { text: s.text, citations: s.citations, supported };
  });
}
