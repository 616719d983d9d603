import { stemOf } from '../text/analyzer.js';
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
  const best = (word: string) => {
    const stem = stemOf(word.toLowerCase(), from);
    return stem === undefined ? undefined : translator.translate(stem, from)[0]?.term;
  };
  return text.replace(WORD, (word) => {
    if (/\d/.test(word)) return word;
    // a hyphenated word as written, joined (German writes compounds both ways), else part by part
    const parts = word.split('-');
    const whole = best(word) ?? (parts.length > 1 ? best(parts.join('')) : undefined);
    if (whole) return `${word} [${whole}]`;
    if (parts.length === 1) return word;
    const glossed = parts.map((p) => best(p));
    return glossed.some(Boolean) ? `${word} [${glossed.map((g, i) => g ?? parts[i]).join('-')}]` : word;
  });
}
