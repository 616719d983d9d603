import type { Language } from '../types.js';
import { SEPARABLE, WORD } from './separable-verbs.js';
import { stem } from './stemmer.js';
import { isStopWord } from './stop-words.js';

/** A content word of a text: where it is and the one index term it stands for. */
export interface Token {
  /** The word as written (NFKC-normalised). */
  readonly surface: string;
  /**
   * Index term: the language and the Snowball stem of the lower-cased word in that language, `en:rule`,
   * `de:regel`. The language is part of the term so that look-alikes of two languages (English "stand",
   * German "Stand") are different terms.
   */
  readonly term: string;
  readonly start: number;
  readonly end: number;
  /**
   * True for the extra terms of a compound (the joined form of a hyphenated German word, the parts of a German
   * compound): they make a word findable in more ways but do not make the text longer.
   */
  readonly extra?: boolean;
}

/** The index term of one lower-case word (`en:rule`), or undefined for a stop word (by its surface form). */
export function termOf(word: string, language: Language): string | undefined {
  // memoised: the same words recur in every chunk, and stemming them again was most of opening an index
  const memo = TERM_MEMO[language];
  const known = memo.get(word);
  if (known !== undefined) return known === '' ? undefined : known;
  const s = stemOf(word, language);
  const term = s === undefined ? undefined : tagTerm(language, s);
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(word, term ?? '');
  return term;
}

// Bounded memos of pure functions of a word ('' and null stand for "none").
const MEMO_LIMIT = 200_000;
const TERM_MEMO: Record<Language, Map<string, string>> = { en: new Map(), de: new Map() };
/** Where a German compound splits: the spans of its two parts in the word. */
export interface CompoundSplit {
  readonly spans: [[number, number], [number, number]];
}
/** A set of words that only needs to answer `has` (a `Set`, or a dictionary's lexicon looked up per word). */
export interface WordSet {
  has(word: string): boolean;
}

const SPLIT_MEMO = new WeakMap<WordSet, Map<string, CompoundSplit | null>>();
const LEMMA_MEMO = new WeakMap<WordSet, Map<string, string | null>>();

/**
 * The stem of one lower-case word, or undefined for a stop word. The stop list is checked on the word as written,
 * before stemming: a content word whose stem is a stop word's ("Ebene" -> "eben", "Seite" -> "seit") keeps it.
 */
export function stemOf(word: string, language: Language): string | undefined {
  if (word.length < 2 && !/\d/.test(word)) return undefined;
  if (isStopWord(word, language)) return undefined;
  return stem(word, language);
}

/** An index term from a language and a stem: `en:rule`. */
export const tagTerm = (language: Language, stemmed: string) => `${language}:${stemmed}`;

/** The stem of an index term (`en:rule` -> `rule`), for display and dictionary look-ups. */
export const stemOfTerm = (term: string) => term.slice(term.indexOf(':') + 1);

/**
 * Splits a text into content tokens with one index term each: lower-cased, stop words of the text's language
 * removed by their surface form, then stemmed with that language's Snowball stemmer. A hyphenated word
 * gives its parts; in German also the joined compound ("Vektor-Datenbanken" also matches
 * "Vektordatenbanken"), as German writes compounds both ways.
 */
export function tokenize(text: string, language: Language, options: AnalyzeOptions = {}): Token[] {
  const out: Token[] = [];
  const lexicon = language === 'de' ? options.germanLexicon : undefined;
  for (const m of text.matchAll(WORD)) {
    const raw = m[0].normalize('NFKC');
    const lower = raw.toLowerCase();
    const start = m.index;
    const parts = lower.split('-');
    // offsets come from the text as written (NFKC can change lengths, e.g. the ligature "ﬁ")
    const written = m[0].split('-');
    let offset = 0;
    for (const [i, part] of parts.entries()) {
      const length = written[i]?.length ?? part.length;
      const term = termOf(part, language);
      if (term !== undefined) {
        out.push({
          surface: written[i]?.normalize('NFKC') ?? part,
          term,
          start: start + offset,
          end: start + offset + length,
        });
        const split = lexicon ? splitCompound(part, lexicon) : undefined;
        // an inflected verb or noun the dictionary knows only in its base form ("installiert", "Probleme")
        const lemma = lexicon && !split ? germanLemmaTerm(part, lexicon) : undefined;
        if (lemma !== undefined && lemma !== term) {
          out.push({
            surface: written[i]?.normalize('NFKC') ?? part,
            term: lemma,
            start: start + offset,
            end: start + offset + length,
            extra: true,
          });
        }
        if (split) {
          for (const [a, b] of split.spans) {
            const t = termOf(part.slice(a, b), 'de');
            if (t !== undefined && t !== term)
              out.push({
                surface: part.slice(a, b),
                term: t,
                start: start + offset + a,
                end: start + offset + b,
                extra: true,
              });
          }
        }
      }
      offset += length + 1;
    }
    if (parts.length > 1 && language === 'de') {
      const term = termOf(parts.join(''), language);
      if (term !== undefined) out.push({ surface: raw, term, start, end: start + m[0].length, extra: true });
    }
  }
  return out;
}

/** Options of {@link tokenize} and {@link analyze}. */
export interface AnalyzeOptions {
  /**
   * German stems that are words of their own (e.g. the German side of the dictionary): German compounds are then
   * also indexed by their two parts ("Paketnamen" by "paket" and "nam"), so "package name" finds them.
   */
  readonly germanLexicon?: WordSet;
}

/** Stems of German derivational suffixes: a "part" that is one of these is a suffix, not a word. */
const SUFFIXES = new Set([
  'ung',
  'heit',
  'keit',
  'schaft',
  'tum',
  'nis',
  'lich',
  'isch',
  'bar',
  'los',
  'sam',
  'ling',
]);

/** Joining letters German puts between the parts of a compound (Bildungs-, Arbeits-, Sonnen-). */
const LINKS = ['', 's', 'es', 'n', 'en', 'e'];

/**
 * Splits a lower-case German word into two parts that are both in the lexicon (as Snowball stems), allowing a
 * joining letter after the first part; the split with the longest second part wins ("kleinbuchstaben" ->
 * "klein" + "buchstaben"). Parts have at least 4 letters, the first is no stop word and the second no suffix, so
 * "Einbettungen" is neither "ein" + "Bettungen" nor "Einbett" + "ungen"; words shorter than 8 letters are not
 * split. This is {@link decompound} with at most two parts.
 */
export function splitCompound(word: string, lexicon: WordSet): CompoundSplit | undefined {
  if (word.length < 8) return undefined;
  let memo = SPLIT_MEMO.get(lexicon);
  if (!memo) {
    memo = new Map();
    SPLIT_MEMO.set(lexicon, memo);
  }
  const known = memo.get(word);
  if (known !== undefined) return known ?? undefined;
  const spans = decompound(word, lexicon, { maxParts: 2 });
  const split: CompoundSplit | undefined = spans ? { spans: [spans[0]!, spans[1]!] } : undefined;
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(word, split ?? null);
  return split;
}

/** Options of {@link decompound}. */
export interface DecompoundOptions {
  /** Most parts a word is split into; default 4. */
  readonly maxParts?: number;
  /** Fewest letters of a part; default 4 (shorter German stems are mostly prefixes or suffixes). */
  readonly minPart?: number;
}

/**
 * Splits a lower-case German word (or a German stem) into parts that are all in the lexicon (as Snowball stems),
 * with the joining letters German puts between them (-s-, -es-, -n-, -en-, -e-): "Relevanzpropagation" ->
 * "relevanz" + "propagation", "Datenbankverwaltungssystem" -> "datenbank" + "verwaltungs" + "system". Returns the
 * parts' spans, or undefined when no split exists. A joining letter stays with its part when the part's stem is a
 * word (Snowball strips most of them: "bildungs" stems as "Bildung"), else it is left out ("relevanz|s|..."). Fewest
 * parts win, then the longest last part, then the longest parts before it. No part is a stop word or a
 * derivational suffix ("-ung", "-heit", ...); words shorter than 8 letters are not split.
 */
export function decompound(
  word: string,
  lexicon: WordSet,
  options: DecompoundOptions = {},
): [number, number][] | undefined {
  const maxParts = options.maxParts ?? 4;
  const minPart = options.minPart ?? 4;
  if (word.length < 8 || !/^\p{L}+$/u.test(word)) return undefined;
  for (let parts = 2; parts <= maxParts; parts++) {
    const spans = splitInto(word, word.length, parts, true, lexicon, minPart);
    if (spans) return spans;
  }
  return undefined;
}

/** `word.slice(0, end)` as exactly `parts` parts (the last one the word's final part when `final`), or undefined. */
function splitInto(
  word: string,
  end: number,
  parts: number,
  final: boolean,
  lexicon: WordSet,
  minPart: number,
): [number, number][] | undefined {
  if (parts === 1) return isPart(word.slice(0, end), final, lexicon, minPart) ? [[0, end]] : undefined;
  // the longest last part first
  for (let cut = minPart; cut <= end - minPart; cut++) {
    if (!isPart(word.slice(cut, end), final, lexicon, minPart)) continue;
    for (const link of LINKS) {
      const headEnd = cut - link.length;
      if (headEnd < minPart || word.slice(headEnd, cut) !== link) continue;
      const head = splitInto(word, headEnd, parts - 1, false, lexicon, minPart);
      if (head) return [...head, [cut, end]];
    }
  }
  return undefined;
}

/** Whether a piece of a compound is a word of the lexicon that can stand there (the last part may be inflected). */
function isPart(piece: string, final: boolean, lexicon: WordSet, minPart: number): boolean {
  if (piece.length < minPart) return false;
  const s = stem(piece, 'de');
  if (SUFFIXES.has(s)) return false; // "-ungen" is no word
  // a first or middle part is no stop word ("ein" + "bettungen"); the last part's stem has 3 letters at least
  if (final ? s.length < 3 : isStopWord(piece, 'de')) return false;
  return lexicon.has(s);
}

/** The index terms of a text, in order, with repetitions (for term frequencies). */
export function analyze(text: string, language: Language, options: AnalyzeOptions = {}): string[] {
  return tokenize(text, language, options).map((t) => t.term);
}

/** Inseparable verb prefixes: their participles take no "ge" ("beschrieben", "verglichen", "empfohlen"). */
const INSEPARABLE = /^(?:be|emp|ent|er|miss|ver|zer|über|unter|hinter|wider)(?=\p{L}{3})/u;
const PREFIXES_ONLY = /^(?:be|emp|ent|er|miss|ver|zer|über|unter|hinter|wider)*$/u;

/**
 * Participle endings of the common verbs whose stem changes beyond one vowel ("genommen" -> "nehmen",
 * "gebracht" -> "bringen"), and of "kommen", whose vowel the ablaut series would change: the ending after "ge"
 * (or the prefix) and the infinitive's.
 */
const IRREGULAR_PARTICIPLES: readonly [string, string][] = [
  ['nommen', 'nehmen'],
  // unchanged, but listed so that the o -> i guess ("kimmen", Kimme: a dictionary word) does not come first
  ['kommen', 'kommen'],
  ['zogen', 'ziehen'],
  ['gangen', 'gehen'],
  ['standen', 'stehen'],
  ['bracht', 'bringen'],
  ['dacht', 'denken'],
  ['wusst', 'wissen'],
  ['kannt', 'kennen'],
  ['nannt', 'nennen'],
  ['sandt', 'senden'],
  ['wandt', 'wenden'],
  ['sessen', 'sitzen'],
  ['schnitten', 'schneiden'],
  ['litten', 'leiden'],
];

// The ablaut series of strong verbs, participle vowel -> infinitive vowels: ie/i -> ei (geschrieben, gegriffen),
// o -> e / ie / i (gesprochen, geflogen, begonnen), u -> i (gefunden), oss -> ieß (geschlossen).
const ABLAUT: readonly [RegExp, readonly string[]][] = [
  [/ie([^aeiouäöü]+)en$/u, ['ei$1en']],
  // "griffen" -> "greifen": the doubled consonant after a short i is single after ei
  [/i([^aeiouäöü])\1en$/u, ['ei$1en']],
  [/i([^aeiouäöü]+)en$/u, ['ei$1en']],
  [/oss(en)$/u, ['ieß$1']],
  // -ogen, -oben, -oten, -oren mostly come from ie (biegen, schieben, bieten, verlieren)
  [/o([gbtr])en$/u, ['ie$1en', 'e$1en']],
  [/o([^aeiouäöü]{2,}|[^aeiouäöügbtr])en$/u, ['e$1en', 'ie$1en', 'i$1en']],
  [/u([^aeiouäöü]+)en$/u, ['i$1en']],
];

/**
 * Infinitives a strong (ablaut) participle may belong to, without its "ge": "schrieben" -> "schreiben",
 * "sprochen" -> "sprechen", "funden" -> "finden", "verglichen" -> "vergleichen", "griffen" -> "greifen"; a few
 * verbs whose stem changes more are listed (`IRREGULAR_PARTICIPLES`).
 * Only guesses: a caller keeps the one the dictionary knows.
 */
export function ablautInfinitives(core: string): string[] {
  return ablautCandidates(core).map((c) => c.form);
}

/** A base form guessed from a participle's core, and whether a listed irregular verb gave it. */
interface AblautCandidate {
  readonly form: string;
  readonly listed: boolean;
}

function ablautCandidates(core: string): AblautCandidate[] {
  const out: AblautCandidate[] = [];
  for (const [ending, infinitive] of IRREGULAR_PARTICIPLES)
    if (core.endsWith(ending) && core.length >= ending.length) {
      // the listed verb itself only after nothing or inseparable prefixes ("erlitten"); "glitten" ends alike
      // but is "gleiten", so its "gleiden" is a guess like the series' own
      const before = core.slice(0, -ending.length);
      out.push({ form: `${before}${infinitive}`, listed: PREFIXES_ONLY.test(before) });
    }
  for (const [re, replacements] of ABLAUT) {
    if (!re.test(core)) continue;
    for (const r of replacements) out.push({ form: core.replace(re, r), listed: false });
  }
  return out;
}

/**
 * Base forms a German word may be an inflection of, most likely first: regular verb forms ("erstellt",
 * "verwendet", "installierten" -> "erstellen", "verwenden", "installieren"), participles and zu-infinitives
 * after a separable prefix ("ausgeführt", "hochzuladen" -> "ausführen", "hochladen") and noun plurals
 * ("Probleme" -> "Problem"), and participles of strong verbs by their ablaut ("geschrieben", "empfohlen",
 * "verglichen" -> "schreiben", "empfehlen", "vergleichen", see {@link ablautInfinitives}). Snowball stems none
 * of these to its base form's stem.
 */
export function germanBaseForms(word: string): string[] {
  return germanBaseFormCandidates(word).map((c) => c.form);
}

/**
 * A guessed base form: `ablaut` names the participle core (prefix|core) whose ablaut series gave it (undefined
 * for the regular endings), `listed` says the core's ending is one of `IRREGULAR_PARTICIPLES`.
 */
interface BaseFormCandidate {
  readonly form: string;
  readonly ablaut?: string;
  readonly listed?: boolean;
  /** The core whose own form this is, when "ge" or "zu" was taken off it. */
  readonly unchanged?: string;
}

function germanBaseFormCandidates(word: string): BaseFormCandidate[] {
  const out: BaseFormCandidate[] = [];
  const push = (c: BaseFormCandidate) => {
    if (c.form.length >= 4 && c.form !== word && !out.some((o) => o.form === c.form)) out.push(c);
  };
  // the word, and without an adjective or plural ending
  const forms = [word];
  for (const e of ['en', 'er', 'es', 'em', 'e', 'n', 's']) {
    if (word.endsWith(e) && word.length - e.length >= 4) forms.push(word.slice(0, -e.length));
  }
  for (const form of forms) {
    if (form !== word) push({ form });
    const splits: [string, string][] = [['', form]];
    for (const p of SEPARABLE)
      if (form.startsWith(p) && form.length - p.length >= 4) splits.push([p, form.slice(p.length)]);
    for (const [prefix, rest] of splits) {
      const cores = [rest];
      if (rest.startsWith('ge') && rest.length >= 6) cores.push(rest.slice(2));
      if (prefix && rest.startsWith('zu') && rest.length >= 6) cores.push(rest.slice(2));
      for (const [k, core] of cores.entries()) {
        // a strong verb's participle: its infinitive by the ablaut series, after "ge" or an inseparable prefix
        if (k > 0 || INSEPARABLE.test(core))
          for (const c of ablautCandidates(core))
            push({ form: `${prefix}${c.form}`, ablaut: `${prefix}|${core}`, listed: c.listed });
        if (core.endsWith('iert')) push({ form: `${prefix}${core.slice(0, -4)}ieren` });
        if (core.endsWith('et')) push({ form: `${prefix}${core.slice(0, -2)}en` });
        if (core.endsWith('t')) {
          push({ form: `${prefix}${core.slice(0, -1)}en` });
          push({ form: `${prefix}${core.slice(0, -1)}n` });
        }
        // "gemessen", "hochzuladen": the infinitive itself once "ge" or "zu" is gone (not when the ablaut series
        // already settled this core: "gelogen" is no form of "logen")
        if (k > 0 && core.endsWith('en')) push({ form: `${prefix}${core}`, unchanged: `${prefix}|${core}` });
      }
    }
  }
  return out;
}

/**
 * The index term of the base form of an inflected German word when the lexicon knows the base form but not the
 * word's own stem ("installiert" -> `de:install` as "installieren" stems); undefined otherwise.
 */
export function germanLemmaTerm(word: string, lexicon: WordSet): string | undefined {
  if (word.length < 5 || !/^\p{L}+$/u.test(word)) return undefined;
  let memo = LEMMA_MEMO.get(lexicon);
  if (!memo) {
    memo = new Map();
    LEMMA_MEMO.set(lexicon, memo);
  }
  const known = memo.get(word);
  if (known !== undefined) return known ?? undefined;
  let found: string | undefined;
  const own = stemOf(word, 'de');
  if (own !== undefined && !lexicon.has(own)) {
    const candidates = germanBaseFormCandidates(word);
    const known = (form: string) => {
      const s = stemOf(form, 'de');
      return s !== undefined && s !== own && lexicon.has(s) ? s : undefined;
    };
    // Ablaut guesses are taken only when they are unambiguous: a listed irregular verb settles its core even when
    // its infinitive has no term ("gelitten" is "leiden", never "leiten"), and a core
    // whose series gives two known infinitives gets none ("gelogen": "liegen" or "legen", but it is "lügen").
    const settled = new Set<string>();
    for (const c of candidates) {
      // a form of a stop word ("gekommen" of "kommen") gets no term, as the stop word gets none; the guesses
      // after it are less likely ("kimmen")
      if (isStopWord(c.form, 'de')) break;
      if (c.unchanged !== undefined && settled.has(c.unchanged)) continue;
      if (c.ablaut !== undefined) {
        if (settled.has(c.ablaut)) continue;
        if (c.listed) settled.add(c.ablaut);
        else {
          const stems = new Set(
            candidates.filter((o) => o.ablaut === c.ablaut && !o.listed).map((o) => known(o.form)),
          );
          stems.delete(undefined);
          if (stems.size > 1) {
            settled.add(c.ablaut);
            continue;
          }
        }
      }
      const s = known(c.form);
      if (s !== undefined) {
        found = tagTerm('de', s);
        break;
      }
    }
  }
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(word, found ?? null);
  return found;
}

/**
 * Infinitives a present-tense form of a strong German verb may have, whose vowel changes there: "liest" lesen,
 * "gibst" geben, "hilft" helfen, "lädt" laden, "läuft" laufen, and "hält" halten (the t is the verb's); also
 * "nimmt" nehmen, "tritt" treten, and "hat" haben. Only guesses: a caller keeps one the dictionary knows.
 */
export function presentTenseInfinitives(word: string): string[] {
  const vowels: Record<string, string> = { äu: 'au', ie: 'e', ä: 'a', ö: 'o', i: 'e' };
  const cores: string[] = [];
  for (const ending of ['t', 'st']) if (word.endsWith(ending)) cores.push(word.slice(0, -ending.length));
  if (word.endsWith('t')) cores.push(word);
  const out: string[] = [];
  const add = (core: string) => {
    if (!out.includes(`${core}en`)) out.push(`${core}en`);
  };
  for (const core of cores) {
    const changed = core.replace(
      /(äu|ie|ä|ö|i)([^aeiouäöü]*)$/u,
      (_, v: string, rest: string) => `${vowels[v]}${rest}`,
    );
    if (changed !== core) add(changed);
    // a short i before a doubled consonant is the infinitive's long e: "nimmt" nehmen, "tritt" treten
    const long = /^(.*)i(\p{L})\2$/u.exec(core);
    if (long) for (const e of ['eh', 'e']) add(`${long[1]}${e}${long[2]}`);
    // haben drops its b: "hat", "hast" ("vorhat": vorhaben)
    if (core.endsWith('ha')) add(`${core}b`);
  }
  return out;
}

/**
 * The index term of a German separable verb joined with its particle ("hochlade" of "lade ... hoch", "aussieht"
 * of "sieht ... aus"), as a question searches it, when the lexicon knows it: by its own stem, its base form (`germanLemmaTerm`) or, for a
 * strong verb's present tense, its infinitive ("hochlädt" hochladen, see {@link presentTenseInfinitives});
 * undefined otherwise.
 */
export function separableVerbTerm(joined: string, lexicon: WordSet): string | undefined {
  // a verb stem of three letters or more after the particle: "ist ... ein" is no "einist" read as "ein"
  const particle = SEPARABLE.find((p) => joined.startsWith(p)) ?? '';
  const known = (s: string | undefined) =>
    s !== undefined && s.length >= particle.length + 3 && lexicon.has(s) ? tagTerm('de', s) : undefined;
  const own = known(stemOf(joined, 'de'));
  if (own !== undefined) return own;
  const lemma = germanLemmaTerm(joined, lexicon);
  if (lemma !== undefined) return known(stemOfTerm(lemma));
  for (const form of presentTenseInfinitives(joined)) {
    const found = known(stemOf(form, 'de'));
    if (found !== undefined) return found;
  }
  return undefined;
}
