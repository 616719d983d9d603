/** One evaluated question. */
export interface QuestionOutcome {
  readonly id: string;
  /** 1-based rank of the first retrieved chunk from a relevant file; undefined when none was retrieved. */
  readonly firstRelevantRank?: number;
  /** Whether the reference passage lies inside one of the retrieved chunks (whitespace-normalised). */
  readonly passageFound: boolean;
}

/** Aggregate retrieval quality over a question set. */
export interface RetrievalMetrics {
  readonly questions: number;
  readonly hitAt1: number;
  readonly hitAt5: number;
  readonly mrr: number;
  readonly passageFound: number;
}

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

/** Whether `passage` occurs in one of the texts after whitespace normalisation. */
export function passageInTexts(passage: string, texts: readonly string[]): boolean {
  const p = normalizeWhitespace(passage);
  return texts.some((t) => normalizeWhitespace(t).includes(p));
}

/** hit@1, hit@5, mean reciprocal rank and share of passages found. Empty input gives zeros. */
export function aggregateMetrics(outcomes: readonly QuestionOutcome[]): RetrievalMetrics {
  const n = outcomes.length;
  if (n === 0) return { questions: 0, hitAt1: 0, hitAt5: 0, mrr: 0, passageFound: 0 };
  const rank = (o: QuestionOutcome) => o.firstRelevantRank ?? Number.POSITIVE_INFINITY;
  return {
    questions: n,
    hitAt1: outcomes.filter((o) => rank(o) <= 1).length / n,
    hitAt5: outcomes.filter((o) => rank(o) <= 5).length / n,
    mrr: outcomes.reduce((s, o) => s + (o.firstRelevantRank ? 1 / o.firstRelevantRank : 0), 0) / n,
    passageFound: outcomes.filter((o) => o.passageFound).length / n,
  };
}

/** The closing line of `rag:eval`: `hit@5=X mrr=Y` with three decimals. */
export function formatSummaryLine(m: RetrievalMetrics): string {
  return `hit@5=${m.hitAt5.toFixed(3)} mrr=${m.mrr.toFixed(3)}`;
}
