import { deu, eng } from 'stopword';
import type { Language } from '../types.js';

const EXTRA_EN = [
  'also',
  'can',
  'could',
  'may',
  'might',
  'must',
  'shall',
  'us',
  'use',
  'used',
  'using',
  'via',
];
const EXTRA_DE = ['bzw', 'sowie', 'wird', 'werden', 'wurde', 'wurden', 'kann', 'können'];

const STOP: Record<Language, ReadonlySet<string>> = {
  en: new Set([...eng, ...EXTRA_EN].map((w) => w.toLowerCase())),
  de: new Set([...deu, ...EXTRA_DE].map((w) => w.toLowerCase())),
};

/** Whether a lower-case word is a stop word of the language. */
export function isStopWord(word: string, language: Language): boolean {
  return STOP[language].has(word);
}

/** The stop words of a language (lower case). */
export function stopWords(language: Language): ReadonlySet<string> {
  return STOP[language];
}
