import { stemOf, stemOfTerm } from '../text/analyzer.js';
import type { QueryConcept } from '../text/query.js';
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

/**
 * The question said in the other language as its search reads it, for a monolingual embedding of the chunks in
 * that language: each concept of the analysed question (`analyzeQuery`, in question order) as its heaviest
 * translation's stem, where a cognate counts as the best translation ("Metrik" -> "metric"), an inflected German
 * word is translated by its base form ("braucht" as "brauchen": "need") and a German compound without a one-word
 * translation by its parts ("Korrektheitsbewertung": "correct evalu"); a concept without translations (a name:
 * "LlamaIndex", "Captum") as written. Left out: two-word phrase concepts (their words are there) and a hyphenated
 * word whose parts are concepts of their own. `glossOnly` glosses each word as written by its first dictionary
 * sense, so inflected German verbs stayed German ("braucht", "beruht", "dient") and compounds untranslated.
 */
export function questionGloss(concepts: readonly QueryConcept[], from: Language): string {
  const to: Language = from === 'en' ? 'de' : 'en';
  const words: string[] = [];
  for (const c of concepts) {
    // a phrase concept has only translations; a whole ("Python-Version") is said by its parts
    if (!c.terms.some((t) => t.via === 'word')) continue;
    const whole = concepts.some(
      (d) => d !== c && d.start >= c.start && d.end <= c.end && d.end - d.start < c.end - c.start,
    );
    if (whole) continue;
    let best: { term: string; weight: number } | undefined;
    for (const t of c.terms)
      if (t.via === 'translation' && t.language === to && (!best || t.weight > best.weight)) best = t;
    words.push(best ? stemOfTerm(best.term) : c.word);
  }
  return words.join(' ');
}
