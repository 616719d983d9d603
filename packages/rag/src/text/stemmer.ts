import { newStemmer } from 'snowball-stemmers';
import type { Language } from '../types.js';

const STEMMERS = { en: newStemmer('english'), de: newStemmer('german') } as const;
const CACHE: Record<Language, Map<string, string>> = { en: new Map(), de: new Map() };
const CACHE_LIMIT = 200_000;

/** Snowball stem of a lower-case word in the language (memoised). */
export function stem(word: string, language: Language): string {
  const cache = CACHE[language];
  let s = cache.get(word);
  if (s === undefined) {
    s = /\p{L}/u.test(word) ? STEMMERS[language].stem(word) : word;
    if (cache.size > CACHE_LIMIT) cache.clear();
    cache.set(word, s);
  }
  return s;
}
