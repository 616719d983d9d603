import type { Language } from '../types.js';
import { isStopWord } from './stop-words.js';

const WORD = /\p{L}+/gu;

/**
 * Guesses whether a text is German or English from its stop words (English when in doubt). Works on
 * a sentence already; the first 4,000 characters are looked at.
 */
export function detectLanguage(text: string): Language {
  let en = 0;
  let de = 0;
  for (const m of text.slice(0, 4000).matchAll(WORD)) {
    const w = m[0].toLowerCase();
    if (isStopWord(w, 'en')) en++;
    if (isStopWord(w, 'de')) de++;
    if (/[äöüß]/.test(w)) de += 0.5;
  }
  return de > en * 1.3 && de >= 2 ? 'de' : 'en';
}
