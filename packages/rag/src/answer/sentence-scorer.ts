import { dot, type EmbeddingProvider } from '../embeddings/embedding-provider.js';
import type { BlockKind } from '../ingest/block.js';
import type { Bm25Index } from '../retrieval/bm25.js';
import { analyze, stemOfTerm, tagTerm } from '../text/analyzer.js';
import type { AnalyzedQuery, QueryConcept } from '../text/query.js';
import { glossOnly } from '../translate/gloss.js';
import type { QueryTranslator } from '../translate/query-translator.js';
import type { Language } from '../types.js';
import { announcesBlock, STEP_COMMAND } from './announcement.js';
import { chunkSentences } from './passage-sentences.js';
import {
  aboutSubject,
  asksForName,
  definesSubject,
  holdsRelation,
  namingConcepts,
  type QuestionIntent,
  questionIntent,
  relationClarity,
} from './question-intent.js';
import type { Source } from './source.js';

/** A sentence of a source and how well it answers the question. */
export interface ScoredSentence {
  /** Source number (1-based). */
  readonly source: number;
  readonly text: string;
  /** Character span in the source chunk text. */
  readonly start: number;
  readonly end: number;
  /** Block kind: prose (`paragraph`, `list-item`, `quote`), `table-row`, `heading`, `code` or `note` (a footnote). */
  readonly kind: BlockKind;
  /** Position among the sentences of its source (0-based). */
  readonly index: number;
  /** Cosine similarity of sentence and question embeddings. */
  readonly dense: number;
  /**
   * Share of the question's concepts (words, with their translations) in the sentence (0..1), weighted by their
   * rarity among the candidate sentences; concepts that name the source document count a third.
   */
  readonly lexical: number;
  /** Share of the sentence's content words that are not the question's (0..1): 0 for a sentence that only restates it. */
  readonly novelty: number;
  /** Whether the sentence holds the relation the question asks for (a definition of its subject, a reason, ...). */
  readonly relation: boolean;
  /**
   * For a definition question, whether the sentence defines its subject rather than uses it (`definesSubject`:
   * "X is a ...", "Long Name (X) is ..."); it then also holds the relation.
   */
  readonly defines?: boolean;
  /**
   * For a definition question, whether the subject opens the sentence (`aboutSubject`: "LRP attributes ...", not
   * "For LRP, the gradient ..."): what it says is said of the subject. A second passage after a definition must be so.
   */
  readonly about?: boolean;
  /**
   * Indices (into the analysed question's concepts) of the question's concepts the sentence holds, leaving out
   * those that name its document or that every candidate holds: what it contributes to answering. The passage
   * around the best sentence reaches to a neighbour that brings one the passage lacks.
   */
  readonly concepts?: readonly number[];
  /** Navigation rather than prose: a table-of-contents line, a link list, a source/licence note. Never an answer. */
  readonly boilerplate: boolean;
  /**
   * How well the sentence answers the question, 0..1: relevance (concept coverage and the embedding's lift
   * over the other sentences) times novelty, times the source's rank; headings and (unless the question asks
   * for code) code blocks score 0; questions (with the sentences that set them up in their block) and fragments
   * are damped.
   */
  readonly score: number;
  /** The sentence's embedding (unit length). */
  readonly vector: Float32Array;
}

/** IDF-weighted share of `query` terms present in `terms`. */
export function termCoverage(
  query: readonly string[],
  terms: ReadonlySet<string>,
  idf: (t: string) => number,
): number {
  const unique = [...new Set(query)];
  let total = 0;
  let hit = 0;
  for (const t of unique) {
    const w = Math.max(idf(t), 0.1);
    total += w;
    if (terms.has(t)) hit += w;
  }
  return total > 0 ? hit / total : 0;
}

/** IDF-weighted share of the concepts matched by a set of terms (a concept counts by its best matching term). */
export function conceptCoverage(
  concepts: readonly QueryConcept[],
  terms: ReadonlySet<string>,
  idf: (c: QueryConcept) => number,
): number {
  let total = 0;
  let hit = 0;
  for (const c of concepts) {
    const w = Math.max(idf(c), 0.1);
    total += w;
    let best = 0;
    for (const t of c.terms) if (terms.has(t.term) && t.weight > best) best = t.weight;
    hit += w * Math.min(1, best);
  }
  return total > 0 ? hit / total : 0;
}

// Words that ask for code: then code blocks may be answers (and are otherwise never answer prose).
const CODE_INTENT =
  /\b(code|codebeispiel\w*|beispielcode|snippet|command|commands|befehl\w*|syntax|cli|shell|terminal|aufruf\w*|how do i call|which arguments|which parameters)\b|`|\w\(\)|\b\w+_\w+\b|\b\w+\.\w+\(/i;

// Lines that navigate rather than say: table-of-contents entries ("2.8 Packages . . . . 12"), menus and link
// rows ("View source | Paper"), the source/licence box at the top of converted documents.
const BOILERPLATE =
  /(?:\.\s*){4,}\d*\s*$|(?:\S\s+\|\s+\S.*){2,}|^(?:source|quelle|license|lizenz|licensed|text licensed|copyright)\b[^.]*[:©]|\blicen[sc]e: [\w.-]+ \(see licenses/i;

// A caption that points at the document's own picture or video ("Klicken Sie auf das Bild oben, um das Video
// anzusehen: <title>", "Click the image above to watch the talk"): it steers the reader around the page, like a link
// row; its imperative is no step of what a procedure asks.
const MEDIA_POINTER =
  /\b(?:click|klicken)\b[^.!?]{0,40}\b(?:image|picture|thumbnail|video|bild|vorschaubild|abbildung)\s+(?:above|below|oben|unten)\b|\b(?:watch|ansehen|anschauen)\s+(?:(?:the|this|our|das|dieses)\s+)?videos?\b|\bvideos?\s+(?:anzusehen|anzuschauen)\b/iu;

/** Whether a line navigates or attributes rather than says something (never an answer). */
export function isBoilerplate(text: string): boolean {
  return BOILERPLATE.test(text) || MEDIA_POINTER.test(text);
}

// How much holding the asked-for relation counts, by question kind: a definition of the subject says most.

const RELATION_BOOST: Readonly<Record<Exclude<QuestionIntent['kind'], 'other'>, number>> = {
  definition: 1.6,
  comparison: 1.3,
  procedure: 1.25,
  reason: 1.3,
  list: 1.15,
  number: 1.3,
};

/**
 * The intent with a definition's subject words replaced by their terms in `language` (the stems the query's
 * concepts translate them to, which `holdsRelation` matches as word beginnings); other intents as they are.
 */
export function translatedIntent(
  intent: QuestionIntent,
  query: AnalyzedQuery,
  language: Language,
): QuestionIntent {
  if (intent.kind !== 'definition' || intent.subject.length === 0) return intent;
  const words = new Set(intent.subject);
  const subject = query.concepts
    .filter((c) =>
      c.word
        .toLowerCase()
        .split(/\s+/)
        .every((w) => words.has(w)),
    )
    .flatMap((c) => c.terms.filter((t) => t.language === language).map((t) => stemOfTerm(t.term)))
    .filter((t) => t.length >= 3);
  return { kind: intent.kind, subject: [...new Set(subject)] };
}

// A sentence that defines a definition's subject ("X is a ...", "Long Name (X) is ...") over one that only holds the
// looser relation (the subject opening it: "The LRP analyzer struct holds ..."). 1.3, 1.6 and 2 gave the same
// evaluation answers; the hand-checked "What is X?" answers were best at 1.3.
const DEFINES_BOOST = 1.3;

// How steeply a question concept's weight follows its rarity among the candidate sentences (the exponent of its
// inverse document frequency): below 1, a sentence holding more of the question's concepts together outweighs one
// holding only the rarest, as an overview sentence that names the document's topic words did less often than
// expected (answers tuning / held-out 3-11 at 1: 138/256; 0.7 140/257, 0.5 139/258, 0.4 139/259, 0.3 138/260,
// 0.2 137/260, 0 139/257).
const RARITY_EXPONENT = 0.4;

// How much a loanword's translation back into the question's language counts (see scoreSourceSentences): answers
// tuning / held-out 3-12 were 142/289 without, 142/289 at 0.5, 142/288 at 0.8 (also at 0.8 in the answer alone, not
// in the passage re-ranking); at 0.5 "Wozu dienen Embeddings in der RAG-Lektion?" is answered from the German text.
const LOAN_WEIGHT = 0.5;

// A relation held only loosely (`relationClarity`: a colon after a label for a list question) counts with this
// share of the boost's exponent: the list relation's 1.15 becomes 1.07. Answers tuning / held-out 3-14 144/359
// without, 144/360 at 0.5 (2 answers of 671 change; the looser enumeration regex also at 0).
const LOOSE_SHARE = 0.5;

// A block (paragraph, list item) of at most this many sentences that ends with a question asks as a whole: the
// sentences before its question set it up ("I am working on a new method and would like to add it to Captum. How do
// I proceed?", an entry of a FAQ's contents), they answer nothing. A longer block that ends with a question says
// something before it asks. Answers tuning / held-out 3-14: 145/364 without, 146/365 with (at most 2 sentences the
// same; any length 146/364).
const QUESTION_BLOCK = 3;

// What decides a choice between named things ("when should I use X instead of Y?") is as specific as a definition.
const CHOICE_BOOST = RELATION_BOOST.definition;

// Relations specific enough to weigh against the source's rank: a definition of the subject, a reason (and what
// decides a choice, see `QuestionIntent.choice`).
const SPECIFIC: ReadonlySet<QuestionIntent['kind']> = new Set(['definition', 'reason']);

/** Whether a question asks for code (a snippet, a command, a call): then code blocks can answer it. */
export function asksForCode(question: string): boolean {
  return CODE_INTENT.test(question);
}

/**
 * The blocks (`source:block`) of at most QUESTION_BLOCK sentences whose last sentence is a question: each of their
 * sentences is part of what is asked.
 */
function askingBlocks(
  sentences: readonly { readonly source: number; readonly block: number; readonly text: string }[],
): Set<string> {
  const blocks = new Map<string, string[]>();
  for (const s of sentences) {
    const key = `${s.source}:${s.block}`;
    blocks.set(key, [...(blocks.get(key) ?? []), s.text]);
  }
  return new Set(
    [...blocks]
      .filter(([, texts]) => texts.length <= QUESTION_BLOCK && /\?\s*$/.test(texts[texts.length - 1]!))
      .map(([key]) => key),
  );
}

/**
 * Splits every source into sentences (by its blocks) and scores how well each answers the question.
 *
 * Relevance is the share of the question's concepts a sentence contains, each concept weighted by how rare it
 * is *among the candidate sentences* (a word every candidate has does not pick one; the weight follows rarity
 * gently, so holding more of the question's concepts together counts more than holding the rarest), with concepts that name
 * the source document (found in its title or section heading) counting a third; plus the lift of the
 * sentence's embedding similarity over the other candidates of its language (a sentence in the other language
 * than the question's is embedded through its dictionary gloss, `glossOnly`, when a monolingual embedding and a
 * `translator` are given; without a translator such candidates get no embedding part; with a monolingual
 * embedding, a German question whose candidates are all German gets none either); times the source's rank
 * prior 1 / (1 + (n - 1) / 4).
 * Novelty, the share of the sentence's own words, keeps
 * headings and lines that restate the question from winning. Used for the extractive answer, grounding and
 * the sentence heatmaps.
 */
export async function scoreSourceSentences(
  question: string,
  questionVector: Float32Array,
  query: AnalyzedQuery,
  sources: readonly Source[],
  embedding: EmbeddingProvider,
  _bm25?: Bm25Index,
  intent: QuestionIntent = questionIntent(question),
  translator?: QueryTranslator,
  options: {
    /**
     * Whether a sentence of a lower-ranked source needs more (the prior 1 / (1 + (n - 1) / 4)); default true. Off
     * when the scores re-rank the sources themselves, whose order they are to decide.
     */
    readonly rankPrior?: boolean;
  } = {},
): Promise<ScoredSentence[]> {
  const raw = sources.flatMap((s) =>
    chunkSentences(s).map((x, index) => ({ ...x, index, source: s.n, language: s.language as Language })),
  );
  if (raw.length === 0) return [];
  // A monolingual embedding compares a sentence in the other language than the question's through its gloss
  // (its words put into the question's language by the dictionary), so both languages compete on meaning.
  const across = (r: (typeof raw)[number]) =>
    r.language !== query.language && embedding.multilingual !== true && translator !== undefined;
  const vectors = await embedding.embed(
    raw.map((r) => (across(r) ? glossOnly(r.text, r.language, translator!) : r.text)),
  );
  // German sentences as the index reads them: compounds also by their parts, inflected forms by their base form
  // ("Paketnamen" holds "Paket" and "Namen"), so a question word matches the sentence that the retrieval matched
  const germanLexicon = translator?.lexicon('de');
  const termSets = raw.map(
    (r) => new Set(analyze(r.text, r.language, germanLexicon ? { germanLexicon } : {})),
  );
  // A word of the other language used untranslated ("Embeddings" in a German question, searched as English
  // "embed") also matches, in a sentence of the question's language, what the dictionary says for it there
  // ("Einbettungen"), at LOAN_WEIGHT of a translation's weight: the sentences in the question's own words compete.
  const loansOf = (c: QueryConcept): { term: string; weight: number }[] => {
    if (!translator) return [];
    const out: { term: string; weight: number }[] = [];
    for (const t of c.terms) {
      if (t.via !== 'word' || t.language === query.language) continue;
      for (const x of translator.translate(stemOfTerm(t.term), t.language))
        if (!x.term.includes(' '))
          out.push({ term: tagTerm(query.language, x.term), weight: LOAN_WEIGHT * x.weight });
    }
    return out;
  };
  const loanOf = new Map(query.concepts.map((c) => [c, loansOf(c)]));
  const matches = (c: QueryConcept, terms: ReadonlySet<string>) => {
    let best = 0;
    for (const t of c.terms) if (terms.has(t.term) && t.weight > best) best = t.weight;
    for (const t of loanOf.get(c) ?? []) if (terms.has(t.term) && t.weight > best) best = t.weight;
    return Math.min(1, best);
  };
  // rarity of each concept among the candidate sentences; concepts no candidate has cannot choose between them
  const n = raw.length;
  // the words that frame what is asked ("dienen" of "Wozu dienen X?") choose no sentence
  const frame = new Set(intent.frame ?? []);
  const local = query.concepts.map((c) => {
    if (frame.has(c.word.toLowerCase())) return 0;
    const df = termSets.filter((t) => matches(c, t) > 0).length;
    return df === 0 ? 0 : Math.log(1 + (n - df + 0.5) / (df + 0.5)) ** RARITY_EXPONENT;
  });
  // concepts that name the document (its title or section, or the question's words for it: "according to the
  // RAG lesson") say which source, not which sentence
  const namesDocument = namingConcepts(question, query.concepts);
  const naming = new Map(
    sources.map((s) => {
      const terms = new Set(analyze(`${s.title}\n${s.section ?? ''}`, s.language));
      return [s.n, query.concepts.map((c, k) => namesDocument[k]! || matches(c, terms) > 0)];
    }),
  );
  const questionTerms = new Set(query.concepts.flatMap((c) => c.terms.map((t) => t.term)));
  const code = asksForCode(question);
  const dense = vectors.map((v) => dot(questionVector, v));
  // The embedding compares the question with sentences of its own language (or their glosses, see above); without
  // a dictionary and with candidates in the other language, no sentence gets the embedding's part, so none is
  // favoured for its language.
  const sameLanguage = raw.every((r) => r.language === query.language);
  // The monolingual encoders read English: among German sentences only (a German question answered from German
  // sources) their similarity follows shared word pieces, which the lexical share counts already, so there the
  // sentences compete on their words alone. (Left out for every German question, the English sentences' glosses
  // lost their part too: 3 cross-lingual answers fewer on the evaluation corpus.)
  const unread = embedding.multilingual !== true && sameLanguage && query.language !== 'en';
  const comparable = raw.map(
    () => !unread && (embedding.multilingual === true || sameLanguage || translator !== undefined),
  );
  // the lift is taken within each language (glosses score lower than native sentences on the whole), in that
  // language's standard deviations, and divided by the best lift of all: it says how far a sentence stands out
  // among the sentences of its language, and never favours a language. (Scaling each language to its own best
  // gave the best of two or three unrelated sentences in the other language a full lift.)
  const liftOf = new Map<Language, { mean: number; spread: number }>();
  for (const language of new Set(raw.map((r) => r.language))) {
    const same = dense.filter((_, i) => comparable[i] && raw[i]!.language === language);
    const mean = same.length ? same.reduce((a, b) => a + b, 0) / same.length : 0;
    const variance = same.length ? same.reduce((a, d) => a + (d - mean) ** 2, 0) / same.length : 0;
    liftOf.set(language, { mean, spread: variance > 0 ? Math.sqrt(variance) : 1 });
  }
  const standing = dense.map((d, i) => {
    const norm = liftOf.get(raw[i]!.language)!;
    return comparable[i] ? Math.max(0, (d - norm.mean) / norm.spread) : 0;
  });
  const bestStanding = Math.max(...standing, 1e-9);
  // a definition's subject in the other language: its words' translations, as the query found them ("Ziel" ->
  // "goal"), so that "The goal of this library is ..." defines "das Ziel der Bibliothek"
  const intentIn = new Map<Language, QuestionIntent>([[query.language, intent]]);
  for (const language of new Set(raw.map((r) => r.language)))
    if (!intentIn.has(language)) intentIn.set(language, translatedIntent(intent, query, language));
  // the retrieval ranked the sources on their whole text; a sentence of a lower-ranked source needs more
  const prior = new Map(
    sources.map((s) => [s.n, options.rankPrior === false ? 1 : 1 / (1 + 0.25 * (s.n - 1))]),
  );
  const namesOnly = asksForName(intent, query.concepts.length);
  // a sentence that announces the code block after it as the reader's step ("..., können Sie ... wie folgt
  // erstellen:", "Zennit can be installed from PyPI:", `STEP_COMMAND`) gives the command of a step, however its verb
  // stands: an instruction; one stating what a command did ("Dieser Aufruf von dh_make erstellt ...:") gives none
  const procedure = intent.kind === 'procedure';
  const announcesCode = (i: number) => announcesBlock(raw[i], raw[i + 1], STEP_COMMAND);
  const asking = askingBlocks(raw);
  return raw.map((r, i) => {
    const set = termSets[i]!;
    const names = naming.get(r.source)!;
    let total = 0;
    let hit = 0;
    const held: number[] = [];
    query.concepts.forEach((c, k) => {
      const w = local[k]! * (names[k] ? 1 / 3 : 1);
      const m = matches(c, set);
      total += w;
      hit += w * m;
      if (m > 0 && local[k]! > 0 && !names[k]) held.push(k);
    });
    const lexical = total > 0 ? hit / total : 0;
    const distinct = [...termSets[i]!];
    const novelty = distinct.length
      ? distinct.filter((t) => !questionTerms.has(t)).length / distinct.length
      : 0;
    const lift = standing[i]! / bestStanding;
    const boilerplate = isBoilerplate(r.text);
    const defines = definesSubject(r.text, intentIn.get(r.language)!);
    const relation =
      defines || holdsRelation(r.text, intentIn.get(r.language)!) || (procedure && announcesCode(i));
    const about = defines || aboutSubject(r.text, intentIn.get(r.language)!);
    let shape = 1;
    if (r.kind === 'heading' || (r.kind === 'code' && !code) || boilerplate) shape = 0;
    // a question rarely answers a question, nor does the sentence that sets one up
    else if (/\?\s*$/.test(r.text) || asking.has(`${r.source}:${r.block}`)) shape = 0.3;
    else if (distinct.length < 3) shape = 0.6; // fragments
    const words = r.text.split(/\s+/).length;
    if (words > 60) shape *= Math.sqrt(60 / words); // run-on text (long rows, lists without stops)
    const relevance = comparable[i] ? 0.65 * lexical + 0.35 * lift : lexical;
    // a sentence that holds the asked-for relation beats one that only repeats the question's words
    const asked =
      intent.kind === 'other'
        ? 1
        : relation
          ? intent.choice
            ? CHOICE_BOOST
            : (RELATION_BOOST[intent.kind] * (defines ? DEFINES_BOOST : 1)) **
              (LOOSE_SHARE + (1 - LOOSE_SHARE) * relationClarity(r.text, intentIn.get(r.language)!))
          : intent.guessed
            ? 1
            : 0.85;
    // a definition of the subject or a reason is specific enough to count against the source's rank: it needs less
    // of it (the looser relations, a comma of a list or a "use" of a procedure, do not)
    // and a sentence defining the name a question asks for ("What is LRP?") needs none: the search brings one in
    // below the sources that name it most, which is why it stands low
    const rank =
      defines && namesOnly
        ? 1
        : (prior.get(r.source) ?? 0.5) **
          (relation && !intent.guessed && (SPECIFIC.has(intent.kind) || intent.choice) ? 0.5 : 1);
    const score = relevance * (0.3 + 0.7 * novelty) * asked * rank * shape;
    return {
      source: r.source,
      text: r.text,
      start: r.start,
      end: r.end,
      kind: r.kind,
      index: r.index,
      dense: dense[i]!,
      lexical,
      novelty,
      relation,
      ...(defines ? { defines } : {}),
      ...(about ? { about } : {}),
      concepts: held,
      boilerplate,
      score,
      vector: vectors[i]!,
    };
  });
}
