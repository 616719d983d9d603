import type { Language } from '../types.js';
import { stem } from './stemmer.js';
import { isStopStem, isStopWord } from './stop-words.js';

/** A content word of a text: where it is and the one index term it stands for. */
export interface Token {
  /** The word as written (NFKC-normalised). */
  readonly surface: string;
  /**
   * Index term: the language and the Snowball stem of the lower-cased word in that language, `en:rule`,
   * `de:regel`. The language is part of the term so that look-alikes of two languages (English "stand",
   * German "Stand") are different terms.
   */
  readonly term: string;
  readonly start: number;
  readonly end: number;
}

// A word: letters/digits/underscore, optionally joined by hyphens (RAG-Token, dh_make, Vektor-Datenbanken).
const WORD = /[\p{L}\p{N}_]+(?:-[\p{L}\p{N}_]+)*/gu;

/** The index term of one lower-case word (`en:rule`), or undefined for a stop word (checked before and after stemming). */
export function termOf(word: string, language: Language): string | undefined {
  const s = stemOf(word, language);
  return s === undefined ? undefined : tagTerm(language, s);
}

/** The stem of one lower-case word, or undefined for a stop word (checked before and after stemming). */
export function stemOf(word: string, language: Language): string | undefined {
  if (word.length < 2 && !/\d/.test(word)) return undefined;
  if (isStopWord(word, language)) return undefined;
  const s = stem(word, language);
  if (isStopStem(s, language)) return undefined;
  return s;
}

/** An index term from a language and a stem: `en:rule`. */
export const tagTerm = (language: Language, stemmed: string) => `${language}:${stemmed}`;

/** The stem of an index term (`en:rule` -> `rule`), for display and dictionary look-ups. */
export const stemOfTerm = (term: string) => term.slice(term.indexOf(':') + 1);

/**
 * Splits a text into content tokens with one index term each: lower-cased, stop words of the text's language
 * removed (before and after stemming), stemmed with that language's Snowball stemmer. A hyphenated word
 * gives its parts; in German also the joined compound ("Vektor-Datenbanken" also matches
 * "Vektordatenbanken"), as German writes compounds both ways.
 */
export function tokenize(text: string, language: Language): Token[] {
  const out: Token[] = [];
  for (const m of text.matchAll(WORD)) {
    const raw = m[0].normalize('NFKC');
    const lower = raw.toLowerCase();
    const start = m.index;
    const parts = lower.split('-');
    // offsets come from the text as written (NFKC can change lengths, e.g. the ligature "ﬁ")
    const written = m[0].split('-');
    let offset = 0;
    for (const [i, part] of parts.entries()) {
      const length = written[i]?.length ?? part.length;
      const term = termOf(part, language);
      if (term !== undefined) {
        out.push({
          surface: written[i]?.normalize('NFKC') ?? part,
          term,
          start: start + offset,
          end: start + offset + length,
        });
      }
      offset += length + 1;
    }
    if (parts.length > 1 && language === 'de') {
      const term = termOf(parts.join(''), language);
      if (term !== undefined) out.push({ surface: raw, term, start, end: start + m[0].length });
    }
  }
  return out;
}

/** The index terms of a text, in order, with repetitions (for term frequencies). */
export function analyze(text: string, language: Language): string[] {
  return tokenize(text, language).map((t) => t.term);
}
