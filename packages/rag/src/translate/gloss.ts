import { stemOf } from '../text/analyzer.js';
import { isStopWord } from '../text/stop-words.js';
import type { Language } from '../types.js';
import type { QueryTranslator } from './query-translator.js';

const WORD = /[\p{L}\p{N}_]+(?:-[\p{L}\p{N}_]+)*/gu;

/**
 * A word-by-word gloss of a sentence from the dictionary: each content word followed by its best
 * translation's stem in brackets ("Wir speichern [store] unsere Einbettungen [embed] ..."); stop words,
 * names and words the dictionary does not know stay as they are. It helps a reader follow a quotation in the
 * other language; it is not a translation (stems, no grammar), and is shown marked as a gloss.
 */
export function glossSentence(text: string, from: Language, translator: QueryTranslator): string {
  return text.replace(WORD, (word) => {
    const glossed = glossWord(word, from, translator);
    return glossed === undefined ? word : `${word} [${glossed}]`;
  });
}

/**
 * The sentence said with the gloss only: each content word the dictionary knows replaced by its best
 * translation's stem, stop words left out, names, numbers and unknown words kept ("Wir speichern unsere
 * Einbettungen in Vektor-Datenbanken." -> "store embed vector databas."). Not for reading: it lets a
 * monolingual embedding compare a text with a question in the other language.
 */
export function glossOnly(text: string, from: Language, translator: QueryTranslator): string {
  return text
    .replace(WORD, (word) =>
      isStopWord(word.toLowerCase(), from) ? '' : (glossWord(word, from, translator) ?? word),
    )
    .replace(/[ \t]{2,}/g, ' ')
    .replace(/ ([.,;:!?])/g, '$1')
    .trim();
}

/** The gloss of one word: its best translation's stem, part by part for a hyphenated word; undefined if unknown. */
function glossWord(word: string, from: Language, translator: QueryTranslator): string | undefined {
  const best = (w: string) => {
    const stem = stemOf(w.toLowerCase(), from);
    return stem === undefined ? undefined : translator.translate(stem, from)[0]?.term;
  };
  if (/\d/.test(word)) return undefined;
  // a hyphenated word as written, joined (German writes compounds both ways), else part by part
  const parts = word.split('-');
  const whole = best(word) ?? (parts.length > 1 ? best(parts.join('')) : undefined);
  if (whole) return whole;
  if (parts.length === 1) return undefined;
  const glossed = parts.map((p) => best(p));
  return glossed.some(Boolean) ? glossed.map((g, i) => g ?? parts[i]).join('-') : undefined;
}
