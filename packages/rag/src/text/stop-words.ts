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

// Adjectives on the `stopword` package's German list, with their forms there. They are content words (Snowball's
// list has none): "neue Version", "große Modelle", "möglich" say something; and matched by surface form, "neue"
// and "neuen" were stop words while "neu" and "neues" were terms. "hoch" stays: a verb prefix too, and as a part
// of "hochladen" it would split that word into "hoch" and "laden".
const ADJECTIVES_DE =
  words(`bekannt besser besten ehrlich ernst gross grosse grossen grosser grosses groß große
großen großer großes gut gute guter gutes kleine kleinen kleiner kleines kurz lang lange leicht möglich neue
neuen offen richtig satt schlecht`);

const STOP: Record<Language, ReadonlySet<string>> = {
  en: new Set([...eng, ...words(EXTRA_EN)].map((w) => w.toLowerCase())),
  de: new Set(
    [...deu.filter((w) => !NOT_STOP_DE.has(w) && !ADJECTIVES_DE.includes(w)), ...words(EXTRA_DE)].map((w) =>
      w.toLowerCase(),
    ),
  ),
};

// English function words as German text holds them in English quotations, titles and code ("Bag of Words",
// "# load the model", "for x in"), for the map by meaning, where they were German words (`de:and`, `de:the`) that
// the dictionary reaches only through look-alikes. The search index keeps them: dropped there they cost two
// answers of the tuning sets (chunk lengths moved by a token or two) and won none. Those also German as written
// are left out ("also", "was", "will", "an" are German stop words anyway).
const ENGLISH_IN_GERMAN = new Set(
  words(`a about across against along among and any are around as at be because been before being below between
both but by can could did do does during each either every few for from had has have having he how i if into is it
its itself many may me might more much my neither nor of off on onto or other others our should since some than
that the their them themselves then there they this those though through to too toward towards until upon us very
we were what when where whether which while who whom whose why with within without would yet you your`),
);
// ... and those that are German nouns when capitalised ("das All", "die Not", "die These"): only in lower case
const ENGLISH_IN_GERMAN_LOWER = new Set(words('after all mine most not such these'));

/**
 * Whether a word as written in German text is an English function word: lower case ("the", "not") or capitalised
 * ("The"), except the capitalised forms of German nouns ("Not", "These"); never in capitals ("IT", "ON").
 */
export function isEnglishInGerman(written: string): boolean {
  const lower = written.toLowerCase();
  if (written === lower) return ENGLISH_IN_GERMAN.has(lower) || ENGLISH_IN_GERMAN_LOWER.has(lower);
  return written === lower.charAt(0).toUpperCase() + lower.slice(1) && ENGLISH_IN_GERMAN.has(lower);
}

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
