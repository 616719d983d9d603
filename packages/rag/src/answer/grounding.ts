import { dot, type EmbeddingProvider } from '../embeddings/embedding-provider.js';
import type { Bm25Index } from '../retrieval/bm25.js';
import { analyze } from '../text/analyzer.js';
import { analyzeQuery, type QueryConcept } from '../text/query.js';
import type { QueryTranslator } from '../translate/query-translator.js';
import type { AnswerSentence } from './extractive-answer.js';
import { conceptCoverage, type ScoredSentence } from './sentence-scorer.js';
import type { Source } from './source.js';

/** The source text that best supports an answer sentence. */
export interface Support {
  /** Source number (1-based). */
  readonly source: number;
  /** The supporting source sentence (with its neighbours when they were needed). */
  readonly sentence: string;
  /**
   * 0..1 for generated sentences: 0.75 x the IDF-weighted share of the sentence's content words (or their
   * translations) found in the source text, + 0.25 x embedding similarity. Absent for quotations.
   */
  readonly score?: number;
}

/**
 * How an answer sentence relates to the sources:
 * - `quotation`: copied verbatim from a source (extractive answers); nothing to check, shown as a quote;
 * - `supported`: generated, and the sources say it (support score at least the threshold, no foreign numbers);
 * - `unsupported`: generated, and no source text says it: flag it to the reader;
 * - `no-claim`: generated, but states nothing checkable ("The sources do not say.").
 */
export type GroundingLabel = 'quotation' | 'supported' | 'unsupported' | 'no-claim';

/** One sentence of an answer, its citations and how the sources back it. */
export interface GroundedSentence {
  /** As {@link AnswerSentence.text}: a code block keeps its line breaks and indentation. */
  readonly text: string;
  /** `code` for a code block a quoted step announces (show it as code), `prose` for everything else. */
  readonly kind: 'prose' | 'code';
  /** Quotations that close their passage: the citation `[file, p. N]` that `text` ends with. */
  readonly citation?: string;
  /** Source numbers cited by the sentence. */
  readonly citations: readonly number[];
  readonly label: GroundingLabel;
  /** False only for `unsupported` sentences. */
  readonly supported: boolean;
  readonly support?: Support;
  /** Why a generated sentence is unsupported or cites the wrong source. */
  readonly notes?: readonly string[];
  /** Quotations: true for the sentences that answer, false for the context of the passage around them. */
  readonly highlight?: boolean;
  /** Quotations in the other language than the question's: the word-by-word gloss from the dictionary. */
  readonly gloss?: string;
}

/** Default minimum support score of a generated sentence. */
export const SUPPORT_THRESHOLD = 0.5;

/**
 * Removes citation marks from a sentence: `[n]`, `[n, m]` and the given citation strings (`[file, p. N]`).
 * Other text in brackets (link text, "[Footnote: ...]") stays.
 */
export function stripCitations(text: string, citations: readonly string[] = []): string {
  let t = text;
  for (const c of [...citations].sort((a, b) => b.length - a.length)) if (c) t = t.split(c).join(' ');
  return t
    .replace(/\[\s*\d+(?:\s*,\s*\d+)*\s*\]/g, ' ')
    .replace(/\s+([.,;:!?])/g, '$1')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Options of {@link groundSentences}. */
export interface GroundingOptions {
  readonly embedding: EmbeddingProvider;
  readonly bm25: Bm25Index;
  readonly sources: readonly Source[];
  /** For sentences in another language than their sources. */
  readonly translator?: QueryTranslator;
  /** Minimum support score; default {@link SUPPORT_THRESHOLD}. */
  readonly threshold?: number;
}

const NUMBER = /\b\d+(?:[.,]\d+)*\b/g;

/**
 * Labels every answer sentence. Quoted (extractive) sentences are `quotation`s of the source text they were
 * copied from: comparing a copy with its original proves nothing, so they get no score. Generated sentences
 * are checked against every source sentence together with its neighbours: the share of the sentence's
 * content words (or their dictionary translations) that the source text contains, weighted by IDF (a word
 * the corpus never uses weighs most), and the
 * embedding similarity; below `threshold`, or with a number that no source contains, a sentence is
 * `unsupported`. A cited source that does not hold the support is noted.
 */
export async function groundSentences(
  answer: readonly AnswerSentence[],
  sourceSentences: readonly ScoredSentence[],
  options: GroundingOptions,
): Promise<GroundedSentence[]> {
  const threshold = options.threshold ?? SUPPORT_THRESHOLD;
  const citations = options.sources.map((s) => s.citation);
  const generated = answer.filter((s) => !s.quote);
  const plain = generated.map((s) => stripCitations(s.text, citations));
  const vectors = plain.length ? await options.embedding.embed(plain.map((p) => p || '-')) : [];
  // each source sentence with its neighbours: a generated sentence often merges two
  const windows = sourceSentences.map((s, i) => {
    const parts = [sourceSentences[i - 1], s, sourceSentences[i + 1]].filter(
      (x): x is ScoredSentence => x !== undefined && x.source === s.source,
    );
    const lang = options.sources[s.source - 1]?.language ?? 'en';
    return {
      s,
      text: parts.map((p) => p.text).join(' '),
      terms: new Set(parts.flatMap((p) => analyze(p.text, lang))),
    };
  });
  const sourceNumbers = new Set(options.sources.flatMap((s) => s.text.match(NUMBER) ?? []));
  // words the corpus never uses weigh most: an invented name or place has no support anywhere
  const idf = (c: QueryConcept) => options.bm25.conceptRarity(c);
  let g = 0;
  return answer.map((s) => {
    if (s.quote) {
      const src = options.sources[s.quote.source - 1];
      const sentence = src ? src.text.slice(s.quote.start, s.quote.end) : stripCitations(s.text, citations);
      return {
        text: s.text,
        kind: s.kind,
        ...(s.citation !== undefined ? { citation: s.citation } : {}),
        citations: s.citations,
        label: 'quotation',
        supported: true,
        support: { source: s.quote.source, sentence },
        ...(s.highlight !== undefined ? { highlight: s.highlight } : {}),
        ...(s.gloss !== undefined ? { gloss: s.gloss } : {}),
      };
    }
    const k = g++;
    const text = plain[k]!;
    const concepts = analyzeQuery(
      text,
      options.translator ? { translator: options.translator } : {},
    ).concepts;
    if (concepts.length === 0)
      return { text: s.text, kind: s.kind, citations: s.citations, label: 'no-claim', supported: true };
    let best: { source: number; sentence: string; score: number } | undefined;
    for (const w of windows) {
      const coverage = conceptCoverage(concepts, w.terms, idf);
      const score = 0.75 * coverage + 0.25 * Math.max(0, dot(vectors[k]!, w.s.vector));
      if (!best || score > best.score) best = { source: w.s.source, sentence: w.text, score };
    }
    const notes: string[] = [];
    const foreign = (text.match(NUMBER) ?? []).filter((n) => !sourceNumbers.has(n));
    if (foreign.length) notes.push(`numbers not in any source: ${foreign.join(', ')}`);
    if (!best || best.score < threshold) notes.push('no source text says this');
    else if (s.citations.length > 0 && !s.citations.includes(best.source))
      notes.push(`cites [${s.citations.join(', ')}] but the support is in source ${best.source}`);
    const supported = best !== undefined && best.score >= threshold && foreign.length === 0;
    return {
      text: s.text,
      kind: s.kind,
      citations: s.citations,
      label: supported ? 'supported' : 'unsupported',
      supported,
      ...(best ? { support: best } : {}),
      ...(notes.length ? { notes } : {}),
    };
  });
}
