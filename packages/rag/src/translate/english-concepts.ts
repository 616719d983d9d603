import { decompound, germanLemmaTerm, stemOfTerm, type WordSet } from '../text/analyzer.js';
import { stem } from '../text/stemmer.js';
import type { QueryTranslator } from './query-translator.js';

/**
 * How a German stem reached English: `dictionary` (its own entry), `base-form` (the entry of the word it is an
 * inflection of), `compound` (the entries of its parts), `loan-word` (no entry: taken as the English word it is
 * spelt like).
 */
export type ConceptRoute = 'dictionary' | 'base-form' | 'compound' | 'loan-word';

/** The English concepts of a German stem: English stems (or phrases of stems) with weights summing to 1. */
export interface EnglishConcepts {
  readonly route: ConceptRoute;
  readonly concepts: readonly (readonly [string, number])[];
}

/** Options of {@link englishConcepts}. */
export interface EnglishConceptsOptions {
  /** Dictionary translations a stem (or each part of a compound) is spread over, heaviest first; default 3. */
  readonly translations?: number;
  /**
   * More German stems that may be parts of a compound (the other words of the same text): "Debian-Leitfaden"
   * and "RAG-Architektur" are indexed joined as well, and "debian" or "rag" is in no dictionary but is a word
   * of that text. Such parts may have 3 letters.
   */
  readonly context?: WordSet;
  /**
   * English stems the English texts use: a stem's translations are taken among these when any of its
   * translations is one ("Einbettung" -> embedding rather than bedding), as a target-language corpus picks the
   * sense; the others only when none is.
   */
  readonly used?: WordSet;
}

/**
 * A German index term's stem said in English concepts, for comparing German and English texts by meaning: its
 * dictionary translations; else those of its base form ("verwendet" -> "verwenden" -> use); else, for a compound,
 * its parts' (each part a share of the word: "vektordatenbank" -> vector, database); else the stem is taken as a
 * loan word and stemmed as English ("retrieval" -> `retriev`, "embedding" -> `embed`), as an English text
 * would index it. The same order the question side uses (`analyzeQuery`: a word's translations, its base form,
 * its compound parts, and, for words the dictionary does not know, the other language's stem).
 */
export function englishConcepts(
  germanStem: string,
  translator: QueryTranslator,
  options: EnglishConceptsOptions = {},
): EnglishConcepts {
  const n = options.translations ?? 3;
  const lexicon = translator.lexicon('de');
  const own = spread(germanStem, translator, n, options.used);
  const loan = stem(germanStem, 'en');
  // a word English texts use as it is ("rag", "index") rather than any translation of it they do not use
  if (options.used && !own?.some(([t]) => options.used!.has(t)) && options.used.has(loan))
    return { route: 'loan-word', concepts: [[loan, 1]] };
  if (own) return { route: 'dictionary', concepts: own };
  const lemma = germanLemmaTerm(germanStem, lexicon);
  const base = lemma === undefined ? undefined : spread(stemOfTerm(lemma), translator, n, options.used);
  if (base) return { route: 'base-form', concepts: base };
  const parts =
    decompound(germanStem, lexicon) ??
    (options.context ? decompound(germanStem, either(lexicon, options.context), { minPart: 3 }) : undefined);
  if (parts) {
    const concepts = new Map<string, number>();
    for (const [a, b] of parts) {
      const part = stem(germanStem.slice(a, b), 'de');
      // a part of the context only (a name) stays itself, as a loan word
      for (const [key, w] of spread(part, translator, n, options.used) ?? [[stem(part, 'en'), 1] as const])
        concepts.set(key, (concepts.get(key) ?? 0) + w / parts.length);
    }
    return { route: 'compound', concepts: [...concepts] };
  }
  return { route: 'loan-word', concepts: [[loan, 1]] };
}

/** A stem's best dictionary translations, weights summing to 1; undefined when it has none. */
function spread(
  germanStem: string,
  translator: QueryTranslator,
  n: number,
  used: WordSet | undefined,
): [string, number][] | undefined {
  const all = translator.translate(germanStem, 'de');
  const known = used ? all.filter((t) => used.has(t.term)) : [];
  const list = (known.length > 0 ? known : all).slice(0, n);
  const total = list.reduce((s, t) => s + t.weight, 0);
  return total > 0 ? list.map((t) => [t.term, t.weight / total]) : undefined;
}

const either = (a: WordSet, b: WordSet): WordSet => ({ has: (w) => a.has(w) || b.has(w) });
