import type { Language } from '../types.js';
import { stopWords } from './stop-words.js';

const WORD = /\p{L}+/gu;

// Function words of one language that are not words of the other ("die", "in", "an", "so" are both).
let exclusive: { en: ReadonlySet<string>; de: ReadonlySet<string> } | undefined;
function exclusiveStopWords() {
  if (!exclusive) {
    const en = stopWords('en');
    const de = stopWords('de');
    exclusive = {
      en: new Set([...en].filter((w) => !de.has(w))),
      de: new Set([...de].filter((w) => !en.has(w))),
    };
  }
  return exclusive;
}

/**
 * Guesses whether a text is German or English from function words that only one of the languages has, and
 * German letters (ä, ö, ü, ß). English when in doubt, since most technical text is. Looks at the first
 * 4,000 characters; a short question is enough.
 */
export function detectLanguage(text: string): Language {
  const { en: enOnly, de: deOnly } = exclusiveStopWords();
  let en = 0;
  let de = 0;
  for (const m of text.slice(0, 4000).matchAll(WORD)) {
    const w = m[0].toLowerCase();
    if (enOnly.has(w)) en++;
    else if (deOnly.has(w)) de++;
    if (/[äöüß]/.test(w)) de += 0.5;
  }
  return de > en * 1.2 && de >= 1.5 ? 'de' : 'en';
}

/** English and German names of the languages, for display. */
export const LANGUAGE_NAMES: Readonly<Record<Language, string>> = { en: 'English', de: 'German' };
