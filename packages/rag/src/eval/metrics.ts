import { cleanInline } from '../ingest/markdown-to-blocks.js';
import { analyze } from '../text/analyzer.js';
import { detectLanguage } from '../text/language.js';
import { analyzeQuery } from '../text/query.js';
import type { QueryTranslator } from '../translate/query-translator.js';
import type { Language } from '../types.js';

/** One evaluated question. */
export interface QuestionOutcome {
  readonly id: string;
  /** 1-based rank of the first retrieved chunk from a relevant file; undefined when none was in the top 10. */
  readonly firstRelevantRank?: number;
  /** Whether the reference passage lies inside one of the retrieved chunks (whitespace-normalised). */
  readonly passageFound: boolean;
  /** Share of the supporting passage's content words that the answer contains (see {@link answerCoverage}). */
  readonly answerCoverage?: number;
  /** Share of the question's expected key terms that the answer contains (see {@link keyTermCoverage}). */
  readonly keyTermCoverage?: number;
}

/** Aggregate retrieval and answer quality over a question set. */
export interface RetrievalMetrics {
  readonly questions: number;
  readonly hitAt1: number;
  readonly hitAt5: number;
  /** Mean reciprocal rank of the first relevant file within the top 10 (0 beyond). */
  readonly mrrAt10: number;
  readonly passageFound: number;
  /** Share of questions whose answer covers at least half of the supporting passage's content words. */
  readonly answerCovered: number;
  /** Mean of the answer coverages. */
  readonly meanAnswerCoverage: number;
  /** Questions that have key terms. */
  readonly keyTermQuestions: number;
  /** Share of the questions with key terms whose answer contains every one of them (0 without such questions). */
  readonly keyTermsCovered: number;
  /** Mean share of the key terms found, over the questions with key terms. */
  readonly meanKeyTermCoverage: number;
}

/**
 * Which language pair a question tests: `en` and `de` when question and answering document share the
 * language, `cross-lingual` when they differ. The evaluation reports answer coverage per group.
 */
export type QuestionGroup = 'en' | 'de' | 'cross-lingual';

/** The {@link QuestionGroup} of a question from its language and its answering document's language. */
export function questionGroup(questionLanguage: Language, documentLanguage: Language): QuestionGroup {
  return questionLanguage === documentLanguage ? questionLanguage : 'cross-lingual';
}

/** Answer coverage at or above this counts as "the answer covers the passage". */
export const ANSWER_COVERAGE_THRESHOLD = 0.5;

/** Collapses every run of white space to one space and trims (the corpus' matching rule). */
export function normalizeWhitespace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Rank (1-based) of the first retrieved file that is relevant, or undefined. */
export function firstRelevantRank(
  retrievedFiles: readonly string[],
  relevantFiles: readonly string[],
): number | undefined {
  const relevant = new Set(relevantFiles);
  const i = retrievedFiles.findIndex((f) => relevant.has(f));
  return i < 0 ? undefined : i + 1;
}

/**
 * Whether `passage` occurs in one of the texts after whitespace normalisation. The chunks hold clean text, so
 * Markdown inline markup in a passage (backticks, emphasis) is removed before comparing.
 */
export function passageInTexts(passage: string, texts: readonly string[]): boolean {
  const p = normalizeWhitespace(passage);
  const clean = cleanInline(passage);
  return texts.some((t) => {
    const n = normalizeWhitespace(t);
    return n.includes(p) || n.includes(clean);
  });
}

/**
 * Content-word coverage of a passage by an answer: the share of the passage's distinct content words (stop
 * words removed, stemmed in the passage's language) that the answer contains, in either language's stem or,
 * with a translator, as a dictionary translation (an English answer to a German passage). Markup in the
 * passage (backticks, `$`) does not count.
 */
export function answerCoverage(answer: string, passage: string, translator?: QueryTranslator): number {
  const language = detectLanguage(passage);
  const concepts = analyzeQuery(passage.replace(/[`$*_]/g, ' '), {
    language,
    ...(translator ? { translator } : {}),
  }).concepts;
  // one entry per distinct passage word (two-word phrases are extra and not counted)
  const words = concepts.filter(
    (c) => !c.word.includes(' ') || !c.terms.every((t) => t.via === 'translation'),
  );
  if (words.length === 0) return 0;
  const have = new Set([...analyze(answer, 'en'), ...analyze(answer, 'de')]);
  const covered = words.filter((c) => c.terms.some((t) => have.has(t.term))).length;
  return covered / words.length;
}

/**
 * Key-term coverage: the share of expected key terms (words or short phrases, written in the answering
 * document's language, `options.language`, default English) that an answer contains. A term counts when every
 * one of its content words is in the answer, as its stem in either language or, with a translator, as a
 * dictionary translation (an English answer glossing a German key term). Needs no supporting passage, so it
 * also judges answers that are right in other words than the passage. Terms without content words are
 * ignored; none left gives 0.
 */
export function keyTermCoverage(
  answer: string,
  keyTerms: readonly string[],
  options: { readonly language?: Language; readonly translator?: QueryTranslator | undefined } = {},
): number {
  const have = new Set([...analyze(answer, 'en'), ...analyze(answer, 'de')]);
  let counted = 0;
  let found = 0;
  for (const key of keyTerms) {
    const words = analyzeQuery(key, {
      language: options.language ?? 'en',
      ...(options.translator ? { translator: options.translator } : {}),
    }).concepts.filter((c) => !c.word.includes(' '));
    if (words.length === 0) continue;
    counted++;
    if (words.every((c) => c.terms.some((t) => have.has(t.term)))) found++;
  }
  return counted > 0 ? found / counted : 0;
}

/** hit@1, hit@5, MRR@10, passages found, answer coverage and key-term coverage. Empty input gives zeros. */
export function aggregateMetrics(outcomes: readonly QuestionOutcome[]): RetrievalMetrics {
  const n = outcomes.length;
  if (n === 0)
    return {
      questions: 0,
      hitAt1: 0,
      hitAt5: 0,
      mrrAt10: 0,
      passageFound: 0,
      answerCovered: 0,
      meanAnswerCoverage: 0,
      keyTermQuestions: 0,
      keyTermsCovered: 0,
      meanKeyTermCoverage: 0,
    };
  const rank = (o: QuestionOutcome) => o.firstRelevantRank ?? Number.POSITIVE_INFINITY;
  const mrrAt10 = outcomes.reduce((s, o) => s + (rank(o) <= 10 ? 1 / rank(o) : 0), 0) / n;
  const keyed = outcomes.flatMap((o) => (o.keyTermCoverage === undefined ? [] : [o.keyTermCoverage]));
  return {
    questions: n,
    hitAt1: outcomes.filter((o) => rank(o) <= 1).length / n,
    hitAt5: outcomes.filter((o) => rank(o) <= 5).length / n,
    mrrAt10,
    passageFound: outcomes.filter((o) => o.passageFound).length / n,
    answerCovered: outcomes.filter((o) => (o.answerCoverage ?? 0) >= ANSWER_COVERAGE_THRESHOLD).length / n,
    meanAnswerCoverage: outcomes.reduce((s, o) => s + (o.answerCoverage ?? 0), 0) / n,
    keyTermQuestions: keyed.length,
    keyTermsCovered: keyed.length ? keyed.filter((k) => k >= 1).length / keyed.length : 0,
    meanKeyTermCoverage: keyed.length ? keyed.reduce((a, b) => a + b, 0) / keyed.length : 0,
  };
}

/** One line of metrics: `hit@1=… hit@5=… mrr@10=… answer-coverage=…` with three decimals. */
export function formatSummaryLine(m: RetrievalMetrics): string {
  return `hit@1=${m.hitAt1.toFixed(3)} hit@5=${m.hitAt5.toFixed(3)} mrr@10=${m.mrrAt10.toFixed(3)} answer-coverage=${m.answerCovered.toFixed(3)}`;
}
