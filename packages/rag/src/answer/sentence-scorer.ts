import { dot, type EmbeddingProvider } from '../embeddings/embedding-provider.js';
import type { BlockKind } from '../ingest/block.js';
import type { Bm25Index } from '../retrieval/bm25.js';
import { analyze } from '../text/analyzer.js';
import type { AnalyzedQuery, QueryConcept } from '../text/query.js';
import type { Language } from '../types.js';
import { chunkSentences } from './passage-sentences.js';
import type { Source } from './source.js';

/** A sentence of a source and how well it answers the question. */
export interface ScoredSentence {
  /** Source number (1-based). */
  readonly source: number;
  readonly text: string;
  /** Character span in the source chunk text. */
  readonly start: number;
  readonly end: number;
  /** Block kind: prose (`paragraph`, `list-item`, `quote`), `table-row`, `heading` or `code`. */
  readonly kind: BlockKind;
  /** Position among the sentences of its source (0-based). */
  readonly index: number;
  /** Cosine similarity of sentence and question embeddings. */
  readonly dense: number;
  /** IDF-weighted share of the question's concepts (words, with their translations) in the sentence (0..1). */
  readonly lexical: number;
  /** Share of the sentence's content words that are not the question's (0..1): 0 for a sentence that only restates it. */
  readonly novelty: number;
  /**
   * How well the sentence answers the question, 0..1: relevance (concept coverage and the embedding's lift
   * over the other sentences) times novelty, times the source's rank; headings and (unless the question asks
   * for code) code blocks score 0; questions and fragments are damped.
   */
  readonly score: number;
  /** The sentence's embedding (unit length). */
  readonly vector: Float32Array;
}

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

/** IDF-weighted share of the concepts matched by a set of terms (a concept counts by its best matching term). */
export function conceptCoverage(
  concepts: readonly QueryConcept[],
  terms: ReadonlySet<string>,
  idf: (c: QueryConcept) => number,
): number {
  let total = 0;
  let hit = 0;
  for (const c of concepts) {
    const w = Math.max(idf(c), 0.1);
    total += w;
    let best = 0;
    for (const t of c.terms) if (terms.has(t.term) && t.weight > best) best = t.weight;
    hit += w * Math.min(1, best);
  }
  return total > 0 ? hit / total : 0;
}

// Words that ask for code: then code blocks may be answers (and are otherwise never answer prose).
const CODE_INTENT =
  /\b(code|codebeispiel\w*|beispielcode|snippet|command|commands|befehl\w*|syntax|cli|shell|terminal|aufruf\w*|how do i call|which arguments|which parameters)\b|`|\w\(\)|\b\w+_\w+\b|\b\w+\.\w+\(/i;

/** Whether a question asks for code (a snippet, a command, a call): then code blocks can answer it. */
export function asksForCode(question: string): boolean {
  return CODE_INTENT.test(question);
}

/**
 * Splits every source into sentences (by its blocks) and scores how well each answers the question.
 * Used for the extractive answer, grounding and the sentence heatmaps.
 */
export async function scoreSourceSentences(
  question: string,
  questionVector: Float32Array,
  query: AnalyzedQuery,
  sources: readonly Source[],
  embedding: EmbeddingProvider,
  bm25: Bm25Index,
): Promise<ScoredSentence[]> {
  const raw = sources.flatMap((s) =>
    chunkSentences(s).map((x, index) => ({ ...x, index, source: s.n, language: s.language as Language })),
  );
  if (raw.length === 0) return [];
  const vectors = await embedding.embed(raw.map((r) => r.text));
  const idfCache = new Map<QueryConcept, number>();
  const idf = (c: QueryConcept) => {
    let v = idfCache.get(c);
    if (v === undefined) {
      v = bm25.conceptIdf(c);
      idfCache.set(c, v);
    }
    return v;
  };
  const questionTerms = new Set(query.concepts.flatMap((c) => c.terms.map((t) => t.term)));
  const code = asksForCode(question);
  const dense = vectors.map((v) => dot(questionVector, v));
  const mean = dense.reduce((a, b) => a + b, 0) / dense.length;
  const maxLift = Math.max(...dense.map((d) => d - mean), 1e-9);
  const best = Math.max(...sources.map((s) => s.score), 1e-9);
  const prior = new Map(sources.map((s) => [s.n, 0.5 + (0.5 * s.score) / best]));
  return raw.map((r, i) => {
    const terms = analyze(r.text, r.language);
    const set = new Set(terms);
    const lexical = conceptCoverage(query.concepts, set, idf);
    const distinct = [...set];
    const novelty = distinct.length ? distinct.filter((t) => !questionTerms.has(t)).length / distinct.length : 0;
    const lift = Math.max(0, dense[i]! - mean) / maxLift;
    let shape = 1;
    if (r.kind === 'heading' || (r.kind === 'code' && !code)) shape = 0;
    else if (/\?\s*$/.test(r.text)) shape = 0.3; // a question rarely answers a question
    else if (distinct.length < 3) shape = 0.6; // fragments
    const words = r.text.split(/\s+/).length;
    if (words > 60) shape *= Math.sqrt(60 / words); // run-on text (long rows, lists without stops)
    const relevance = 0.65 * lexical + 0.35 * lift;
    const score = relevance * (0.3 + 0.7 * novelty) * (prior.get(r.source) ?? 0.5) * shape;
    return {
      source: r.source,
      text: r.text,
      start: r.start,
      end: r.end,
      kind: r.kind,
      index: r.index,
      dense: dense[i]!,
      lexical,
      novelty,
      score,
      vector: vectors[i]!,
    };
  });
}
