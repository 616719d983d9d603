import type { HyphenLexicon } from '../ingest/pdf-layout.js';
import { stem } from '../text/stemmer.js';
import type { QueryTranslator } from './query-translator.js';

/**
 * The words the cross-lingual dictionary knows, as {@link dehyphenate} asks for them: a word is one whose
 * Snowball stem (English or German) the dictionary translates; a compound part is an English one. Offline and
 * deterministic for a given dictionary. A folder index keys its PDFs by the dictionary's fingerprint
 * (`UpdateOptions.loadKey`): installing, changing or removing the dictionary chunks them again, and only them.
 */
export function hyphenLexicon(translator: QueryTranslator): HyphenLexicon {
  const en = translator.lexicon('en');
  const de = translator.lexicon('de');
  return {
    isWord: (word) => en.has(stem(word, 'en')) || de.has(stem(word, 'de')),
    isCompoundPart: (word) => en.has(stem(word, 'en')),
  };
}
