import { analyze } from '../text/analyzer.js';
import { detectLanguage } from '../text/language.js';
import type { ScoredSentence } from './sentence-scorer.js';
import type { Source } from './source.js';

/** Options of the extractive answer. */
export interface ExtractiveOptions {
  /** At most this many answering sentences (their needed neighbours come on top); default 3. */
  readonly maxSentences?: number;
  /** Keep sentences scoring at least this share of the best one; default 0.6. */
  readonly relativeCutoff?: number;
  /** The question asks for code: a sentence that announces code (ends with ":") brings the code block. */
  readonly allowCode?: boolean;
}

/** A sentence of an answer with the sources it cites; extractive ones also say where they were quoted from. */
export interface AnswerSentence {
  readonly text: string;
  readonly citations: number[];
  /** For quoted sentences: source number and span in its text. */
  readonly quote?: { readonly source: number; readonly start: number; readonly end: number };
}

/** A composed answer: the text (with citations) and its sentences. */
export interface ComposedAnswer {
  readonly text: string;
  readonly sentences: AnswerSentence[];
}

// A sentence that starts like this leans on the one before it ("However, ...", "Dabei ...").
const NEEDS_PREVIOUS =
  /^(however|but|this|these|that|those|it|its|they|their|thus|therefore|hence|so|also|moreover|furthermore|in contrast|instead|otherwise|such|here|then|both|unlike|in this case|in that case|as a result|for this reason|dies|diese|dieser|dieses|das|dabei|damit|dadurch|daher|deshalb|deswegen|jedoch|allerdings|aber|außerdem|zudem|sie|er|es|hierbei|hierfür|somit|stattdessen|trotzdem|ebenso)\b/i;

function contentTerms(text: string): Set<string> {
  return new Set(analyze(text, detectLanguage(text)));
}

/** Whether two sentences say (nearly) the same: most content words of the shorter are in the longer. */
function overlaps(a: Set<string>, b: Set<string>): boolean {
  if (a.size === 0 || b.size === 0) return false;
  let inter = 0;
  for (const t of a) if (b.has(t)) inter++;
  return inter / Math.min(a.size, b.size) > 0.75;
}

/**
 * Composes an answer without a language model from the sentences that answer the question: the best scoring
 * sentence (see `scoreSourceSentences`: relevant *and* adding something to the question, so headings and
 * lines that restate the question lose), then others close to it (from another source: at least 75% of its
 * score) that do not repeat what is already picked. A sentence that leans on its predecessor ("However, ...", "This ...") brings that predecessor; one
 * that announces a list (ends with ":") brings the next item. Sentences are clean text, each group followed
 * by its citation `[file, p. N]`; the same text from overlapping chunks appears once.
 */
export function composeExtractiveAnswer(
  scored: readonly ScoredSentence[],
  sources: readonly Source[],
  options: ExtractiveOptions = {},
): ComposedAnswer {
  const code = options.allowCode ?? false;
  const max = options.maxSentences ?? 3;
  const cutoff = options.relativeCutoff ?? 0.6;
  const ranked = [...scored]
    .filter((s) => s.score > 0 && s.text.length >= 12)
    .sort((a, b) => b.score - a.score);
  const best = ranked[0];
  if (!best) return { text: '', sentences: [] };
  const bySource = new Map<number, ScoredSentence[]>();
  for (const s of scored) {
    const list = bySource.get(s.source) ?? [];
    list.push(s);
    bySource.set(s.source, list);
  }
  for (const list of bySource.values()) list.sort((a, b) => a.index - b.index);
  const pickedTerms: Set<string>[] = [];
  const groups: ScoredSentence[][] = [];
  const isDuplicate = (s: ScoredSentence) => {
    const t = contentTerms(s.text);
    return pickedTerms.some((p) => overlaps(p, t));
  };
  const take = (s: ScoredSentence) => pickedTerms.push(contentTerms(s.text));
  for (const s of ranked) {
    if (groups.length >= max || s.score < best.score * cutoff) break;
    // another source has to be nearly as good to add to the answer; the best sentence's source may add more
    if (s.source !== best.source && s.score < best.score * Math.max(cutoff, 0.75)) continue;
    if (isDuplicate(s)) continue;
    const list = bySource.get(s.source)!;
    const at = list.findIndex((x) => x.index === s.index);
    const group: ScoredSentence[] = [];
    const prev = list[at - 1];
    if (
      prev &&
      NEEDS_PREVIOUS.test(s.text.trim()) &&
      prev.kind !== 'heading' &&
      prev.kind !== 'code' &&
      !isDuplicate(prev)
    ) {
      group.push(prev);
    }
    group.push(s);
    // the next sentence belongs to this one when this one announces it (":") or it refers back ("It states ...")
    const next = list[at + 1];
    const continues =
      next !== undefined &&
      (/:\s*$/.test(s.text) || (NEEDS_PREVIOUS.test(next.text.trim()) && next.kind !== 'table-row'));
    if (
      next &&
      continues &&
      next.kind !== 'heading' &&
      (code || next.kind !== 'code') &&
      !isDuplicate(next)
    ) {
      group.push(next);
    }
    for (const g of group) take(g);
    groups.push(group);
  }
  // groups that continue each other in the same source read as one passage with one citation
  for (let i = 0; i < groups.length; i++) {
    for (let j = 0; j < groups.length; j++) {
      if (i === j) continue;
      const a = groups[i]!;
      const b = groups[j]!;
      if (a[0]!.source === b[0]!.source && a[a.length - 1]!.index + 1 === b[0]!.index) {
        groups[i] = [...a, ...b];
        groups.splice(j, 1);
        i = -1;
        break;
      }
    }
  }
  const sentences: AnswerSentence[] = [];
  for (const group of groups) {
    group.forEach((s, i) => {
      const src = sources[s.source - 1]!;
      const body = s.text.replace(/\s+/g, ' ').trim();
      const last = i === group.length - 1;
      sentences.push({
        text: last ? `${body} ${src.citation}` : body,
        citations: [s.source],
        quote: { source: s.source, start: s.start, end: s.end },
      });
    });
  }
  return { text: sentences.map((s) => s.text).join(' '), sentences };
}
