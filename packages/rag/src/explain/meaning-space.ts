import { normalizeVector } from '../embeddings/embedding-provider.js';
import type { AnalyzedQuery } from '../text/query.js';
import type { QueryTranslator } from '../translate/query-translator.js';

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
}

/**
 * A language-neutral space for the embedding map: every chunk as TF-IDF over **English concepts**. An
 * English index term (`en:rule`) is its stem; a German one (`de:regel`) is replaced by its dictionary
 * translations' English stems (weighted as the dictionary weighs them); a term the dictionary does not know
 * (a name, an untranslated technical word) keeps its bare stem, which matches the same word in English text.
 * The vectors are feature-hashed to a fixed length and L2-normalised.
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
  /** Concepts weighed other than 1: those only one language's chunks bring in. */
  readonly #weight = new Map<string, number>();
  readonly #count: number;
  /** One unit vector per chunk. */
  readonly vectors: readonly Float32Array[];

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
    this.vectors = bags.map((bag) => this.#hash(bag));
  }

  /**
   * A question in the same space: each of its concepts (a word with its stems and dictionary translations,
   * as the search uses it) adds its terms' English concepts, weighted as the search weighs them.
   */
  embedQuery(query: AnalyzedQuery): Float32Array {
    const bag = new Map<string, number>();
    for (const c of query.concepts) {
      const own = new Map<string, number>();
      for (const t of c.terms) {
        for (const [key, w] of this.#neutral(t.term)) own.set(key, Math.max(own.get(key) ?? 0, w * t.weight));
      }
      for (const [key, w] of own) bag.set(key, (bag.get(key) ?? 0) + w);
    }
    return this.#hash(bag);
  }

  /**
   * The English concepts of a chunk's terms with their counts (a German term spread over its translations);
   * notes in `languages` which language's terms bring in each concept (`en`, `de` or `both`).
   */
  #bag(terms: readonly string[], languages: Map<string, string>): Map<string, number> {
    const bag = new Map<string, number>();
    for (const term of terms) {
      const language = term.slice(0, term.indexOf(':'));
      for (const [key, w] of this.#neutral(term)) {
        bag.set(key, (bag.get(key) ?? 0) + w);
        const seen = languages.get(key);
        if (seen === undefined) languages.set(key, language);
        else if (seen !== language) languages.set(key, 'both');
      }
    }
    return bag;
  }

  #neutral(term: string): readonly (readonly [string, number])[] {
    let keys = this.#keys.get(term);
    if (keys) return keys;
    const colon = term.indexOf(':');
    const stem = term.slice(colon + 1);
    keys = [[stem, 1]];
    if (term.startsWith('de:') && this.#translator) {
      const list = this.#translator.translate(stem, 'de').slice(0, this.#translations);
      const total = list.reduce((s, t) => s + t.weight, 0);
      if (total > 0) keys = list.map((t) => [t.term, t.weight / total] as const);
    }
    this.#keys.set(term, keys);
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

/** 32-bit FNV-1a hash of a string (unsigned). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
