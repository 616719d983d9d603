import {
  germanBaseForms,
  germanLemmaTerm,
  presentTenseInfinitives,
  splitCompound,
  stemOf,
  stemOfTerm,
} from '../text/analyzer.js';
import { languageEvidence } from '../text/language.js';
import type { QueryConcept } from '../text/query.js';
import {
  SEPARABLE,
  type Span,
  separableVerbs,
  spaceOnlyBetween,
  WORD,
  wordSpans,
} from '../text/separable-verbs.js';
import { isStopWord } from '../text/stop-words.js';
import type { Chunk, Language } from '../types.js';
import { isCognate, sameSpelling, spelling } from './cognates.js';
import type { QueryTranslator, Translation } from './query-translator.js';

/**
 * A word-by-word gloss of a sentence from the dictionary, for a reader of the other language: each content word
 * followed by its best translation as the dictionary writes it, in brackets ("Wir speichern [store] unsere
 * Einbettungen [embedding] in Vektor-Datenbanken [vector database]."; "modules are stored in a database
 * [Datenbank]"). Left as they are: stop words, numbers, words the dictionary does not know, names (acronyms
 * "RAG", camel case "LlamaIndex", in English a capitalised word inside a sentence, a word of a file name, URL,
 * e-mail address or dotted name "pinecone.io"), what is no word of its own (a contraction's parts "don't", a
 * unit after a number "10 ms"), words of the other language (its function words, "Maintainer and Changed-By",
 * and the words next to them) and words the other language writes the same way (the dictionary pairs them
 * with their own cognate: "Pipeline", "Modul"/"module", "Index"), whose obscure senses would only mislead. A
 * German verb is glossed with its separable particle from the clause's end ("führt ... aus": carry out) and
 * from its base form when the dictionary lacks the inflected one ("liest": read; "installiert": install). It
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
  wordUse?: WordUsage,
): string {
  const words = wordSpans(text);
  const foreign = otherLanguage(text, words, from);
  // per verb's position the verb with its particle ("ausführen" as "ausführt"), '' at the particle's
  const particles = new Map<number, string>();
  if (from === 'de')
    for (const v of separableVerbs(text, (w) => lookUp(w, 'de', translator), words)) {
      particles.set(v.verb, v.joined);
      particles.set(v.particle, '');
    }
  let out = '';
  let at = 0;
  for (const [i, w] of words.entries()) {
    out += text.slice(at, w.end);
    at = w.end;
    const joined = particles.get(i);
    // a particle glossed with its verb says nothing more
    if (foreign[i] || joined === '' || !isWord(text, w.start, w.end)) continue;
    // the words next to it (only spaces between), for the part of speech; '' after it: punctuation or the end
    const previous = words[i - 1];
    const next = words[i + 1];
    const joinedBefore = previous && spaceOnlyBetween(text, previous, w) ? previous.text : undefined;
    // an English adverb between tells nothing: "you only need", "to simply load" read as "you need", "to load"
    const twoBack = words[i - 2];
    const before =
      from === 'en' &&
      joinedBefore !== undefined &&
      previous &&
      isAdverb(joinedBefore) &&
      twoBack &&
      spaceOnlyBetween(text, twoBack, previous) &&
      !/ly$/i.test(w.text)
        ? twoBack.text
        : joinedBefore;
    const after = next
      ? spaceOnlyBetween(text, w, next)
        ? next.text
        : /^\s*\p{L}/u.test(text.slice(w.end))
          ? undefined
          : ''
      : '';
    const glossed = glossForReader(
      joined ?? w.text,
      from,
      translator,
      startsSentence(text, w.start),
      usage,
      before,
      after,
      wordUse,
    );
    if (glossed !== undefined) out += ` [${glossed}]`;
  }
  return out + text.slice(at);
}

/**
 * Whether the word from `start` to `end` is a word of its own, to gloss: not a number or identifier ("x_1",
 * "3D"), not a part of a contraction ("don" and "t" of "don't", "s" of "Rag's"), of a file name, URL, e-mail
 * address or dotted name ("pinecone.io", "a/b", "maintainer@debian.org"), nor a unit after a number ("10 ms").
 */
function isWord(text: string, start: number, end: number): boolean {
  const word = text.slice(start, end);
  if (/[\d_]/.test(word)) return false;
  // nor a possessive's head, which may be a name at a sentence's start ("Rag's")
  if (inContraction(text, start, end) || /^['’]\p{L}/u.test(text.slice(end, end + 2))) return false;
  if (inDottedName(text, start, end)) return false;
  return !(word.length <= 3 && /\d\s?$/.test(text.slice(Math.max(0, start - 2), start)));
}

/**
 * Whether the word from `start` to `end` is a clitic ("t" of "don't", "s" of "it's") or the head of a negation
 * ("don" of "don't", "can" of "can't"): a function word. The head of a possessive ("network" of "network's") is
 * a word.
 */
function inContraction(text: string, start: number, end: number): boolean {
  return (
    /\p{L}['’]$/u.test(text.slice(Math.max(0, start - 2), start)) ||
    /^['’]t\b/u.test(text.slice(end, end + 3))
  );
}

/**
 * Which words of a text in `from` are of the other language: its function words ("and", "for" in a German
 * sentence; the words `languageEvidence` counts for it alone) and the words right next to one (only spaces
 * between), which a quoted title or field name of the other language brings along ("Maintainer and Changed-By",
 * "lesson on Neural Networks"). Glossed as words of `from` they were look-alikes: "and" as German `and`, change.
 */
function otherLanguage(text: string, words: readonly Span[], from: Language): boolean[] {
  const other: Language = from === 'de' ? 'en' : 'de';
  // a contraction's pieces ("s" of "Rag's") are no function words of either
  const own = words.map((w) => {
    if (!isWord(text, w.start, w.end)) return false;
    const evidence = languageEvidence(w.text);
    return evidence[other] >= 1 && evidence[from] === 0;
  });
  const joined = (a: number, b: number) => spaceOnlyBetween(text, words[a]!, words[b]!);
  return words.map(
    (_, i) =>
      own[i]! || (i > 0 && own[i - 1]! && joined(i - 1, i)) || (own[i + 1] === true && joined(i, i + 1)),
  );
}

/**
 * How many documents in `language` use the stem `stem` (a phrase: stems joined by spaces); `RagIndex` counts
 * its chunks' index terms (`language:stem`).
 */
export type TermUsage = (stem: string, language: Language) => number;

/**
 * The `WordUsage` of chunks: per language, how many chunks use each word (letters only, in lower case), and in
 * German how many use a word of each base form (`germanBaseForms`: "genannt" counts for nennen, "Dateien" for
 * Datei).
 */
export function chunkWordUsage(chunks: readonly Pick<Chunk, 'text' | 'metadata'>[]): WordUsage {
  const counts = new Map<string, number>();
  for (const c of chunks)
    for (const w of new Set(c.text.toLowerCase().match(/\p{L}+/gu))) {
      const key = `${c.metadata.language}:${w}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  // the base forms only when first asked for (a German gloss of English text: about 0.1 s for 400 chunks)
  let bases: Map<string, number> | undefined;
  const countBases = () => {
    const out = new Map<string, number>();
    const basesOf = new Map<string, readonly string[]>();
    for (const c of chunks) {
      if (c.metadata.language !== 'de') continue;
      // the words as written too: a document that writes "nennen" and "nennt" counts once for nennen
      const seen = new Set<string>();
      for (const w of new Set(c.text.toLowerCase().match(/\p{L}{4,}/gu))) {
        let forms = basesOf.get(w);
        if (forms === undefined) {
          forms = germanBaseForms(w);
          basesOf.set(w, forms);
        }
        seen.add(w);
        for (const b of forms) seen.add(b);
      }
      for (const b of seen) out.set(b, (out.get(b) ?? 0) + 1);
    }
    return out;
  };
  return (word, language, asBase = false) => {
    const written = counts.get(`${language}:${word}`) ?? 0;
    // base forms are counted for words of four letters or more (`germanBaseForms` guesses none shorter)
    if (!asBase || language !== 'de' || !/^\p{L}{4,}$/u.test(word)) return written;
    bases ??= countBases();
    return bases.get(word) ?? 0;
  };
}

/**
 * How many documents in `language` use a word exactly as written (in lower case: "sizes", "recorded"); the
 * gloss adds up a word's regular inflections itself. With `asBase` (German), also the documents that use a word of
 * which it is the base form ("nennen": genannt, nennt), each document once (see `chunkWordUsage`). `RagEngine` counts its chunks' words.
 */
export type WordUsage = (word: string, language: Language, asBase?: boolean) => number;

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
  before?: string,
  after?: string,
  wordUse?: WordUsage,
): string | undefined {
  const kept = (w: string, first: boolean) =>
    isName(w) || (from === 'en' && (!atStart || !first) && /^\p{Lu}/u.test(w));
  const best = (w: string): { text: string; same: boolean } | undefined => {
    const found = lookUp(w, from, translator, atStart && w === word.split('-')[0]);
    if (found === undefined) return undefined;
    const { stem, all } = found;
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
    // a noun read as another word ("Mitglied" as Glied) has that word's compounds, not its own
    const asWritten = found.word === w && /^\p{Lu}/u.test(w);
    const top = bestForWord(
      found.word,
      stem,
      all,
      from,
      translator,
      !atStart,
      usage,
      before,
      after,
      wordUse,
      asWritten,
    );
    if (top === undefined) return undefined;
    const fromBase = from === 'de' && wordUse ? baseSense(w, top, atStart, translator, wordUse) : undefined;
    return { text: fromBase ?? top, same: false };
  };
  // a small German word whose own entry gives only senses the English documents never write (a participle or
  // adjective read as a literary word: "bearbeitet [wrought]") is read by its base form, the verb or adjective
  // the search reads for it ("bearbeiten": edit), when the English documents write that one's sense
  const baseSense = (w: string, top: string, first: boolean, tr: QueryTranslator, words: WordUsage) => {
    if (first || !/^\p{Ll}+$/u.test(w) || usageInAnyInflection(top, words) > 0) return undefined;
    // an infinitive the dictionary writes as it is is no adjective's inflection ("vornehmen" is no form of vornehm)
    const own = stemOf(w, 'de');
    if (
      own &&
      germanBase(w, tr) === w.slice(0, -2) &&
      tr.translateAll(own, 'de').some((t) => writesAsIs(t, w, tr))
    )
      return undefined;
    const base = germanBase(w, tr);
    const baseStem = base === undefined ? undefined : stemOf(base.toLowerCase(), 'de');
    if (base === undefined || baseStem === undefined || base.toLowerCase() === w.toLowerCase())
      return undefined;
    const all = tr.translateAll(baseStem, 'de');
    if (all.length === 0 || !/^\p{Ll}/u.test(base)) return undefined;
    const sense = bestForWord(base, baseStem, all, 'de', tr, true, usage, before, after, words);
    return sense !== undefined && usageInAnyInflection(sense, words) >= MIN_USE ? sense : undefined;
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

/**
 * A word's stem in the dictionary and its translations, with the word to read their written forms by: the word
 * itself, or, for a German word the dictionary lacks, its base form (`germanBase`: "liest" as "lesen"; not
 * for a sentence's first word, `atStart`); undefined when neither is known.
 */
function lookUp(
  word: string,
  from: Language,
  translator: QueryTranslator,
  atStart = false,
): { stem: string; word: string; all: readonly Translation[] } | undefined {
  const stem = stemOf(word.toLowerCase(), from);
  if (stem === undefined) return undefined;
  const all = translator.translateAll(stem, from);
  if (all.length > 0) return { stem, word, all };
  // a sentence's first word is no noun by its capital, nor clearly a verb ("Falls": if, not Fall)
  if (from !== 'de' || atStart || !/^\p{L}+$/u.test(word)) return undefined;
  const base = germanBase(word, translator);
  const baseStem = base === undefined ? undefined : stemOf(base.toLowerCase(), 'de');
  if (base === undefined || baseStem === undefined) return undefined;
  const known = translator.translateAll(baseStem, 'de');
  return known.length > 0 ? { stem: baseStem, word: base, all: known } : undefined;
}

/**
 * The base form of a German word whose own stem the dictionary lacks, as the analyser finds it for the index
 * (`germanLemmaTerm`: "installiert" installieren, "hochgeladen" hochladen, "Probleme" Problem); else of a strong
 * verb's present tense ("liest" lesen, "hilft" helfen, see `presentTenseInfinitives`) or a separable verb's
 * zu-infinitive ("hochzuladen" hochladen); else a noun without a
 * verb particle it starts with ("Mitglied": Glied, member). A noun keeps its capital.
 */
function germanBase(word: string, translator: QueryTranslator): string | undefined {
  const lower = word.toLowerCase();
  const noun = /^\p{Lu}/u.test(word);
  // the dictionary must write the base form so, as a word of the same case: "gefolgt" is folgen (follow),
  // not Gefolge (hangers-on), though both stem alike
  const written = (f: string, capital = noun) => {
    const s = stemOf(f, 'de');
    if (s === undefined) return false;
    return translator
      .translateAll(s, 'de')
      .some((t) =>
        translator
          .writtenForms(t, 'de')
          .some((w) => w.word.toLowerCase() === f && /^\p{Lu}/u.test(w.word) === capital),
      );
  };
  const cased = (f: string) => (noun ? f[0]!.toUpperCase() + f.slice(1) : f);
  const lexicon = translator.lexicon('de');
  const term = germanLemmaTerm(lower, lexicon);
  if (term !== undefined) {
    const s = stemOfTerm(term);
    const form = germanBaseForms(lower).find((f) => stemOf(f, 'de') === s && written(f));
    if (form) return cased(form);
  }
  const guesses = noun
    ? SEPARABLE.filter((p) => lower.startsWith(p) && lower.length - p.length >= 4).map((p) =>
        lower.slice(p.length),
      )
    : [...germanBaseForms(lower), ...presentTenseInfinitives(lower)];
  const form = guesses.find((f) => written(f));
  if (form !== undefined) return cased(form);
  // a zu-infinitive is a verb for sure: Ding's nominalised infinitive ("das Hochladen") confirms it too
  return noun ? undefined : withoutInfinitiveZu(lower).find((f) => written(f) || written(f, true));
}

/**
 * A separable verb's zu-infinitive without its zu, which stands between the particle and the verb ("hochzuladen"
 * hochladen, "auszuführen" ausführen, "anzuzeigen" anzeigen). Only guesses: a caller keeps one the dictionary knows.
 */
function withoutInfinitiveZu(word: string): string[] {
  return SEPARABLE.filter((p) => word.startsWith(`${p}zu`) && word.length - p.length - 2 >= 4).map(
    (p) => p + word.slice(p.length + 2),
  );
}

/** Senses at least this share of the heaviest one's weight are of comparable weight (see `bestForWord`). */
const COMPARABLE = 0.5;
/** A sense used in fewer documents than this is no evidence for it (one stray "Menge" is no host). */
const MIN_USE = 2;
/**
 * A sense of which the word as written has less than this share (its written pairs' part of the stem pair's
 * weight) weighs that share over it: a stem pair often sums one entry split over two parts of speech (Befehl,
 * befehligen: command, 47%; remote, remotely: entfernt, 33% each), and each is then a whole reading of its word.
 */
const HALF = 0.5;
/**
 * A sense below this share of the heaviest one's weight is one the dictionary clearly puts behind: it does not
 * replace a sense the corpus never uses (see `usedSense`). On 469 German sentences glossed in English, 0.25 also
 * gave "austauscht [transpose]", "Messung [reading]", "Schäden [loss]" and "verwirrende [entangle]" (6 lines
 * worse, 1 better: "Präzision [accuracy]").
 */
const BEHIND = 0.4;
/** Senses below this share of the heaviest one's weight are not read from the word as written. */
const RARE = 0.25;
/**
 * How many times the heaviest sense's usage score another sense needs to replace it. On 317 quotations of the
 * bundled corpus, 1 (any more) also turned "Befehl" command into order; 2 also kept "Länge" len, not length.
 */
const CLEARLY = 1.5;
/**
 * How many times the chosen sense's standing a compound's head that is no sense of the word at all needs (a sense
 * of the word needs `CLEARLY` times; see `compoundSense`).
 */
const UNLISTED = 2;

/**
 * Of a word's translations (heaviest first; `stem` is the word's), the written form of the first whose
 * dictionary word is the word as written or an inflection of it (in German of the same case first, unless
 * `capitalTells` is false: a sentence's first word), else of the heaviest (of equal weights, the one of fewest
 * words); the stem when there are no written forms. With `usage`, of those senses (written as the word, or all)
 * the one the corpus in the other language clearly uses most in this sense (see `mostUsed`): Ding's heaviest
 * sense is often the wrong one for a technical corpus ("Regel" regime before rule, "number" numerieren before
 * Anzahl). The written form also shows a part of speech (see `partOfSpeech`): an English verb ("-ed"/"-ing",
 * after "to", a modal or a pronoun) is glossed with a German verb, an English noun after an article with a
 * German noun, a German noun only a verb's infinitive matched ("Schreiben") with the English "-ing" form, and a
 * small German verb that only the infinitive as a noun matched ("lesen": Lesen, reading) with the English verb.
 */
function bestForWord(
  word: string,
  stem: string,
  byWeight: readonly Translation[],
  from: Language,
  translator: QueryTranslator,
  capitalTells: boolean,
  usage: TermUsage | undefined,
  before?: string,
  after?: string,
  wordUse?: WordUsage,
  nounAsWritten = false,
): string | undefined {
  // among equally weighted senses a single word reads best: Ding ranks "data bank", "data warehouse" and
  // "database" alike for "Datenbank", and ties come in alphabetical order
  const words = (t: Translation) => t.term.split(' ').length;
  const translations = [...byWeight].sort((a, b) => b.weight - a.weight || words(a) - words(b));
  if (translations.length === 0) return undefined;
  const to: Language = from === 'en' ? 'de' : 'en';
  const pick = <S extends { t: Translation; text: string; word?: string }>(senses: readonly S[]): S => {
    // a German compound's phrase says its parts ("Datensatz [data record]"); another word's only qualifies it
    const compound =
      from === 'de' && splitCompound(word.toLowerCase(), translator.lexicon('de')) !== undefined;
    const ordered = compound ? senses : headFirst(senses);
    const chosen = usage ? mostUsed(ordered, stem, to, translator, usage) : ordered[0]!;
    if (!wordUse) return chosen;
    const used = usedSense(chosen, ordered, stem, to, translator, wordUse);
    return nounAsWritten && to === 'en' ? compoundSense(used, ordered, stem, translator, wordUse) : used;
  };
  const small = (w: string) => w[0] === w[0]!.toLowerCase();
  // German tells nouns by their capital ("Betrachten" contemplation, "betrachten" eye): first a word of the same case
  const sameCase = (a: string, b: string) => small(a) === small(b);
  // a small German verb matches its infinitive as a noun ("lesen": "Lesen", reading), the only form of many pairs
  const verbNoun = (f: string) => from === 'de' && small(word) && !small(f) && /en$/.test(f);
  // ... where the noun says the verb, as an English "-ing" form: not "Vorhaben" scheme for "hat ... vor" (intend)
  const nominalised = (f: { word: string; translation: string }) =>
    verbNoun(f.word) && /ing$/.test(f.translation);
  const speech = partOfSpeech(word, from, before, after);
  const isVerb = (w: { text: string }) => /^\p{Ll}.*(n|nd|t)$/u.test(w.text);
  const isNoun = (w: { text: string }) => /^\p{Lu}/u.test(w.text);
  // a small German word in "-en" the dictionary writes as it is (an infinitive) is that word or its noun
  // ("Schreiben"), not another word's inflection: "vornehmen" administer, not vornehm+en (genteel, high)
  const asItIs = from === 'de' && /^\p{Ll}+en$/u.test(word);
  // a rare sense written as the word is no reading of it ("Neue", new member), unless no other is: a stem pair's
  // heaviest form may be another word's ("understand" stems as understandable: verständlich; verstehen is rare)
  for (const floor of [RARE, 0])
    for (const caseMatters of from === 'de' && capitalTells ? [true, false] : [false]) {
      // a stem pair sums Ding's entries of words that stem alike: a sense of which the word as written is a minor
      // part weighs less ("ansehen" is a small part of anseh/respect, mostly the noun Ansehen; see `HALF`)
      const common = translations.filter((t) => t.weight >= floor * translations[0]!.weight);
      const asIs = asItIs && common.some((t) => writesAsIs(t, word, translator));
      const matched = common.map((t) => {
        const forms = translator
          .writtenForms(t, from)
          .filter(
            (f) =>
              (asIs ? sameLetters(f.word, word) : inflects(word, f.word, from)) &&
              (!caseMatters || sameCase(word, f.word) || nominalised(f)),
          );
        const share = forms.reduce((sum, f) => sum + f.share, 0);
        return { forms, t: { term: t.term, weight: t.weight * Math.min(1, share / HALF) } };
      });
      matched.sort((a, b) => b.t.weight - a.t.weight || words(a.t) - words(b.t));
      const written: { t: Translation; text: string; word: string }[] = [];
      for (const { t, forms: all } of matched.filter((m) => m.forms.length > 0)) {
        const forms = all.map((f) => ({ t, text: f.translation, word: f.word }));
        // of one pair's forms, one of the word's part of speech: "lesen" lesen (not Lesen); an English base form
        // (no "-s", "-ed", "-ing", which keep the dictionary's first) as written, a noun first unless it shows a
        // verb ("the network": Vernetzung, not vernetzen; "to store": speichern)
        const exact = forms.filter((f) => sameLetters(f.word, word));
        const pool = exact.length > 0 ? exact : forms;
        const form =
          from === 'de'
            ? (pool.find((f) => !capitalTells || sameCase(word, f.word)) ?? pool[0])
            : speech === 'verb'
              ? (forms.find(isVerb) ?? forms[0])
              : speech === 'noun' || !/([^s]s|ed|ing)$/.test(word)
                ? (pool.find(isNoun) ?? pool[0])
                : forms[0];
        if (form) written.push(form);
      }
      if (written.length === 0) continue;
      // the part of speech the word shows: an English verb, or a participle (not a word of its own in "-ing":
      // "embedding"), is glossed with a German verb form (small, in -n, -nd or -t: "brauchen", "fehlend") before a
      // noun or an adjective ("based" is no "geringwertig"); a noun after an article with a German noun
      const inflected =
        from === 'en' && /(ed|ing)$/.test(word) && !written.some((w) => sameLetters(w.word, word));
      const kind =
        inflected || speech === 'verb'
          ? written.filter(isVerb)
          : speech === 'noun' && from === 'en'
            ? written.filter(isNoun)
            : [];
      const chosen = pick(kind.length > 0 ? kind : written);
      // a German noun that only a verb's infinitive matched is that verb as a noun: "das Schreiben", the writing
      const verbAsNoun = from === 'de' && !caseMatters && capitalTells && /^\p{Lu}/u.test(word);
      if (verbAsNoun && /en$/.test(chosen.word)) return gerund(chosen.text);
      if (!verbNoun(chosen.word))
        return from === 'de' && wordUse && small(word) && small(chosen.word)
          ? nominalisedVerbSense(chosen, translations, translator, wordUse)
          : chosen.text;
      // the verb as the dictionary writes it among the English stem's words ("read", not "reade")
      const english = translator.translateAll(chosen.t.term, to);
      return verbOfGerund(chosen.text, (w) =>
        english.some((t) => translator.writtenForms(t, to).some((f) => f.word === w)),
      );
    }
  return pick(
    translations.map((t) => ({ t, text: translator.writtenForms(t, from)[0]?.translation ?? t.term })),
  ).text;
}

/** Whether a German translation pair writes the German word exactly as `word` (the same letters and case). */
function writesAsIs(t: Translation, word: string, translator: QueryTranslator): boolean {
  return translator.writtenForms(t, 'de').some((f) => f.word === word);
}

/**
 * Senses (heaviest first) with a heaviest phrase's head put first when it is a sense of its own of comparable
 * weight: "computer file" is a kind of file, and "Datei [file]" reads as the word; the phrase only qualifies it
 * (not for a German compound, whose parts the phrase says: "Datensatz [data record]").
 */
function headFirst<S extends { readonly t: Translation }>(senses: readonly S[]): readonly S[] {
  const first = senses[0];
  if (first === undefined || !first.t.term.includes(' ')) return senses;
  const head = first.t.term.slice(first.t.term.lastIndexOf(' ') + 1);
  const word = senses.find((s) => s.t.term === head && s.t.weight >= COMPARABLE * first.t.weight);
  return word === undefined ? senses : [word, ...senses.filter((s) => s !== word)];
}

/** English words after which a word is a noun: articles, possessives, quantifiers ("the size", "its rule"). */
const NOUN_AFTER = new Set(
  'a an the this these those its their our your my his each every another same such no'.split(' '),
);
/**
 * English words after which a word is a verb: "to", modals, subject pronouns ("we store", "it returns"), and
 * the "t" of a negation ("don't need").
 */
const VERB_AFTER = new Set(
  'to can could will would should must may might shall cannot i we you they he she it does do did not t'.split(
    ' ',
  ),
);
/**
 * English words that open a verb's object: a word right before one is a verb ("returns a value", "visit the
 * page", "set them"), not a noun ("Rückkehr", "Besuch").
 */
const OBJECT_AFTER = new Set(
  'a an the its their our your his each every any some all both them us'.split(' '),
);
/** English words (a verb's subject) after which a form in "-s" is a verb, not a plural ("it returns"). */
const SINGULAR_SUBJECT = /^(he|she|it|which|that|who|this)$/;
/** English prepositions after which a word ends a noun phrase: "approach for", "rules of". */
const NOUN_BEFORE = new Set('of for with in on from by into between to'.split(' '));
/**
 * An English word that looks like an adjective by its ending or hyphen ("canonical", "naive", "white-box",
 * "gradient-based"): the word after it is a noun, when a preposition ends the phrase.
 */
const ADJECTIVE = /^\p{Ll}[\p{Ll}-]*(al|ic|ive|ous|ful|less|able|ible|ed|ar|ary|ent|ant|-\p{Ll}+)$/u;

/** English verbs in "-ly", which are no adverbs: "we apply rules" is no "we rules". */
const VERBS_IN_LY = /^(ap|sup|re|im|com|multi)ply$/;

/** An English adverb that stands between a subject or "to" and its verb ("only", "also", "simply"). */
function isAdverb(word: string): boolean {
  return (
    (/^\p{Ll}{3,}ly$/u.test(word) && !VERBS_IN_LY.test(word)) ||
    /^(only|also|just|often|always|never|still|even|then|already|now|first)$/.test(word)
  );
}

/**
 * The part of speech an English word shows by its neighbours, or undefined: a noun after an article or the like
 * (`NOUN_AFTER`) that ends its phrase (`after` is a function word, or '' for punctuation or the end: "the
 * current development" is an adjective); a verb after "to", a modal, a pronoun or a negation (`VERB_AFTER`), but
 * not an adverb ("to simply load") nor a form in "-s" after anything but he, she, it ("applied to images"); a
 * verb before its object (`OBJECT_AFTER`: "returns a value"); a plural (in "-s", not after he, she, it, which,
 * that) that ends its phrase ("feature maps are", "LRP rules."); a word after an
 * adjective (`ADJECTIVE`) that a preposition or punctuation ends ("a canonical approach for"). A German word shows it by its capital (see
 * `bestForWord`).
 */
function partOfSpeech(
  word: string,
  from: Language,
  before: string | undefined,
  after: string | undefined,
): 'noun' | 'verb' | undefined {
  if (from !== 'en') return undefined;
  const b = before?.toLowerCase();
  const a = after?.toLowerCase();
  // a function word or punctuation ends a noun phrase; an adverb follows a verb ("supports only")
  const endsPhrase =
    after === '' || (a !== undefined && isStopWord(a, 'en') && !OBJECT_AFTER.has(a) && !isAdverb(a));
  if (b !== undefined && NOUN_AFTER.has(b)) return endsPhrase ? 'noun' : undefined;
  if (b !== undefined && VERB_AFTER.has(b))
    return /ly$/.test(word) || (/[^s]s$/.test(word) && !/^(he|she|it)$/.test(b)) ? undefined : 'verb';
  if (/ly$/.test(word)) return undefined;
  if (a !== undefined && OBJECT_AFTER.has(a)) return 'verb';
  if (/[^aiosu]s$/.test(word) && !SINGULAR_SUBJECT.test(b ?? '') && endsPhrase) return 'noun';
  const adjective = b !== undefined && ADJECTIVE.test(b);
  return adjective && !/(s|ed|ing)$/.test(word) && (after === '' || NOUN_BEFORE.has(a ?? ''))
    ? 'noun'
    : undefined;
}

/**
 * The English verb of an "-ing" form (the inverse of `gerund`): "reading" read, "uploading" upload, "writing"
 * write, "running" run; of two candidates ("read", "reade") the one `known` (a word the dictionary writes), else
 * the one with "e" after a single vowel and consonant ("computing" compute, but "editing" edit if known). Any
 * other form is returned as it is.
 */
export function verbOfGerund(form: string, known: (word: string) => boolean = () => false): string {
  if (!/^[a-z]{2,}ing$/.test(form)) return form;
  const base = form.slice(0, -3);
  const doubled = /(.)\1$/.test(base) ? base.slice(0, -1) : undefined;
  const candidates = [doubled, base, `${base}e`].filter(
    (c): c is string => c !== undefined && gerund(c) === form,
  );
  if (candidates.length <= 1) return candidates[0] ?? form;
  return (
    candidates.find(known) ??
    (/[^aeiou][aeiou][^aeiouwxy]$/.test(base) && candidates.includes(`${base}e`)
      ? `${base}e`
      : candidates[0]!)
  );
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

/**
 * Of senses, `chosen` unless the corpus's English documents never use its word in any inflection
 * (`usageInAnyInflection`): a technical text rarely means a sense its own language's documents never say
 * ("größeren [greatness]", "geeigneten [applicative]", "Präzision [concision]"). Then the sense they use most
 * for this word: of the senses of the same German reading (the same written form: "bestehenden" read as
 * bestehend, existent, is not glossed by bestehen's "obtain"), single words that are no function words, at
 * least `BEHIND` of the heaviest sense's weight (a sense the dictionary clearly puts behind stays behind) and
 * used in `MIN_USE` documents or more, the one with the highest weight times the square root of its usage
 * times how directly it translates back (`stem`'s weight among its German translations over the heaviest's:
 * "size" is first Schlichte, sizing glue, then Größe).
 * None such: `chosen`.
 */
function usedSense<S extends { readonly t: Translation; readonly text: string; readonly word?: string }>(
  chosen: S,
  senses: readonly S[],
  stem: string,
  to: Language,
  translator: QueryTranslator,
  words: WordUsage,
): S {
  if (writtenUsage(chosen.text, to, words) > 0) return chosen;
  const heaviest = Math.max(...senses.map((s) => s.t.weight));
  const reading = chosen.word?.toLowerCase();
  let best = chosen;
  let bestScore = 0;
  for (const sense of senses) {
    if (sense === chosen || sense.t.weight < BEHIND * heaviest || sense.t.term.includes(' ')) continue;
    if (sense.word?.toLowerCase() !== reading || isStopWord(sense.text.toLowerCase(), to)) continue;
    const use = writtenUsage(sense.text, to, words);
    if (use < MIN_USE) continue;
    const back = translator.translateAll(sense.t.term, to);
    const direct =
      (back.find((b) => b.term === stem)?.weight ?? 0) / Math.max(...back.map((b) => b.weight), 1e-9);
    const score = sense.t.weight * Math.sqrt(use) * direct;
    if (score > bestScore) [best, bestScore] = [sense, score];
  }
  return best;
}

/**
 * Of a German noun's senses, the one the dictionary's compounds of the noun say in the corpus's field, when it is
 * not `chosen`: Ding often gives a head noun's technical sense only in compounds that end with it ("Betreuer" has
 * counselor, carer, supervisor, but "Softwarebetreuer" is software maintainer), or lists it beside a general one
 * that comes first ("Werkzeug": implement, tool; its compounds say tool). A compound votes when it is a modifier
 * and the noun (its German written form ends with the noun's: "Software|betreuer", not "Benutzerbetreuung"), its
 * translation is a phrase of a translation of the modifier and an English head ("software maintainer"), and the
 * corpus uses that modifier (`headUsage`, `MIN_USE`): the head gets the phrase's weight times the square root of
 * the modifier's usage. `chosen` stands with its word's votes plus the square root of the English documents that
 * write it (the corpus's own use counts as a compound's vote: "Bedeutung" stays importance, which they write
 * often, against a few compounds' sense). Of the heads the corpus uses (`MIN_USE`, no function words), the one with
 * the most votes replaces `chosen` when it is a sense of the noun with `CLEARLY` times that standing ("Werkzeug
 * [tool]", "Merkmal [feature]"), or a head that is none ("Betreuer [maintainer]", "Fehler [error]") with `UNLISTED`
 * times it, and only where the English documents never write `chosen`'s word (its senses then miss the field's).
 */
function compoundSense<S extends { readonly t: Translation; readonly text: string; readonly word?: string }>(
  chosen: S,
  senses: readonly S[],
  stem: string,
  translator: QueryTranslator,
  words: WordUsage,
): S {
  const noun = chosen.word;
  // a compound's phrase says its parts ("Datensatz [data record]"), no head to put right
  if (noun === undefined || !/^\p{Lu}/u.test(noun) || chosen.t.term.includes(' ')) return chosen;
  const votes = compoundVotes(stem, noun.toLowerCase(), translator, words);
  if (votes.size === 0) return chosen;
  const own = votes.get(chosen.text.toLowerCase())?.vote ?? 0;
  const senseOf = (head: string) =>
    senses.find((s) => s.text.toLowerCase() === head && !s.t.term.includes(' '));
  // the corpus's own use of `chosen`'s word counts as a compound's vote of a modifier used as often
  const written = usageInAnyInflection(chosen.text, words);
  const standing = own + Math.sqrt(written);
  let best: { head: string; vote: number } | undefined;
  for (const [head, { vote, usable }] of votes) {
    if (!usable || vote <= CLEARLY * standing || (best !== undefined && vote <= best.vote)) continue;
    if (!senseOf(head) && (written > 0 || vote <= UNLISTED * standing)) continue;
    best = { head, vote };
  }
  if (best === undefined) return chosen;
  return senseOf(best.head) ?? { ...chosen, text: best.head };
}

/**
 * The English text of a German verb's sense (`chosen`, read as the verb's written form: "erstellen" compile),
 * or of a verb its nominalisations' senses say when the corpus clearly writes that one more: Ding often gives a
 * verb's common sense only for its noun ("Erstellen", "Erstellung": creation, building) and a rarer one for the
 * verb itself ("erstellen": compile). Each single-word sense of the infinitive as a noun or of its noun in "-ung"
 * (at least `RARE` of the heaviest sense's weight) gives its English verb (`verbsOfNoun`: creation create,
 * building build) when the dictionary knows that word and the corpus's English documents write it in any
 * inflection (`MIN_USE`); it scores its weight (times its forms' share, as in `bestForWord`) times the square root
 * of those documents, and replaces `chosen` with `CLEARLY` times `chosen`'s score ("erstellen [create]": 64
 * English chunks write create, 6 compile).
 */
function nominalisedVerbSense(
  chosen: { readonly t: Translation; readonly text: string; readonly word: string },
  byWeight: readonly Translation[],
  translator: QueryTranslator,
  words: WordUsage,
): string {
  const infinitive = chosen.word.toLowerCase();
  if (!/[^e]en$/.test(infinitive) || chosen.text.includes(' ')) return chosen.text;
  const nouns = new Set([infinitive, `${infinitive.slice(0, -2)}ung`]);
  const heaviest = byWeight[0]?.weight ?? 0;
  // a guess is a verb only when the dictionary writes it as one, paired with a German infinitive: "designation"
  // is designate's noun, not design's; "considerate" (rücksichtsvoll) is no verb of "consideration"
  const written = (verb: string) => {
    const stem = stemOf(verb, 'en');
    return (
      stem !== undefined &&
      translator
        .translateAll(stem, 'en')
        .some((t) =>
          translator.writtenForms(t, 'en').some((f) => f.word === verb && /^\p{Ll}+en$/u.test(f.translation)),
        )
    );
  };
  const weights = new Map<string, number>();
  for (const t of byWeight) {
    if (t.weight < RARE * heaviest || t.term.includes(' ')) continue;
    const shares = new Map<string, number>();
    for (const f of translator.writtenForms(t, 'de'))
      if (/^\p{Lu}/u.test(f.word) && nouns.has(f.word.toLowerCase()) && !/[ -]/.test(f.translation))
        for (const verb of verbsOfNoun(f.translation.toLowerCase()).filter(written).slice(0, 1))
          shares.set(verb, (shares.get(verb) ?? 0) + f.share);
    for (const [verb, share] of shares)
      weights.set(verb, Math.max(weights.get(verb) ?? 0, t.weight * Math.min(1, share / HALF)));
  }
  const standing = chosen.t.weight * Math.sqrt(usageInAnyInflection(chosen.text, words));
  let best = chosen.text;
  let bestScore = CLEARLY * standing;
  for (const [verb, weight] of weights) {
    if (verb === chosen.text.toLowerCase()) continue;
    const use = usageInAnyInflection(verb, words);
    if (use < MIN_USE || weight * Math.sqrt(use) <= bestScore) continue;
    [best, bestScore] = [verb, weight * Math.sqrt(use)];
  }
  return best;
}

/**
 * The English verbs a noun may be made of, most likely first, as guesses the caller checks against the
 * dictionary: "creation" create, "designation" designate, "compilation" compile, "information" inform,
 * "digestion" digest, "development" develop, "building" build (`verbOfGerund`); none for other nouns
 * ("-sion" is left out: Ding's "Einfügung" inclusion made "einfügen" include, not insert).
 */
export function verbsOfNoun(noun: string): string[] {
  if (/ing$/.test(noun)) return [verbOfGerund(noun)].filter((v) => v !== noun);
  if (/ment$/.test(noun)) return [noun.slice(0, -4)];
  if (!/[^aeiou]ion$/.test(noun)) return [];
  const base = noun.slice(0, -3);
  if (!/at$/.test(base)) return [`${base}e`, base];
  // "-ation" of a verb in "-ate", "-e" or none: designate, compile, inform
  return [`${base}e`, `${base.slice(0, -2)}e`, base.slice(0, -2)];
}

/** `compoundVotes` per corpus (its `WordUsage`) and translator, by stem and noun. */
const VOTES = new WeakMap<WordUsage, WeakMap<QueryTranslator, Map<string, HeadVotes>>>();

/** The English heads of a noun's compounds: their votes, and whether the corpus uses them (`MIN_USE`). */
type HeadVotes = ReadonlyMap<string, { readonly vote: number; readonly usable: boolean }>;

/**
 * The English heads the compounds of a German noun (`stem`, written `base` in lower case) give it, with their
 * votes (see `compoundSense`); worked out once per corpus, translator and noun.
 */
function compoundVotes(stem: string, base: string, translator: QueryTranslator, words: WordUsage): HeadVotes {
  const byTranslator = VOTES.get(words) ?? new WeakMap<QueryTranslator, Map<string, HeadVotes>>();
  VOTES.set(words, byTranslator);
  const memo = byTranslator.get(translator) ?? new Map<string, HeadVotes>();
  byTranslator.set(translator, memo);
  const known = memo.get(`${stem} ${base}`);
  if (known) return known;
  const votes = new Map<string, number>();
  for (const compound of translator.endingWith(stem, 'de')) {
    const phrases = translator.translateAll(compound, 'de').filter((t) => t.term.includes(' '));
    if (phrases.length === 0) continue;
    const modifier = compound.slice(0, compound.length - stem.length);
    // the modifier as a word of its own, with or without a joining letter ("leistungs", "daten")
    const stems = new Set(
      [modifier, modifier.replace(/(e?s|e?n|e)$/, '')]
        .filter((m) => m.length >= 3)
        .map((m) => stemOf(m, 'de'))
        .filter((m): m is string => m !== undefined),
    );
    const said = new Set([...stems].flatMap((m) => translator.translateAll(m, 'de').map((t) => t.term)));
    if (said.size === 0) continue;
    for (const t of phrases) {
      if (!said.has(t.term.slice(0, t.term.lastIndexOf(' ')))) continue;
      for (const f of translator.writtenForms(t, 'de')) {
        const cut = f.translation.lastIndexOf(' ');
        if (cut < 0 || f.word.length < base.length + 3 || !f.word.toLowerCase().endsWith(base)) continue;
        const use = headUsage(f.translation.slice(0, cut), words, translator);
        if (use < MIN_USE) continue;
        const head = f.translation.slice(cut + 1).toLowerCase();
        votes.set(head, (votes.get(head) ?? 0) + t.weight * f.share * Math.sqrt(use));
      }
    }
  }
  // only a head the corpus uses can be chosen; `chosen`'s votes count whether it does or not
  const heads = new Map<string, { vote: number; usable: boolean }>();
  for (const [head, vote] of votes)
    heads.set(head, {
      vote,
      usable: !isStopWord(head, 'en') && headUsage(head, words, translator) >= MIN_USE,
    });
  if (memo.size >= 10_000) memo.clear();
  memo.set(`${stem} ${base}`, heads);
  return heads;
}

/**
 * Documents of the corpus that use an English word or phrase as written (`usageInAnyInflection`), also in German text when
 * it is no German word the dictionary knows: German technical prose quotes the field's English words ("Betreuer
 * (»maintainer«)", "Tools"), while "element" or "name" in a German chunk is the German word.
 */
function headUsage(text: string, words: WordUsage, translator: QueryTranslator): number {
  const english = usageInAnyInflection(text, words);
  const noGerman = text
    .toLowerCase()
    .split(/[ -]/)
    .every((w) => {
      const s = stemOf(w, 'de');
      return s !== undefined && translator.translateAll(s, 'de').length === 0;
    });
  return noGerman ? english + usageInAnyInflection(text, words, 'de') : english;
}

/**
 * Documents in language `to` that use a word or phrase of it in any regular inflection (English:
 * `usageInAnyInflection`; German: as written or as an inflection of it, `WordUsage`'s `asBase`); a phrase as its
 * rarest word.
 */
function writtenUsage(text: string, to: Language, words: WordUsage): number {
  if (to === 'en') return usageInAnyInflection(text, words);
  // an adjective's endings, which the base forms leave ("verantwortlichen" of verantwortlich)
  const inflected = (w: string) =>
    /^\p{Lu}/u.test(w) || /en$/.test(w) ? [] : ['e', 'en', 'er', 'es', 'em'].map((end) => w + end);
  return Math.min(
    ...text
      .split(/[ -]/)
      .map((w) => [w.toLowerCase(), ...inflected(w)].reduce((sum, f) => sum + words(f, 'de', true), 0)),
  );
}

/**
 * Documents (in English, or in `language`) that use an English word or phrase as written in any regular
 * inflection; a phrase as its rarest word.
 */
function usageInAnyInflection(text: string, words: WordUsage, language: Language = 'en'): number {
  return Math.min(
    ...text
      .toLowerCase()
      .split(/[ -]/)
      .map((w) => englishInflections(w).reduce((sum, f) => sum + words(f, language), 0)),
  );
}

/**
 * An English word's regular inflections, itself included: "record" records, recorded, recording; "size" sizes,
 * sized, sizing; "query" queries, queried; an "-ing" form by its verb ("recording" as record).
 */
export function englishInflections(word: string): string[] {
  const base = verbOfGerund(word);
  const ing = gerund(base);
  const forms = new Set([word, base, ing]);
  forms.add(/(s|x|z|ch|sh)$/.test(base) ? `${base}es` : `${base}s`);
  forms.add(base.endsWith('e') ? `${base}d` : `${base}ed`);
  if (/[^aeiou]y$/.test(base)) for (const end of ['ies', 'ied']) forms.add(`${base.slice(0, -1)}${end}`);
  // a final consonant doubled before -ing is doubled before -ed too (stop: stopping, stopped)
  if (/(.)\1ing$/.test(ing) && !/(.)\1$/.test(base)) forms.add(`${ing.slice(0, -3)}ed`);
  return [...forms];
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
    .replace(WORD, (word: string, offset: number) =>
      // a clitic or negation is a function word, left out as stop words are (glossed, "don" of "don't" was a
      // university lecturer); addresses are glossed, as retrieval was measured (keeping them lost 1 answer)
      inContraction(text, offset, offset + word.length) || isStopWord(word.toLowerCase(), from)
        ? ''
        : (glossStem(word, from, translator) ?? word),
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
 * With the `question` the concepts were read from, a word of an address, URL or file name in it
 * ("maintainer@debian.org") stays as written.
 */
export function questionGloss(concepts: readonly QueryConcept[], from: Language, question?: string): string {
  const to: Language = from === 'en' ? 'de' : 'en';
  const words: string[] = [];
  for (const c of concepts) {
    // a phrase concept has only translations; a whole ("Python-Version") is said by its parts
    if (!c.terms.some((t) => t.via === 'word')) continue;
    const whole = concepts.some(
      (d) => d !== c && d.start >= c.start && d.end <= c.end && d.end - d.start < c.end - c.start,
    );
    if (whole) continue;
    if (question !== undefined && inDottedName(question, c.start, c.end)) {
      words.push(c.word);
      continue;
    }
    let best: { term: string; weight: number } | undefined;
    for (const t of c.terms)
      if (t.via === 'translation' && t.language === to && (!best || t.weight > best.weight)) best = t;
    words.push(best ? stemOfTerm(best.term) : c.word);
  }
  return words.join(' ');
}
