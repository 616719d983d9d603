import { isCognate } from '../translate/cognates.js';
import type { QueryTranslator, Translation } from '../translate/query-translator.js';
import type { Language } from '../types.js';
import {
  germanLemmaTerm,
  separableVerbTerm,
  splitCompound,
  stemOf,
  stemOfTerm,
  type Token,
  tagTerm,
  termOf,
  tokenize,
} from './analyzer.js';
import { detectLanguage, languageEvidence } from './language.js';
import { separableVerbs, wordSpans } from './separable-verbs.js';

/** An index term that stands for a question word, and how much a match of it counts. */
export interface WeightedTerm {
  /** Index term with its language: `en:rule`, `de:regel`. */
  readonly term: string;
  /** 1 for the word's own stems; less for dictionary translations. */
  readonly weight: number;
  /** `word`: a stem of the word as written; `translation`: from the dictionary. */
  readonly via: 'word' | 'translation';
  /** Language of the stem. */
  readonly language: Language;
}

/**
 * One content word (or two-word phrase) of a question with every index term that stands for it: its stem in
 * the question's language, its stem in the other language (technical words are often used untranslated)
 * and its dictionary translations. The terms of a concept are synonyms: a chunk matches the concept once,
 * however many of them it contains, so no word is counted twice.
 */
export interface QueryConcept {
  /** The word(s) as written in the question. */
  readonly word: string;
  readonly start: number;
  readonly end: number;
  readonly terms: readonly WeightedTerm[];
}

/** A question ready for the lexical search. */
export interface AnalyzedQuery {
  readonly language: Language;
  readonly concepts: readonly QueryConcept[];
}

/** Options of {@link analyzeQuery}. */
export interface QueryOptions {
  /** Language of the question; default: detected. */
  readonly language?: Language;
  /** Dictionary for the cross-lingual terms; without it the search is monolingual (plus untranslated words). */
  readonly translator?: QueryTranslator;
  /** Weight of the best dictionary translation (others get less, by the dictionary's weights); default 0.8. */
  readonly translationWeight?: number;
  /**
   * Whether the index holds a term (e.g. its document frequency is positive). With it, a German compound for
   * which the dictionary has no one-word translation that the index holds ("Konzeptmodul", "Suchindex") is
   * searched as its parts, each a word of its own with its translations; otherwise (and without `indexed`) its
   * parts are synonyms of the whole at half weight. As synonyms, the parts made one concept whose document frequency
   * was the union of both parts' and their translations' (every chunk saying "case", "fall" or "consist" for
   * "Fallbestand"), so a chunk holding both parts scored like one holding either; as words of their own each counts
   * by its own rarity, and a chunk holding both counts twice. German chunks lose nothing by it: they are indexed
   * by a compound's parts too.
   */
  readonly indexed?: (term: string) => boolean;
  /**
   * Whether a German verb whose separable particle ends its clause is searched as the joined verb, with its
   * translations ("Wie lade ich ein Paket hoch?": hochladen, upload, not laden, load; the finder the gloss uses,
   * `separableVerbs`), and as written at half weight; needs `translator` (its lexicon). `RagIndex` sets it for
   * questions. Default false: a passage analysed for the answer metrics keeps its words as written.
   */
  readonly separableVerbs?: boolean;
}

const other = (l: Language): Language => (l === 'en' ? 'de' : 'en');

// Words of capitals next to each other (only spaces between them), one of them of six letters or more: a heading
// or a form's labels set in capitals ("VERSIONSGESCHICHTE NUMMER DATUM NAME", "AKTION NAME DATUM UNTERSCHRIFT").
// Acronyms stand among ordinary words ("RAG und LRP"), in lists ("CRP, ONNX") or next to short ones ("GNU GPL").
const CAPITALS_RUN = /(?<![\p{L}\p{N}_-])\p{Lu}{2,}(?:[ \t]+\p{Lu}{2,})+(?![\p{L}\p{N}_-])/gu;

/**
 * The spans of a text set in capitals (see {@link looksLikeName}): runs of two or more words of capitals of which
 * one has at least six letters.
 */
export function capitalsSpans(text: string): [number, number][] {
  const out: [number, number][] = [];
  for (const m of text.matchAll(CAPITALS_RUN)) {
    if (/\p{Lu}{6,}/u.test(m[0])) out.push([m.index, m.index + m[0].length]);
  }
  return out;
}

/**
 * Whether a word as written is a name rather than a word to translate: an acronym (RAG, AI), a word with
 * digits or underscores (tfjs2, dh_make), CamelCase (LlamaIndex), or, in English text, a capitalised word
 * that does not start the sentence (Captum, Token in "RAG-Token"). German capitalises every noun, so there
 * only the first three count. A word of capitals inside text set in capitals (`setInCapitals`, see
 * `capitalsSpans`: "NAME" in "VERSIONSGESCHICHTE NUMMER DATUM NAME") is a word, not an acronym.
 */
export function looksLikeName(
  surface: string,
  language: Language,
  sentenceStart: boolean,
  setInCapitals = false,
): boolean {
  if (/[\d_]/.test(surface)) return true;
  if (surface.length >= 2 && surface === surface.toUpperCase() && /\p{Lu}/u.test(surface))
    return !setInCapitals;
  if (/\p{Ll}\p{Lu}/u.test(surface)) return true;
  return language === 'en' && !sentenceStart && /^\p{Lu}/u.test(surface);
}

// The verb of "How does X work?" (ending the question) or "Wie funktioniert X?" (after the question word)
const WORKS_VERB = /^\s*wie\s+(funktionier\p{L}*)|^\s*how\s+(?:does|do|did)\s+.+?\s+(work)(?=\s*\??\s*$)/iu;

/**
 * Turns a question into {@link QueryConcept}s: stop words removed (by their surface form), each content
 * word with its stems in both languages and, with a translator, its translations; adjacent word pairs whose
 * translation is one word ("vector database" -> "Vektordatenbank") become concepts of their own.
 */
export function analyzeQuery(question: string, options: QueryOptions = {}): AnalyzedQuery {
  const language = options.language ?? questionLanguage(question, options.translator);
  const target = other(language);
  const tw = options.translationWeight ?? 0.8;
  const tr = options.translator;
  const tokens = tokenize(question, language);
  const verbAlone =
    options.separableVerbs && language === 'de' && tr
      ? joinSeparableVerbs(question, tokens, tr)
      : new Map<number, string>();
  const capitals = capitalsSpans(question);
  const concepts: QueryConcept[] = [];
  const seen = new Set<string>();
  const add = (c: QueryConcept) => {
    const key = c.terms
      .map((t) => t.term)
      .sort()
      .join(' ');
    if (c.terms.length === 0 || seen.has(key)) return;
    seen.add(key);
    concepts.push(c);
  };
  // the verb of "How does X work?" / "Wie funktioniert X?" asks how X works, which the passage about X says: as a
  // concept its translations ("function", "operate") match unrelated text
  const works = WORKS_VERB.exec(question);
  const worksVerb = works?.[1] ?? works?.[2];
  const worksAt = works && worksVerb ? works.index + works[0].length - worksVerb.length : -1;
  for (const t of tokens) {
    if (t.start === worksAt) continue;
    const sentenceStart = /^[\s"'“„(]*$|[.!?:]\s+$/.test(question.slice(0, t.start));
    const name = looksLikeName(
      t.surface,
      language,
      sentenceStart,
      capitals.some(([a, b]) => t.start >= a && t.start < b),
    );
    // an inflected German word the dictionary knows only in its base form is translated by that ("erstellt" as
    // "erstellen"); searched as written (German chunks index it by its base form too, for the translations of
    // an English question)
    const lemma =
      language === 'de' && tr && !name
        ? germanLemmaTerm(t.surface.toLowerCase(), tr.lexicon('de'))
        : undefined;
    const terms: WeightedTerm[] = [{ term: t.term, weight: 1, via: 'word', language }];
    // a joined verb also matches its verb as written, at half weight: chunks are indexed word by word, and a
    // text writes the two apart ("hängt von A, B und C ab")
    const alone = verbAlone.get(t.start);
    if (alone !== undefined) terms.push({ term: alone, weight: 0.5, via: 'word', language });
    const own = name ? [] : queryTranslations(tr, stemOfTerm(lemma ?? t.term), language);
    // a form the dictionary does not list under its own stem: a German plural noun whose stem is a verb's
    // ("Regeln": "regeln" to regulate, not "Regel" rule), an English comparative ("cheaper")
    const base =
      name || !tr ? undefined : baseFormStem(t.surface, language, sentenceStart, own.length > 0, tr);
    const translations = mergeTranslations(own, base ? queryTranslations(tr, base, language) : []).map(
      (x) => ({
        term: tagTerm(target, x.term),
        weight: x.weight,
        phrase: x.term.includes(' '),
      }),
    );
    // The word as the other language would stem it, for names and terms used untranslated ("Retrieval",
    // "Embeddings" in German text): only when the other language has no word of that form. If it has one, that
    // word is either a translation (then it is among the translations) or a false friend (German "Stand" is
    // not English "stand").
    const foreign = termOf(t.surface.toLowerCase(), target);
    // a word the question's language neither knows nor translates is taken as the other language's word
    // ("Integrated Gradients" in a German question), even where that language has it in its dictionary
    const unknownHere =
      !!tr &&
      translations.length === 0 &&
      lemma === undefined &&
      !tr.lexicon(language).has(stemOfTerm(t.term));
    if (
      foreign !== undefined &&
      (name || !tr || unknownHere || tr.translate(stemOfTerm(foreign), target).length === 0)
    ) {
      terms.push({ term: foreign, weight: 1, via: 'word', language: target });
    }
    // a German compound also matches its parts where a text writes them apart or in another compound
    const split =
      language === 'de' && tr ? splitCompound(t.surface.toLowerCase(), tr.lexicon('de')) : undefined;
    const indexed = options.indexed;
    if (split && indexed && !name && !translations.some((x) => !x.phrase && indexed(x.term))) {
      for (const part of compoundPartConcepts(t, split.spans, tr!, tw)) add(part);
      continue;
    }
    for (const [a, b] of split?.spans ?? []) {
      const part = termOf(t.surface.toLowerCase().slice(a, b), 'de');
      if (part === undefined) continue;
      if (!terms.some((y) => y.term === part))
        terms.push({ term: part, weight: 0.5, via: 'word', language: 'de' });
      // and its translations, at half weight: "Korrektheitsbewertung" searches English "correct" and "evaluat"
      for (const x of tr?.translate(stemOfTerm(part), 'de') ?? []) {
        const term = tagTerm(target, x.term);
        if (x.term.includes(' ') || terms.some((y) => y.term === term)) continue;
        terms.push({ term, weight: 0.5 * tw * x.weight, via: 'translation', language: target });
      }
    }
    // an English word also searches the German words the index holds whose first sense it is (see firstSenseOf)
    const firstSense =
      language === 'en' && tr && options.indexed && !name
        ? firstSenseOf(tr, stemOfTerm(t.term), options.indexed, translations)
        : [];
    for (const x of [...translations, ...firstSense]) {
      if (x.phrase) continue; // phrases cannot be matched by single index terms
      if (terms.some((y) => y.term === x.term)) continue;
      terms.push({ term: x.term, weight: tw * x.weight, via: 'translation', language: target });
    }
    add({ word: t.surface, start: t.start, end: t.end, terms });
  }
  if (tr) {
    for (let i = 0; i + 1 < tokens.length; i++) {
      const a = tokens[i]!;
      const b = tokens[i + 1]!;
      // only words that stand next to each other (nothing but spaces or a hyphen between them)
      if (!/^[\s-]*$/.test(question.slice(a.end, b.start))) continue;
      const phrase = tr
        .translate(`${stemOfTerm(a.term)} ${stemOfTerm(b.term)}`, language)
        .filter((x) => !x.term.includes(' '))
        .map((x) => ({
          term: tagTerm(target, x.term),
          weight: tw * x.weight,
          via: 'translation' as const,
          language: target,
        }));
      if (phrase.length > 0)
        add({ word: question.slice(a.start, b.end), start: a.start, end: b.end, terms: phrase });
    }
  }
  return { language, concepts };
}

/**
 * A German question's tokens with each separable verb read with its particle from the clause's end, as the gloss
 * reads it ("Wie lade ich ein Paket hoch?": "lade" as hochladen, upload, not laden, load): the verb's token stands
 * for the joined word (its term, `separableVerbTerm`, and its translations) and the particle's, when it has one
 * (particles that are no stop words: "fest", "hinzu"), is dropped. A verb that is a stop word on its own ("gibt ...
 * heraus": herausgeben) has no token: the joined word gets one where the verb stands. Returns the verbs' own terms
 * by their offsets.
 */
function joinSeparableVerbs(question: string, tokens: Token[], tr: QueryTranslator): Map<number, string> {
  const lexicon = tr.lexicon('de');
  const words = wordSpans(question);
  const verbs = separableVerbs(question, (w) => separableVerbTerm(w, lexicon), words);
  const joined = new Map(verbs.map((v) => [words[v.verb]!.start, v]));
  const particles = new Set(verbs.map((v) => words[v.particle]!.start));
  const alone = new Map<number, string>();
  const placed = new Set<number>();
  for (let i = tokens.length - 1; i >= 0; i--) {
    const t = tokens[i]!;
    const v = joined.get(t.start);
    if (particles.has(t.start)) tokens.splice(i, 1);
    else if (v) {
      tokens[i] = { ...t, surface: v.joined, term: v.found };
      placed.add(t.start);
      if (t.term !== v.found) alone.set(t.start, t.term);
    }
  }
  for (const [start, v] of joined) {
    if (placed.has(start)) continue;
    const at = tokens.findIndex((t) => t.start > start);
    const token = { surface: v.joined, term: v.found, start, end: words[v.verb]!.end };
    tokens.splice(at < 0 ? tokens.length : at, 0, token);
  }
  return alone;
}

/**
 * The parts of a German question compound as words of their own (see `QueryOptions.indexed`): each part's stem
 * and its translations (cognates as in {@link queryTranslations}) at the weights a word of the question has.
 */
function compoundPartConcepts(
  token: { surface: string; start: number },
  spans: readonly (readonly [number, number])[],
  tr: QueryTranslator,
  tw: number,
): QueryConcept[] {
  const word = token.surface.toLowerCase();
  const out: QueryConcept[] = [];
  for (const [a, b] of spans) {
    const term = termOf(word.slice(a, b), 'de');
    if (term === undefined) continue;
    const terms: WeightedTerm[] = [{ term, weight: 1, via: 'word', language: 'de' }];
    for (const x of queryTranslations(tr, stemOfTerm(term), 'de')) {
      const en = tagTerm('en', x.term);
      if (x.term.includes(' ') || terms.some((y) => y.term === en)) continue;
      terms.push({ term: en, weight: tw * x.weight, via: 'translation', language: 'en' });
    }
    out.push({ word: token.surface.slice(a, b), start: token.start + a, end: token.start + b, terms });
  }
  return out;
}

/**
 * The translations a question word searches for: the dictionary's heaviest (`translate`), and every cognate
 * among the rest at the best translation's weight ("rate" -> "Rate", "discrepancy" -> "Diskrepanz"): technical
 * words are mostly shared by the two languages, and the dictionary orders a word's senses by how common they
 * are in general language, so the cognate was often cut off or weighted as a rare sense.
 */
function queryTranslations(
  tr: QueryTranslator | undefined,
  stem: string,
  language: Language,
): readonly Translation[] {
  if (!tr) return [];
  const kept = tr.translate(stem, language);
  const all = tr.translateAll(stem, language);
  const cognates = all.filter((x) => isCognate(stem, x.term));
  if (cognates.length === 0) return kept;
  const cognate = new Set(cognates.map((x) => x.term));
  return [...cognates.map((x) => ({ term: x.term, weight: 1 })), ...kept.filter((x) => !cognate.has(x.term))];
}

/**
 * The language of a question: {@link detectLanguage}, but when the question has no function word or letter
 * that only one language has ("Was berechnet Saliency in Captum?": "was" and "in" are words of both), the
 * language whose dictionary side knows more of its content words (also by a German word's base form) that the
 * other side does not, German on a tie.
 */
export function questionLanguage(question: string, translator?: QueryTranslator): Language {
  const evidence = languageEvidence(question);
  // a function word of one language and none of the other decides a question, however short ("Was ist LRP?":
  // "ist"), where a longer text needs more (detectLanguage)
  if (evidence.de > 0 && evidence.en === 0) return 'de';
  if (evidence.en > 0 && evidence.de === 0) return 'en';
  if (!translator || evidence.en > 0 || evidence.de > 0) return detectLanguage(question);
  let en = 0;
  let de = 0;
  for (const m of question.matchAll(/\p{L}+/gu)) {
    const w = m[0].toLowerCase();
    const enStem = stemOf(w, 'en');
    const deStem = stemOf(w, 'de');
    const knownEn = enStem !== undefined && translator.lexicon('en').has(enStem);
    const knownDe =
      deStem !== undefined &&
      (translator.lexicon('de').has(deStem) || germanLemmaTerm(w, translator.lexicon('de')) !== undefined);
    if (knownEn && !knownDe) en++;
    else if (knownDe && !knownEn) de++;
  }
  // English technical words are common in German questions ("Saliency"), German words in English ones are not
  return de > 0 && de >= en ? 'de' : 'en';
}

/**
 * The German words the index holds whose best translation is this English word (ties for the first place; a
 * phrase by its last word: "Datei" is "computer file"), at a best translation's weight, beyond the `translate`
 * cut: the dictionary lists an English word's senses in general-language order ("file": Datei 12th of 15, after
 * "einreichen", "Akte", "Feile"), while a German technical word has its technical sense first. (For a German
 * question the English words reached so lost answers: an English word's best sense is no more technical.)
 */
function firstSenseOf(
  tr: QueryTranslator,
  stem: string,
  indexed: (term: string) => boolean,
  have: readonly { readonly term: string }[],
): { term: string; weight: number; phrase: boolean }[] {
  const out: { term: string; weight: number; phrase: boolean }[] = [];
  for (const x of tr.translateAll(stem, 'en')) {
    if (x.term.includes(' ')) continue;
    const term = tagTerm('de', x.term);
    if (have.some((y) => y.term === term) || !indexed(term)) continue;
    const first = tr
      .translate(x.term, 'de')
      .filter((y) => y.weight >= 1)
      .some((y) => y.term === stem || y.term.endsWith(` ${stem}`));
    if (first) out.push({ term, weight: 1, phrase: false });
  }
  return out;
}

/** Translations of a word and of its base form, each term once at its higher weight, the word's first. */
function mergeTranslations(a: readonly Translation[], b: readonly Translation[]): Translation[] {
  const out = [...a];
  for (const x of b) {
    const at = out.findIndex((y) => y.term === x.term);
    if (at < 0) out.push(x);
    else if (out[at]!.weight < x.weight) out[at] = x;
  }
  return out;
}

const GERMAN_PLURAL = ['en', 'n', 'e', 'er', 's'];

/**
 * The stem of a question word's base form when the dictionary lists the word only under that form: a German
 * noun (capitalised inside the sentence) in the plural whose own stem is another word's ("Regeln" -> "Regel"),
 * or an English comparative or superlative the dictionary does not know ("cheaper" -> "cheap", "larger" ->
 * "large", "bigger" -> "big", "easiest" -> "easy"). Undefined when there is none.
 */
function baseFormStem(
  surface: string,
  language: Language,
  sentenceStart: boolean,
  translated: boolean,
  tr: QueryTranslator,
): string | undefined {
  const word = surface.toLowerCase();
  const own = stemOf(word, language);
  const candidates: string[] = [];
  if (language === 'de') {
    if (sentenceStart || !/^\p{Lu}/u.test(surface)) return undefined;
    for (const e of GERMAN_PLURAL)
      if (word.endsWith(e) && word.length - e.length >= 4) candidates.push(word.slice(0, -e.length));
  } else {
    if (translated) return undefined;
    const m = /^(\p{L}{3,}?)(i?)(er|est)$/u.exec(word);
    if (!m) return undefined;
    const [, root, i] = m as unknown as [string, string, string];
    if (i) candidates.push(`${root}y`);
    else {
      candidates.push(root, `${root}e`);
      if (/(\p{L})\1$/u.test(root)) candidates.push(root.slice(0, -1));
    }
  }
  for (const c of candidates) {
    const st = stemOf(c, language);
    if (st !== undefined && st !== own && tr.translate(st, language).length > 0) return st;
  }
  return undefined;
}

/** A query of plain index terms (one concept per distinct term), for callers that have terms only. */
export function conceptsOfTerms(terms: readonly string[], language: Language = 'en'): QueryConcept[] {
  return [...new Set(terms)].map((term) => ({
    word: stemOfTerm(term),
    start: 0,
    end: 0,
    terms: [{ term, weight: 1, via: 'word' as const, language }],
  }));
}
