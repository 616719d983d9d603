import type { Language } from '../types.js';
import { stem } from './stemmer.js';
import { isStopWord } from './stop-words.js';

/** A content word of a text with its position and the index terms it stands for. */
export interface Token {
  /** The word as written (NFKC-normalised). */
  readonly surface: string;
  /** Index terms: the English and German Snowball stems (one entry when they agree). */
  readonly terms: readonly string[];
  readonly start: number;
  readonly end: number;
}

// A word: letters/digits/underscore, optionally joined by hyphens (RAG-Token, dh_make, Vektor-Datenbanken).
const WORD = /[\p{L}\p{N}_]+(?:-[\p{L}\p{N}_]+)*/gu;

function termsOf(word: string): string[] {
  const en = stem(word, 'en');
  const de = stem(word, 'de');
  return en === de ? [en] : [en, de];
}

/**
 * Splits a text into content tokens: lower-cased, stop words of the text's language (and English ones,
 * which occur in every document here) removed, stemmed for English and German. Hyphenated words give
 * their parts and the joined compound ("Vektor-Datenbanken" also matches "Vektordatenbanken").
 */
export function tokenize(text: string, language: Language): Token[] {
  const out: Token[] = [];
  for (const m of text.matchAll(WORD)) {
    const raw = m[0].normalize('NFKC');
    const start = m.index;
    const end = m.index + m[0].length;
    const lower = raw.toLowerCase();
    const parts = lower.split('-');
    const words = parts.length > 1 ? [...parts, parts.join('')] : parts;
    const terms = new Set<string>();
    for (const w of words) {
      if (w.length < 2 && !/\d/.test(w)) continue;
      if (isStopWord(w, 'en') || (language === 'de' && isStopWord(w, 'de'))) continue;
      for (const t of termsOf(w)) terms.add(t);
    }
    if (terms.size > 0) out.push({ surface: raw, terms: [...terms], start, end });
  }
  return out;
}

/** The index terms of a text (with repetitions, for term frequencies). */
export function analyze(text: string, language: Language): string[] {
  const out: string[] = [];
  for (const t of tokenize(text, language)) out.push(...t.terms);
  return out;
}
