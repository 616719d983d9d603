import { normalizeVector } from '../embeddings/embedding-provider.js';
import { termOf, tokenize, type WordSet } from '../text/analyzer.js';
import { type AnalyzedQuery, capitalsSpans, looksLikeName } from '../text/query.js';
import { isEnglishInGerman } from '../text/stop-words.js';
import { englishConcepts } from '../translate/english-concepts.js';
import type { QueryTranslator } from '../translate/query-translator.js';
import type { Language } from '../types.js';

/** Options of a {@link MeaningSpace}. */
export interface MeaningSpaceOptions {
  /** Length of the hashed vectors; default 1024 (fewer collisions of concepts than 512: the supporting document was the star's nearest for as many questions, its chunk within the nearest 10 for 0.27 instead of 0.14). */
  readonly dimensions?: number;
  /** Dictionary translations a German term is spread over (by their weights); default 3. */
  readonly translations?: number;
  /**
   * Weight of a concept that the chunks of only one language bring in (its idf is multiplied by it) when a
   * dictionary is given and the index has chunks in both languages; default 1. Such a concept (a German word
   * the dictionary does not know, a compound whose parts are indexed too, a name only English texts use) cannot
   * bring a German chunk near an English one: German-only concepts hold 73% of a German chunk's squared weight.
   * Leaving them out (`0`) was measured (`scripts/map-eval.ts`): a German chunk's English neighbours in the space
   * rose only from 0.017 to 0.066 and the map stayed in islands, while English questions lost their names
   * ("zennit") and stars moved away from their sources, so it is not the default.
   */
  readonly oneLanguageWeight?: number;
  /**
   * Each chunk's document (e.g. its file), for `documentCentering`; without it nothing is centred.
   */
  readonly documents?: readonly string[];
  /**
   * Share of its document's mean vector taken off each chunk vector (then normalised again); default 0.5. What
   * all chunks of a document share (its title and section names, which every chunk's analysed text repeats, its
   * names and house words) tied a chunk to its own document more than to another document about the same thing:
   * 0.94 of a German chunk's 10 nearest were of its own document (English 0.79). Measured in the space
   * (`scripts/map-eval.ts`), 0.5 took the English neighbours of German chunks whose topic English documents
   * share from 0.02 to 0.34 (0.3: 0.16; 0.7: 0.49, but a chunk then keeps too little of its document).
   */
  readonly documentCentering?: number;
  /** Each chunk's language, for `languageCentering`; without it nothing is centred by language. */
  readonly languages?: readonly string[];
  /**
   * Share of its language's mean vector taken off each chunk vector (before `documentCentering`); default 0.
   * Removing each language's mean is the standard way to align multilingual embeddings: what all German chunks
   * share (the German words the dictionary does not reach, house words of the German documents) then no
   * longer sets them apart. A question is centred by its own language's mean ({@link MeaningSpace.embedQuery}).
   */
  readonly languageCentering?: number;
}

/** A text for {@link MeaningSpace.ofTexts}: a chunk's text with its section names, its language and document. */
export interface MeaningText {
  readonly text: string;
  readonly language: Language;
  readonly document: string;
}

/**
 * A language-neutral space for the embedding map: every chunk as TF-IDF over **English concepts**. An
 * English index term (`en:rule`) is its stem; a German one (`de:regel`) is replaced by its English concepts
 * ({@link englishConcepts}: its dictionary translations, preferring those the English texts use, else its base
 * form's, its compound parts', else the word as an English loan word: "Retrieval" -> `retriev`). The vectors
 * are feature-hashed to a fixed length and L2-normalised, then centred by document (`documentCentering`), so
 * that what a chunk says counts more than which document it is in.
 *
 * Why not the dense embeddings: the default embedding is an English model, so a German chunk's vector says
 * mostly "German" and UMAP laid the two languages out as two islands. Here a German chunk and an English
 * chunk about the same thing share their concepts, so they lie together, and a question in either language
 * lands among its sources.
 */
export class MeaningSpace {
  readonly dimensions: number;
  readonly #translator: QueryTranslator | undefined;
  readonly #translations: number;
  readonly #idf = new Map<string, number>();
  readonly #keys = new Map<string, readonly (readonly [string, number])[]>();
  /** German terms the dictionary does not reach by themselves (tried again as compounds with the text's words). */
  readonly #loanWords = new Set<string>();
  #used: WordSet | undefined;
  /** Concepts weighed other than 1: those only one language's chunks bring in. */
  readonly #weight = new Map<string, number>();
  readonly #count: number;
  /** Each language's mean vector times `languageCentering`, when centred by language. */
  #languageMeans: Map<string, Float32Array> | undefined;
  /** The centring: one offset per language and document ... */
  readonly #offsets: Float32Array[] = [];
  /** ... and which one each chunk vector has taken off (-1: none). */
  readonly #offsetOf: number[];
  /** One unit vector per chunk, centred by document (`documentCentering`): what the map is fitted on. */
  readonly vectors: readonly Float32Array[];
  /**
   * The same vectors before centering, what a question is compared with ({@link MeaningSpace.embedQuery}): a
   * question has no document, and compared with centred chunks it lost the documents it is about (the supporting
   * document was the star's nearest for 0.44 of the cross-lingual questions instead of 0.53).
   */
  readonly questionVectors: readonly Float32Array[];

  /**
   * @param chunkTerms each chunk's index terms (`en:rule`, `de:regel`), repeated as often as they occur
   * @param translator the German-English dictionary; without it German terms keep their German stems
   */
  constructor(
    chunkTerms: readonly (readonly string[])[],
    translator?: QueryTranslator,
    options: MeaningSpaceOptions = {},
  ) {
    this.dimensions = options.dimensions ?? 1024;
    this.#translations = options.translations ?? 3;
    this.#translator = translator;
    this.#count = chunkTerms.length;
    const oneLanguageWeight = options.oneLanguageWeight ?? 1;
    // the languages whose terms bring in each concept
    const languages = new Map<string, string>();
    // the English stems English texts use: a German word's translations are taken among them first
    const used = new Set<string>();
    for (const terms of chunkTerms) for (const t of terms) if (t.startsWith('en:')) used.add(t.slice(3));
    this.#used = used;
    const bags = chunkTerms.map((terms) => this.#bag(terms, languages));
    const seen = new Set(languages.values());
    // without a dictionary nothing aligns the languages but shared spellings: keep every concept
    const align = !!translator && (seen.has('both') || seen.size > 1) && oneLanguageWeight !== 1;
    const df = new Map<string, number>();
    for (const bag of bags) for (const key of bag.keys()) df.set(key, (df.get(key) ?? 0) + 1);
    for (const [key, n] of df) {
      this.#idf.set(key, Math.log(1 + this.#count / n));
      if (align && languages.get(key) !== 'both') this.#weight.set(key, oneLanguageWeight);
    }
    this.questionVectors = bags.map((bag) => this.#hash(bag));
    // the centring, as one offset per language and document: vectors[i] = unit(questionVectors[i] - offset)
    const byLanguage = options.languages ? (options.languageCentering ?? 0) : 0;
    const byDocument = options.documents ? (options.documentCentering ?? 0.5) : 0;
    const u = this.questionVectors;
    const zero = new Float32Array(this.dimensions);
    const languageOf = (i: number) => (byLanguage > 0 ? options.languages![i]! : '');
    const languageMeans = new Map(
      byLanguage > 0
        ? [
            ...groupMeans(
              u,
              u.map((_, i) => languageOf(i)),
            ),
          ].map(([l, m]) => [l, scaled(m, byLanguage)])
        : [],
    );
    if (byLanguage > 0) this.#languageMeans = languageMeans;
    const languageOffset = (i: number) => (byLanguage > 0 ? languageMeans.get(languageOf(i))! : zero);
    const documentOf = (i: number) => (byDocument > 0 ? options.documents![i]! : '');
    const documentMeans =
      byDocument > 0
        ? groupMeans(
            u.map((v, i) => minus(v, languageOffset(i))),
            u.map((_, i) => documentOf(i)),
          )
        : undefined;
    const offsets = new Map<string, number>();
    this.#offsetOf = u.map((_, i) => {
      if (byLanguage === 0 && byDocument === 0) return -1;
      const key = `${languageOf(i)}\u0000${documentOf(i)}`;
      let k = offsets.get(key);
      if (k === undefined) {
        const offset = languageOffset(i).slice();
        if (documentMeans) {
          const m = documentMeans.get(documentOf(i))!;
          for (let d = 0; d < offset.length; d++) offset[d]! += byDocument * m[d]!;
        }
        k = this.#offsets.push(offset) - 1;
        offsets.set(key, k);
      }
      return k;
    });
    this.vectors = u.map((v, i) => {
      const k = this.#offsetOf[i]!;
      if (k < 0) return v;
      const centred = minus(v, this.#offsets[k]!);
      // a document of one chunk (or of identical chunks) keeps its vector rather than become zero
      if (centred.some((x) => Math.abs(x) > 1e-6)) return normalizeVector(centred);
      this.#offsetOf[i] = -1;
      return v;
    });
  }

  /**
   * The space of texts analysed for it: each chunk's words as index terms without the extra terms the index adds
   * for search (compound parts, base forms; here a German word reaches English through
   * {@link englishConcepts}, so they would count it twice), centred by document.
   */
  static ofTexts(
    texts: readonly MeaningText[],
    translator?: QueryTranslator,
    options: MeaningSpaceOptions = {},
  ): MeaningSpace {
    return new MeaningSpace(
      texts.map((t) => meaningTerms(t.text, t.language)),
      translator,
      { documents: texts.map((t) => t.document), languages: texts.map((t) => t.language), ...options },
    );
  }

  /**
   * A question in the same space: each of its concepts (a word with its stems and dictionary translations,
   * as the search uses it) adds its terms' English concepts, weighted as the search weighs them.
   */
  embedQuery(query: AnalyzedQuery): Float32Array {
    const bag = new Map<string, number>();
    for (const c of query.concepts) {
      const own = new Map<string, number>();
      // a name's German stem is its English one, as in the chunks ({@link meaningTerms}): not "RAG" as "rage"
      const name = nameTerm(c.word);
      for (const t of c.terms) {
        const term = name !== undefined && t.language === 'de' && t.via === 'word' ? name : t.term;
        for (const [key, w] of this.#neutral(term)) own.set(key, Math.max(own.get(key) ?? 0, w * t.weight));
      }
      for (const [key, w] of own) bag.set(key, (bag.get(key) ?? 0) + w);
    }
    return this.#hash(bag);
  }

  /**
   * The dot products of the chunk vectors `indices` (default all), an n x n matrix (row-major), for
   * {@link FittedMap.fit}: computed from the sparse uncentred vectors and the few centring offsets,
   * u.v - u.o' - o.v + o.o', instead of over the dense centred vectors (a twentieth of the time).
   */
  similarities(indices: readonly number[] = this.vectors.map((_, i) => i)): Float32Array {
    const n = indices.length;
    const sparse = indices.map((i) => {
      const v = this.questionVectors[i]!;
      const at: number[] = [];
      for (let d = 0; d < v.length; d++) if (v[d] !== 0) at.push(d);
      return { at: Int32Array.from(at), values: Float64Array.from(at, (d) => v[d]!) };
    });
    const offsetOf = indices.map((i) => this.#offsetOf[i]!);
    const k = this.#offsets.length;
    // u_i . o_k and o_k . o_l
    const uo = new Float64Array(n * k);
    sparse.forEach((r, i) => {
      for (let o = 0; o < k; o++) {
        const offset = this.#offsets[o]!;
        let sum = 0;
        for (let e = 0; e < r.at.length; e++) sum += r.values[e]! * offset[r.at[e]!]!;
        uo[i * k + o] = sum;
      }
    });
    const oo = new Float64Array(k * k);
    for (let o = 0; o < k; o++)
      for (let p = o; p < k; p++) {
        const sum = dotOf(this.#offsets[o]!, this.#offsets[p]!);
        oo[o * k + p] = sum;
        oo[p * k + o] = sum;
      }
    const raw = new Float64Array(n * n);
    const dense = new Float64Array(this.dimensions);
    for (let i = 0; i < n; i++) {
      const a = sparse[i]!;
      for (let e = 0; e < a.at.length; e++) dense[a.at[e]!] = a.values[e]!;
      for (let j = i; j < n; j++) {
        const b = sparse[j]!;
        let sum = 0;
        for (let e = 0; e < b.at.length; e++) sum += dense[b.at[e]!]! * b.values[e]!;
        const oi = offsetOf[i]!;
        const oj = offsetOf[j]!;
        if (oj >= 0) sum -= uo[i * k + oj]!;
        if (oi >= 0) sum -= uo[j * k + oi]!;
        if (oi >= 0 && oj >= 0) sum += oo[oi * k + oj]!;
        raw[i * n + j] = sum;
        raw[j * n + i] = sum;
      }
      for (let e = 0; e < a.at.length; e++) dense[a.at[e]!] = 0;
    }
    const norm = Array.from({ length: n }, (_, i) => Math.sqrt(raw[i * n + i]!) || 1);
    const gram = new Float32Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) gram[i * n + j] = raw[i * n + j]! / (norm[i]! * norm[j]!);
    return gram;
  }

  /**
   * A vector (a question's, from {@link MeaningSpace.embedQuery}) with its language's share of the mean taken
   * off, as the chunks of that language are by `languageCentering`; unchanged when not centred by language.
   */
  centerByLanguage(vector: Float32Array, language: string): Float32Array {
    const mean = this.#languageMeans?.get(language);
    return mean ? unitOr(minus(vector, mean), vector) : vector;
  }

  /**
   * The English concepts of a chunk's terms with their counts (a German term spread over its translations);
   * notes in `languages` which language's terms bring in each concept (`en`, `de` or `both`).
   */
  #bag(terms: readonly string[], languages: Map<string, string>): Map<string, number> {
    const bag = new Map<string, number>();
    // the text's own German stems: parts a compound with a name may split into ("debianleitfad")
    const own = new Set(terms.filter((t) => t.startsWith('de:')).map((t) => t.slice(3)));
    for (const term of terms) {
      const language = term.slice(0, term.indexOf(':'));
      for (const [key, w] of this.#neutral(term, own)) {
        bag.set(key, (bag.get(key) ?? 0) + w);
        const seen = languages.get(key);
        if (seen === undefined) languages.set(key, language);
        else if (seen !== language) languages.set(key, 'both');
      }
    }
    return bag;
  }

  /**
   * A term's English concepts: an English term is its stem; a German one goes through the dictionary
   * ({@link englishConcepts}: its translations, its base form's, its compound parts', else itself as a loan word
   * stemmed as English); without a dictionary a German term keeps its stem.
   */
  #neutral(term: string, context?: WordSet): readonly (readonly [string, number])[] {
    let keys = this.#keys.get(term);
    if (!keys) {
      const stem = term.slice(term.indexOf(':') + 1);
      keys = [[stem, 1]];
      if (term.startsWith('de:') && this.#translator) {
        const found = englishConcepts(stem, this.#translator, {
          translations: this.#translations,
          ...(this.#used ? { used: this.#used } : {}),
        });
        keys = found.concepts;
        if (found.route === 'loan-word') this.#loanWords.add(term);
      }
      this.#keys.set(term, keys);
    }
    // a compound of a name and a word ("Debian-Leitfaden"), split by the text's own words
    if (context && this.#translator && this.#loanWords.has(term)) {
      const found = englishConcepts(term.slice(3), this.#translator, {
        translations: this.#translations,
        context,
        ...(this.#used ? { used: this.#used } : {}),
      });
      if (found.route === 'compound') return found.concepts;
    }
    return keys;
  }

  #hash(bag: ReadonlyMap<string, number>): Float32Array {
    const v = new Float32Array(this.dimensions);
    let aligned = false;
    for (const [key, tf] of bag) {
      // a concept no chunk has (only in a question) cannot bring a question nearer to any chunk
      const idf = this.#idf.get(key);
      if (idf === undefined) continue;
      const weight = this.#weight.get(key) ?? 1;
      if (weight === 0) continue;
      aligned ||= weight === 1;
      const h = fnv1a(key);
      v[h % this.dimensions]! += (h & 0x80000000 ? -1 : 1) * Math.log1p(tf) * idf * weight;
    }
    // a text of one-language concepts only keeps them rather than become the zero vector
    if (!aligned && this.#weight.size) {
      for (const [key, tf] of bag) {
        const idf = this.#idf.get(key);
        if (idf === undefined || this.#weight.get(key) !== 0) continue;
        const h = fnv1a(key);
        v[h % this.dimensions]! += (h & 0x80000000 ? -1 : 1) * Math.log1p(tf) * idf;
      }
    }
    return normalizeVector(v);
  }
}

/**
 * A text's terms for the {@link MeaningSpace}: its index terms (without the extra terms of search, and in German
 * text without English function words, {@link isEnglishInGerman}), but a name in
 * a German text, an acronym of up to five capitals ("RAG", "LLM"), a word with digits or underscores or a CamelCase word (see
 * {@link looksLikeName}), is the term English text gives it, as the search leaves names untranslated. Through the
 * dictionary German "RAG" was the noun "Rage", and once one English chunk used "fury" (a badge's URL,
 * `badge.fury.io`) the German RAG text's every title became the concept `furi` instead of `rag`, which 126 English
 * chunks use: its document's cosine with LlamaIndex's RAG concepts fell from 0.357 to 0.238.
 */
export function meaningTerms(text: string, language: Language): string[] {
  if (language !== 'de') return tokenize(text, language).map((t) => t.term);
  // "NAME" in "VERSIONSGESCHICHTE NUMMER DATUM NAME" is the German word, no acronym
  const capitals = capitalsSpans(text);
  return (
    tokenize(text, language)
      // an English function word of a quotation or code ("the", "for", "if") would be a German word here, and
      // the dictionary has nothing for it but look-alikes ("and" as "Anden")
      .filter((t) => !isEnglishInGerman(t.surface))
      .map(
        (t) =>
          nameTerm(
            t.surface,
            capitals.some(([a, b]) => t.start >= a && t.start < b),
          ) ?? t.term,
      )
  );
}

/** The English term of a name as written in German text ({@link meaningTerms}); undefined for a word. */
function nameTerm(surface: string, setInCapitals = false): string | undefined {
  if (!looksLikeName(surface, 'de', false, setInCapitals)) return undefined;
  // six capitals and more are a word set in capitals (a heading: "BESCHREIBUNG", "VERFASST"), no acronym
  if (/^\p{Lu}{6,}$/u.test(surface)) return undefined;
  // an English stop word ("IT", "US") stays the German term
  return termOf(surface.toLowerCase(), 'en');
}

/** The mean vector of each group. */
function groupMeans(vectors: readonly Float32Array[], groups: readonly string[]): Map<string, Float32Array> {
  const sums = new Map<string, { n: number; sum: Float64Array }>();
  vectors.forEach((v, i) => {
    const key = groups[i] ?? '';
    let g = sums.get(key);
    if (!g) {
      g = { n: 0, sum: new Float64Array(v.length) };
      sums.set(key, g);
    }
    g.n++;
    for (let d = 0; d < v.length; d++) g.sum[d]! += v[d]!;
  });
  return new Map([...sums].map(([key, g]) => [key, Float32Array.from(g.sum, (x) => x / g.n)]));
}

const scaled = (v: Float32Array, share: number) => v.map((x) => x * share);
const minus = (a: Float32Array, b: Float32Array) => a.map((x, d) => x - b[d]!);
/** `v` normalised; `fallback` when it is (nearly) zero: a document of one chunk, or of identical chunks. */
const unitOr = (v: Float32Array, fallback: Float32Array) =>
  v.some((x) => Math.abs(x) > 1e-6) ? normalizeVector(v) : fallback;

const dotOf = (a: Float32Array, b: Float32Array) => a.reduce((sum, x, d) => sum + x * b[d]!, 0);

/** 32-bit FNV-1a hash of a string (unsigned). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
