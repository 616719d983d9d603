import { deu, eng } from 'stopword';
import type { Language } from '../types.js';

// The `stopword` package's English list is short (108 words): question words, auxiliaries and pronouns that
// users type in every question ("why", "does", "not", "will", "one") were missing and became keywords.
const EXTRA_EN = `a about above according across after afterwards again against all almost alone along already also
although always am among an and another any anybody anyhow anyone anything anyway anywhere are around as at be
became because become becomes been before beforehand behind being below beside besides between beyond both but by
can cannot could did do does doing done down during each either else elsewhere enough etc even ever every
everybody everyone everything everywhere except few for from further furthermore get gets got had has have
having he hence her here hereby herein hers herself him himself his how however i if in indeed instead into is it
its itself just least less let like likely may me meanwhile might mine more moreover most mostly much must my
myself namely neither never nevertheless no nobody none nor not nothing now nowhere of off often on once one ones
only onto or other others otherwise our ours ourselves out over own per perhaps please quite rather really said
same several shall she should since so some somebody somehow someone something sometime sometimes somewhere still
such than that the their theirs them themselves then thence there thereafter thereby therefore therein these
they this those though through throughout thus to together too toward towards under unless until up upon us use
used uses using usually very via was we well were what whatever when whence whenever where whereas wherever
whether which while whither who whoever whole whom whose why will with within without would yet you your yours
yourself yourselves e.g i.e vs becoming getting lets makes making takes taking ways`;
const EXTRA_DE = `bzw sowie wird werden wurde wurden worden kann können konnte könnte muss müssen sollte sollen soll
darf dürfen wofür wozu womit wodurch woran worauf worüber hierfür hierbei dabei dafür dazu darin daran darauf
jedoch also bzw usw z.b d.h u.a beim zum zur vom ins ans
allgemeine folgenden folgendes folgendem fürs gerne gleiche gleichen heißt könnten mache mehrere mehreren mehrerer
mittels möchten selben solange unseren unserem unseres vieles weiterer wenigen`;

const words = (s: string) => s.split(/\s+/).filter(Boolean);

// Nouns on the `stopword` package's German list (Snowball's has none): matched by surface form, "Teil" and "Weg"
// would be stop words while "Teile" and "Wege" are terms.
const NOT_STOP_DE = new Set(
  words(`beispiel ende gott jahr jahre jahren mann mensch menschen mittel ordnung sache schluss startseite suche tag tage
tagen teil uhr weg zeit`),
);

const STOP: Record<Language, ReadonlySet<string>> = {
  en: new Set([...eng, ...words(EXTRA_EN)].map((w) => w.toLowerCase())),
  de: new Set([...deu.filter((w) => !NOT_STOP_DE.has(w)), ...words(EXTRA_DE)].map((w) => w.toLowerCase())),
};

/**
 * Whether a lower-case word, as written, is a stop word of the language. Stop words are matched by their
 * surface form, never by their stem: "Ebene", "Seite", "name" stem like "eben", "seit", "namely", and were lost
 * when the check ran after stemming; the lists hold the inflected forms instead ("einem", "unseren", "getting").
 */
export function isStopWord(word: string, language: Language): boolean {
  return STOP[language].has(word);
}

/** The stop words of a language (lower case). */
export function stopWords(language: Language): ReadonlySet<string> {
  return STOP[language];
}
