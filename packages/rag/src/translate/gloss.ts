import { stemOf, stemOfTerm } from '../text/analyzer.js';
import type { QueryConcept } from '../text/query.js';
import { isStopWord } from '../text/stop-words.js';
import type { Language } from '../types.js';
import { isCognate, sameSpelling, spelling } from './cognates.js';
import type { QueryTranslator, Translation } from './query-translator.js';

const WORD = /[\p{L}\p{N}_]+(?:-[\p{L}\p{N}_]+)*/gu;

/**
 * A word-by-word gloss of a sentence from the dictionary, for a reader of the other language: each content word
 * followed by its best translation as the dictionary writes it, in brackets ("Wir speichern [store] unsere
 * Einbettungen [embedding] in Vektor-Datenbanken [vector database]."; "modules are stored in a database
 * [Datenbank]"). Left as they are: stop words, numbers, words the dictionary does not know, names (acronyms
 * "RAG", camel case "LlamaIndex", in English a capitalised word inside a sentence, a word of a file name, URL
 * or dotted name "pinecone.io") and words the other language writes the same way (the dictionary pairs them
 * with their own cognate: "Pipeline", "Modul"/"module", "Index"), whose obscure senses would only mislead. It
 * is not a translation (one sense, no grammar), and is shown marked as a gloss. Without the dictionary's written
 * forms (`QueryTranslatorOptions.writtenForms`) the translations are stems. With `usage` (how many documents of
 * a corpus in a language use a stem: the index's document frequencies), of senses of comparable weight the one
 * the corpus uses in that sense most is shown ("Regel [rule]", not the heavier "[regime]"; see `bestForWord`).
 */
export function glossSentence(
  text: string,
  from: Language,
  translator: QueryTranslator,
  usage?: TermUsage,
): string {
  return text.replace(WORD, (word: string, offset: number) => {
    const end = offset + word.length;
    // numbers, identifiers, contractions ("don't": "don" is no word) and parts of names with dots or slashes
    if (/[\d_]/.test(word) || /^['’]\p{L}/u.test(text.slice(end, end + 2)) || inDottedName(text, offset, end))
      return word;
    const glossed = glossForReader(word, from, translator, startsSentence(text, offset), usage);
    return glossed === undefined ? word : `${word} [${glossed}]`;
  });
}

/**
 * How many documents in `language` use the stem `stem` (a phrase: stems joined by spaces); `RagIndex` counts
 * its chunks' index terms (`language:stem`).
 */
export type TermUsage = (stem: string, language: Language) => number;

/** A name as written: an acronym ("RAG", "LLMs") or camel case ("LlamaIndex", "PyTorch", "iPhone"). */
function isName(word: string): boolean {
  return /^\p{Lu}[\p{Lu}\p{N}]+s?$/u.test(word) || /\p{Ll}\p{Lu}/u.test(word);
}

/** Whether a word (from `start` to `end`) is part of a file name, URL, path or dotted name: "pinecone.io", "a/b". */
const JOINED = /[./\\@#:]/;
const ALNUM = /[\p{L}\p{N}]/u;

function inDottedName(text: string, start: number, end: number): boolean {
  const [joined, alnum] = [JOINED, ALNUM];
  return (
    (joined.test(text[end] ?? ' ') && alnum.test(text[end + 1] ?? ' ')) ||
    (joined.test(text[start - 1] ?? ' ') && alnum.test(text[start - 2] ?? ' '))
  );
}

/** Whether the word at `offset` begins a sentence (or the text, a list item, a clause after a colon). */
function startsSentence(text: string, offset: number): boolean {
  const before = text.slice(0, offset).replace(/[\s"'“”‘’([*•–-]+$/u, '');
  return before === '' || /[.!?:;]$/.test(before);
}

/**
 * Whether a stem and a translation of it are the same word of both languages (a loan word or cognate the
 * dictionary pairs: "pipelin"/"pipelin", "modul"/"modul", "metric"/"metrik"). Short stems must be spelt alike
 * (normalised as `isCognate` does): "rat" (German: advice) and "rate" are not.
 */
function sameWord(stem: string, translation: string): boolean {
  if (!isCognate(stem, translation)) return false;
  return Math.min(stem.length, translation.length) >= 5 || sameSpelling(stem, translation);
}

/**
 * The gloss of one word for a reader: its best translation as written, part by part for a hyphenated word;
 * undefined when there is nothing to add (unknown, a name, the same word in the other language). Of a stem's
 * translations, the one whose dictionary word is the written word itself is taken first: stems collide
 * ("Benutzer" and "benutzen" are both `benutz`; user, not use), then the heaviest. A capital says more inside a
 * sentence (`atStart` false): in English text such a word is a name, in German a noun.
 */
function glossForReader(
  word: string,
  from: Language,
  translator: QueryTranslator,
  atStart: boolean,
  usage: TermUsage | undefined,
): string | undefined {
  const kept = (w: string, first: boolean) =>
    isName(w) || (from === 'en' && (!atStart || !first) && /^\p{Lu}/u.test(w));
  const best = (w: string): { text: string; same: boolean } | undefined => {
    const stem = stemOf(w.toLowerCase(), from);
    if (stem === undefined) return undefined;
    const all = translator.translateAll(stem, from);
    const same = all.find((t) => sameWord(stem, t.term));
    if (same) return { text: translator.writtenForms(same, from)[0]?.translation ?? same.term, same: true };
    // stems can hide it ("server" and German `serv`): a pair whose two words are written alike, this word one of
    // them or its plural in -s (no other ending: "Daten" is no form of the loan word "Date", nor "based" of "Base")
    const lower = w.toLowerCase();
    const start = spelling(stem).slice(0, 3);
    // only translations that start alike can be written alike (their forms are read from disk)
    for (const t of all.filter((t) => spelling(t.term).startsWith(start)))
      for (const written of translator.writtenForms(t, from)) {
        const form = written.word.toLowerCase();
        if ((lower === form || lower === `${form}s`) && sameSpelling(form, written.translation))
          return { text: written.translation, same: true };
      }
    // every sense, not the search's heaviest few: Ding's sixth for "schreib" is already "author", not "write"
    const top = bestForWord(w, stem, all, from, translator, !atStart, usage);
    return top === undefined ? undefined : { text: top, same: false };
  };
  const parts = word.split('-');
  if (parts.every((p, i) => kept(p, i === 0))) return undefined;
  // a hyphenated word as written, joined (German writes compounds both ways), else part by part
  if (!parts.some((p, i) => kept(p, i === 0))) {
    const whole = best(word) ?? (parts.length > 1 ? best(parts.join('')) : undefined);
    if (whole) return whole.same || sameLetters(whole.text, word) ? undefined : whole.text;
    if (parts.length === 1) return undefined;
  }
  // a part the other language writes the same way is glossed with its spelling there ("Vektor-" -> "vector-")
  const glossed = parts.map((p, i) => (kept(p, i === 0) ? undefined : best(p)));
  if (!glossed.some((g) => g && !g.same)) return undefined;
  const out = glossed.map((g, i) => g?.text ?? parts[i]).join('-');
  return sameLetters(out, word) ? undefined : out;
}

/** Senses at least this share of the heaviest one's weight are of comparable weight (see `bestForWord`). */
const COMPARABLE = 0.5;
/** A sense used in fewer documents than this is no evidence for it (one stray "Menge" is no host). */
const MIN_USE = 2;
/** Senses below this share of the heaviest one's weight are not read from the word as written. */
const RARE = 0.25;
/**
 * How many times the heaviest sense's usage score another sense needs to replace it. On 317 quotations of the
 * bundled corpus, 1 (any more) also turned "Befehl" command into order; 2 also kept "Länge" len, not length.
 */
const CLEARLY = 1.5;

/**
 * Of a word's translations (heaviest first; `stem` is the word's), the written form of the first whose
 * dictionary word is the word as written or an inflection of it (in German of the same case first, unless
 * `capitalTells` is false: a sentence's first word), else of the heaviest (of equal weights, the one of fewest
 * words); the stem when there are no written forms. With `usage`, of those senses (written as the word, or all)
 * the one the corpus in the other language clearly uses most in this sense (see `mostUsed`): Ding's heaviest
 * sense is often the wrong one for a technical corpus ("Regel" regime before rule, "number" numerieren before
 * Anzahl). The written form also shows a part of speech: an English "-ed"/"-ing" form is glossed with a German
 * verb, a German noun only a verb's infinitive matched ("Schreiben") with the English "-ing" form.
 */
function bestForWord(
  word: string,
  stem: string,
  byWeight: readonly Translation[],
  from: Language,
  translator: QueryTranslator,
  capitalTells: boolean,
  usage: TermUsage | undefined,
): string | undefined {
  // among equally weighted senses a single word reads best: Ding ranks "data bank", "data warehouse" and
  // "database" alike for "Datenbank", and ties come in alphabetical order
  const words = (t: Translation) => t.term.split(' ').length;
  const translations = [...byWeight].sort((a, b) => b.weight - a.weight || words(a) - words(b));
  if (translations.length === 0) return undefined;
  const to: Language = from === 'en' ? 'de' : 'en';
  const pick = <S extends { t: Translation; text: string }>(senses: readonly S[]): S =>
    usage ? mostUsed(senses, stem, to, translator, usage) : senses[0]!;
  // German tells nouns by their capital ("Betrachten" contemplation, "betrachten" eye): first a word of the same case
  const sameCase = (a: string, b: string) =>
    (a[0] === a[0]!.toLowerCase()) === (b[0] === b[0]!.toLowerCase());
  for (const caseMatters of from === 'de' && capitalTells ? [true, false] : [false]) {
    const written: { t: Translation; text: string; word: string }[] = [];
    // a rare sense written as the word is no reading of it ("Neue", new member)
    for (const t of translations.filter((t) => t.weight >= RARE * translations[0]!.weight)) {
      const form = translator
        .writtenForms(t, from)
        .find((f) => inflects(word, f.word, from) && (!caseMatters || sameCase(word, f.word)));
      if (form) written.push({ t, text: form.translation, word: form.word });
    }
    if (written.length === 0) continue;
    // the part of speech the word shows: an English "-ed"/"-ing" form of a dictionary word (not a word of its
    // own: "embedding") is a verb or participle, so a German verb form (small, in -n, -nd or -t: "brauchen",
    // "fehlend") before a noun or an adjective ("based" is no "geringwertig")
    const inflected =
      from === 'en' && /(ed|ing)$/.test(word) && !written.some((w) => sameLetters(w.word, word));
    const small = inflected ? written.filter((w) => /^\p{Ll}.*(n|nd|t)$/u.test(w.text)) : [];
    const chosen = pick(small.length > 0 ? small : written);
    // a German noun that only a verb's infinitive matched is that verb as a noun: "das Schreiben", the writing
    const verbAsNoun = from === 'de' && !caseMatters && capitalTells && /^\p{Lu}/u.test(word);
    return verbAsNoun && /en$/.test(chosen.word) ? gerund(chosen.text) : chosen.text;
  }
  return pick(
    translations.map((t) => ({ t, text: translator.writtenForms(t, from)[0]?.translation ?? t.term })),
  ).text;
}

/**
 * Of senses (heaviest first), among the single words of comparable weight used in at least `MIN_USE` documents
 * of language `to`, the one used most in this sense: its weight times the square root of its term's document
 * frequency times the share of `stem` in its own translations' weights (how often a document that uses it means
 * the word: "Menge" is also host, but mostly amount and set); the first unless that scores `CLEARLY` more than
 * it. Document frequency is of the stem, not the sense, so it is evidence only where it is clear. The root keeps a stem found in nearly every chunk (a collision: German
 * `fad` is "Faden", string, and much else) from outweighing the dictionary; a log let the share decide alone
 * (a common word of many senses, "rule", lost to a rare one, "norm", for "Regel").
 */
function mostUsed<S extends { readonly t: Translation }>(
  senses: readonly S[],
  stem: string,
  to: Language,
  translator: QueryTranslator,
  usage: TermUsage,
): S {
  const first = senses[0]!;
  let best = first;
  let bestScore = 0;
  let firstScore = 0;
  for (const sense of senses) {
    if (sense.t.weight < COMPARABLE * first.t.weight) break;
    // a phrase's usage is only a bound (its words may stand apart): phrases are not chosen for it
    if (sense !== first && sense.t.term.includes(' ')) continue;
    const df = phraseUsage(sense.t.term, to, usage);
    if (df < MIN_USE) continue;
    const back = translator.translateAll(sense.t.term, to);
    const total = back.reduce((sum, b) => sum + b.weight, 0);
    const share = (back.find((b) => b.term === stem)?.weight ?? 0) / (total || 1);
    const score = sense.t.weight * Math.sqrt(df) * share;
    if (sense === first) firstScore = score;
    if (score > bestScore) [best, bestScore] = [sense, score];
  }
  // the dictionary's order stands unless the corpus clearly says otherwise
  return bestScore > CLEARLY * firstScore ? best : first;
}

/** Documents that use a term; a phrase counts as its rarest word (no more can use the whole phrase). */
function phraseUsage(term: string, language: Language, usage: TermUsage): number {
  return Math.min(...term.split(/[ -]/).map((w) => usage(w, language)));
}

/**
 * Whether `word` is `form` or a regular inflection of it: German endings (Datenbank-en, Benutzer-n, speicher-t
 * of speichern), English ones (database-s, provid-ing of provide, quer-ies of query).
 */
export function inflects(word: string, form: string, language: Language): boolean {
  const w = word.toLowerCase();
  const f = form.toLowerCase();
  if (w === f) return true;
  if (!w.startsWith(f.slice(0, Math.max(1, f.length - 2)))) return false;
  const endings =
    language === 'de'
      ? [
          [f, /^(e|en|er|es|em|n|s|ern|ens|nen|se|sen)$/],
          [f.replace(/e?n$/, ''), /^(e|t|st|te|ten|tet|et|est|end|ende|enden|ender|endes)$/],
        ]
      : [
          [f, /^(s|es|ed|d|ing|er|ers)$/],
          [f.replace(/e$/, ''), /^(ing|ed|es|er|ers)$/],
          [f.replace(/y$/, ''), /^(ies|ied)$/],
        ];
  return endings.some(
    ([base, ending]) =>
      w.startsWith(base as string) && (ending as RegExp).test(w.slice((base as string).length)),
  );
}

/**
 * The "-ing" form of a one-word English verb ("write" writing, "run" running, "see" seeing, "lie" lying); a
 * phrase or a form that is no verb's stays as it is.
 */
export function gerund(verb: string): string {
  if (!/^[a-z]{2,}$/.test(verb) || verb.endsWith('ing')) return verb;
  if (verb.endsWith('ie')) return `${verb.slice(0, -2)}ying`;
  if (/[^aeiouy]e$/.test(verb) && verb.length > 2) return `${verb.slice(0, -1)}ing`;
  // one short vowel before a final consonant doubles it (stop, plan, get; not edit, open, fix, show)
  if (/^[^aeiou]*[aeiou][bdgklmnprtvz]$/.test(verb)) return `${verb}${verb.at(-1)}ing`;
  return `${verb}ing`;
}

/** A gloss that only repeats the word ("io [io]") adds nothing. */
function sameLetters(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
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
      isStopWord(word.toLowerCase(), from) ? '' : (glossStem(word, from, translator) ?? word),
    )
    .replace(/[ \t]{2,}/g, ' ')
    .replace(/ ([.,;:!?])/g, '$1')
    .trim();
}

/**
 * The gloss of one word for an embedding: its best translation's stem, part by part for a hyphenated word;
 * undefined if unknown. (Names and same words are glossed too: retrieval was measured so.)
 */
function glossStem(word: string, from: Language, translator: QueryTranslator): string | undefined {
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
