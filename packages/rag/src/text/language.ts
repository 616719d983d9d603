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
  const { en, de } = languageEvidence(text);
  return de > en * 1.2 && de >= 1.5 ? 'de' : 'en';
}

/**
 * What {@link detectLanguage} decides by: per language, the function words only it has, and for German half a
 * point per word with ä, ö, ü or ß. Both 0 when the text gives no sign either way.
 */
export function languageEvidence(text: string): { en: number; de: number } {
  const { en: enOnly, de: deOnly } = exclusiveStopWords();
  let en = 0;
  let de = 0;
  for (const m of text.slice(0, 4000).matchAll(WORD)) {
    const w = m[0].toLowerCase();
    if (enOnly.has(w)) en++;
    else if (deOnly.has(w)) de++;
    if (/[äöüß]/.test(w)) de += 0.5;
  }
  return { en, de };
}

/** English and German names of the languages, for display. */
export const LANGUAGE_NAMES: Readonly<Record<Language, string>> = { en: 'English', de: 'German' };

// Function words of languages the analyser does not support, minus words English or German also use.
const OTHER_LATIN: readonly [string, ReadonlySet<string>][] = [
  [
    'French',
    new Set(
      'le la les des du une est sont pourquoi comment quel quelle quels quelles que qui dans pour avec sur ce cette ces je vous nous il elle ils elles pas au aux et ou où être faut peut'.split(
        ' ',
      ),
    ),
  ],
  [
    'Spanish',
    new Set(
      'el los las una unos es son por qué cómo cuál cuáles para con sobre esta este estos yo usted nosotros del al y o pero hay puede se'.split(
        ' ',
      ),
    ),
  ],
  [
    'Italian',
    new Set(
      'il lo gli una sono perché come quale quali che chi nella nel per con sulla questo questa io voi noi della del e o non si può'.split(
        ' ',
      ),
    ),
  ],
  [
    'Dutch',
    new Set(
      'het een zijn waarom hoe welke wat wie voor met op deze dit ik jij wij niet van de en of ook kan moet worden'.split(
        ' ',
      ),
    ),
  ],
  [
    'Portuguese',
    new Set(
      'os uma é são por que como qual quais para com sobre esta este eu você nós não da do e ou pode'.split(
        ' ',
      ),
    ),
  ],
];

// Scripts that neither English nor German is written in, with the language (or script) to name.
const OTHER_SCRIPTS: readonly [string, RegExp][] = [
  ['Japanese', /[\p{Script=Hiragana}\p{Script=Katakana}]/u],
  ['Korean', /\p{Script=Hangul}/u],
  ['Chinese', /\p{Script=Han}/u],
  ['Russian (Cyrillic script)', /\p{Script=Cyrillic}/u],
  ['Greek', /\p{Script=Greek}/u],
  ['Arabic', /\p{Script=Arabic}/u],
  ['Hebrew', /\p{Script=Hebrew}/u],
  ['Hindi (Devanagari script)', /\p{Script=Devanagari}/u],
  ['Thai', /\p{Script=Thai}/u],
];

/**
 * The language a text is written in when it is clearly neither English nor German (its script, or mostly
 * function words of French, Spanish, Italian, Dutch or Portuguese), else undefined. Names and technical
 * terms (Captum, LRP) do not count, so a short English question about them stays English.
 */
export function unsupportedLanguage(text: string): string | undefined {
  const letters = [...text.slice(0, 4000)].filter((c) => /\p{L}/u.test(c));
  if (letters.length === 0) return undefined;
  for (const [name, script] of OTHER_SCRIPTS) {
    const n = letters.filter((c) => script.test(c)).length;
    if (n / letters.length > 0.3) return name;
  }
  const words = [...text.slice(0, 4000).matchAll(WORD)].map((m) => m[0].toLowerCase());
  const { en: enOnly, de: deOnly } = exclusiveStopWords();
  const known = words.filter((w) => enOnly.has(w) || deOnly.has(w)).length;
  let best: [string, number] | undefined;
  for (const [name, set] of OTHER_LATIN) {
    const n = words.filter((w) => set.has(w)).length;
    if (n >= 2 && n > known && (!best || n > best[1])) best = [name, n];
  }
  return best?.[0];
}
