import { newStemmer } from 'snowball-stemmers';
import type { Language } from '../types.js';

const STEMMERS = { en: newStemmer('english'), de: newStemmer('german') } as const;
const CACHE: Record<Language, Map<string, string>> = { en: new Map(), de: new Map() };
const CACHE_LIMIT = 200_000;
const LETTER = /\p{L}/u;
/** Stems computed in this process (not remembered from elsewhere). */
let computed = 0;

/**
 * The stemmer behind {@link stem} (package and version): stems remembered by another process are valid only for
 * the same one. A test holds it to the installed package.
 */
export const STEMMER_ID = 'snowball-stemmers@0.6.0';

/** Snowball stem of a lower-case word in the language (memoised). */
export function stem(word: string, language: Language): string {
  const cache = CACHE[language];
  let s = cache.get(word);
  if (s === undefined) {
    s = LETTER.test(word) ? STEMMERS[language].stem(word) : word;
    computed++;
    if (cache.size > CACHE_LIMIT) cache.clear();
    cache.set(word, s);
  }
  return s;
}

/**
 * This process's stems (`[language, word, stem]`, oldest first) and how many of them were computed here rather
 * than remembered: the transpiled Snowball stemmer takes ~60 µs a word, so a new process that stems the ~1,500
 * words of the passages it ranks spends a tenth of a second on it, and Node's `crp-rag` keeps them on disk.
 */
export function stemMemo(): { readonly entries: [Language, string, string][]; readonly computed: number } {
  const entries: [Language, string, string][] = [];
  for (const language of ['en', 'de'] as const)
    for (const [word, s] of CACHE[language]) entries.push([language, word, s]);
  return { entries, computed };
}

/**
 * Remembers stems computed by an earlier process with the same {@link STEMMER_ID} (they are not computed
 * again); words already known keep their stem.
 */
export function rememberStems(entries: Iterable<readonly [Language, string, string]>): void {
  for (const [language, word, s] of entries) {
    const cache = CACHE[language];
    if (cache.size >= CACHE_LIMIT) break;
    if (!cache.has(word)) cache.set(word, s);
  }
}
